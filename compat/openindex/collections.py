"""OpenIndex's collections: `GET/POST /api/collections` and `GET /api/collections/search`, over the native
collections (knowledge.services, knowledge.selectors, knowledge.search). docs/collections.md has the rules.

- A collection as OpenIndex shows it: the workspace stands for OpenIndex's user (`userId`) and `namespace`, as
  for agents; `active` is always true; `status` is `indexing` while any source is unfinished, `failed` when every
  source failed, `ready` otherwise; `sources` lists every source (`source` is OpenIndex's kind: `web` for pages).
- `knowledgeBase` is newline-separated: a URL per line (a YouTube video link becomes a transcribed `youtube`
  source), or `links(<url>)`, which also adds the pages that page links to (knowledge/links.py). Blank lines are
  skipped. Every line is checked (http(s), SSRF rules) before anything is written: a bad one is a 400 naming the
  line, and nothing is created. On an update the list is additive: URLs already in the collection are skipped,
  and nothing is removed.
- Search is hybrid with a rerank (knowledge.search `smart` without query rewrites) over the collections the key
  reaches, or the one `collection_id` names.
"""

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers

from compat.openindex.base import OpenIndexApiView, epoch_ms, ok
from config.api.errors import LimitExceeded, ValidationFailed
from config.api.serializers import StrictSerializer
from knowledge import safe_http, selectors, services
from knowledge.errors import ExtractionError
from knowledge.links import FOLLOW_LINKS, LINKED_FROM
from knowledge.models import Collection, Source
from knowledge.search import KnowledgeScope, SearchHit, search_chunks

LINKS_LINE = "links("
MAX_KNOWLEDGE_BASE_CHARS = 200_000
SEARCH_THRESHOLD = 0.3
# OpenIndex names a page's kind "web"; the other kinds keep their native names.
SOURCE_KINDS = {Source.Type.URL: "web"}


def _errors(*statuses: int) -> dict:
    return {
        status: OpenApiResponse(OpenIndexCollectionErrorSerializer, description="`{ok: false, error}`")
        for status in statuses
    }


def _first_error(errors) -> tuple[str, str]:
    field, value = next(iter(errors.items()))
    while isinstance(value, (list, dict)) and value:
        value = next(iter(value.values())) if isinstance(value, dict) else value[0]
    return ("request" if field == "non_field_errors" else field), str(value)


def _validated(serializer_class, data) -> dict:
    """Validated input, or ValidationFailed("invalid <field>: <reason>") as the other OpenIndex views answer."""
    if not isinstance(data, dict):
        raise ValidationFailed("invalid request: the body must be a JSON object.")
    serializer = serializer_class(data=data)
    if not serializer.is_valid():
        field, reason = _first_error(serializer.errors)
        raise ValidationFailed(f"invalid {field}: {reason}", details={"fields": {field: [reason]}})
    return serializer.validated_data


# Input ------------------------------------------------------------------------------------------------------------


def _http_url(value: str) -> str:
    if value and not value.lower().startswith(("https://", "http://")):
        raise serializers.ValidationError("Only http(s) URLs are allowed.")
    return value


class CollectionSaveSerializer(StrictSerializer):
    """`POST /api/collections`; null means "not given", so an update changes only what is given."""

    id = serializers.CharField(max_length=120, required=False, allow_null=True, allow_blank=True)
    name = serializers.CharField(max_length=100, required=False, allow_null=True, allow_blank=True)
    description = serializers.CharField(max_length=2000, required=False, allow_null=True, allow_blank=True)
    image = serializers.CharField(
        max_length=2000, required=False, allow_null=True, allow_blank=True, validators=[_http_url]
    )
    privacy = serializers.ChoiceField(choices=Collection.Privacy.choices, required=False, allow_null=True)
    knowledgeBase = serializers.CharField(
        max_length=MAX_KNOWLEDGE_BASE_CHARS,
        required=False,
        allow_null=True,
        allow_blank=True,
        trim_whitespace=False,
        help_text="Newline-separated URLs; `links(<url>)` also adds the pages that page links to.",
    )
    # Read-only fields of a collection, sent back by a client that edits what GET /api/collections gave it.
    slug = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    userId = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    active = serializers.BooleanField(required=False, allow_null=True)
    namespace = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    createdAt = serializers.IntegerField(required=False, allow_null=True)
    updatedAt = serializers.IntegerField(required=False, allow_null=True)
    status = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    sources = serializers.ListField(required=False, allow_null=True)

    def validate_name(self, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise serializers.ValidationError("A name is required.")
        return value.strip() if value is not None else None


def _changes(data: dict) -> dict:
    return {
        field: data[field]
        for field in services.COLLECTION_FIELDS
        if field in data and data[field] is not None
    }


def knowledge_base_entries(text: str, *, max_entries: int) -> list[services.UrlEntry]:
    """The URLs of a knowledgeBase, in order, each once (a line repeated with `links(…)` follows the links)."""
    entries: dict[str, services.UrlEntry] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        follow = line.lower().startswith(LINKS_LINE) and line.endswith(")")
        url = line[len(LINKS_LINE) : -1].strip() if follow else line
        try:
            safe_http.validate_url(url)
        except ExtractionError as exc:
            raise ValidationFailed(
                f"invalid knowledgeBase: line {number} ({line[:200]}): {exc.message}",
                details={"fields": {"knowledgeBase": [f"Line {number}: {exc.message}"]}, "line": number},
            ) from exc
        key = safe_http.normalize_url(url)
        follow = follow or (key in entries and entries[key].follow_links)
        entries[key] = services.UrlEntry(url=entries[key].url if key in entries else url, follow_links=follow)
        if len(entries) > max_entries:
            raise LimitExceeded(
                f"The knowledgeBase lists more than the {max_entries} sources a collection may hold.",
                details={"limit": "sourceLimit", "value": max_entries},
            )
    return list(entries.values())


# Output -----------------------------------------------------------------------------------------------------------


def source_entry(source: Source) -> dict:
    return {
        "id": source.id,
        "name": source.name,
        "type": source.type,
        "source": SOURCE_KINDS.get(source.type, source.type),
        "url": source.url or source.audio_url or source.feed_url or None,
        "status": source.status,
        "chunkCount": source.chunk_count,
        "error": source.error_message or None,
        "followLinks": bool(source.metadata.get(FOLLOW_LINKS)),
        "linkedFrom": source.metadata.get(LINKED_FROM),
        "createdAt": epoch_ms(source.created_at),
        "updatedAt": epoch_ms(source.updated_at),
    }


def collection_entry(collection: Collection) -> dict:
    """Needs the sources prefetched (knowledge.selectors.collections_with_sources)."""
    sources = list(collection.sources.all())
    return {
        "id": collection.id,
        "slug": collection.slug,
        # Collections belong to a workspace, not to one user: the workspace is both the author and the namespace.
        "userId": collection.workspace_id,
        "active": True,
        "createdAt": epoch_ms(collection.created_at),
        "updatedAt": epoch_ms(collection.updated_at),
        "name": collection.name,
        "description": collection.description,
        "image": collection.image or None,
        "privacy": collection.privacy,
        "namespace": collection.workspace_id,
        "sources": [source_entry(source) for source in sources],
        "status": selectors.collection_status(sources),
    }


def result_entry(hit: SearchHit) -> dict:
    chunk, source = hit.chunk, hit.chunk.source
    return {
        "snippet": chunk.content,
        "url": chunk.url or source.url or None,
        "sourceId": source.id,
        "source": SOURCE_KINDS.get(source.type, source.type),
        "sourceName": source.name,
        "score": round(hit.score, 4),
        "collectionId": chunk.collection_id,
        "chunkId": chunk.id,
        "page": chunk.page,
        "headingPath": chunk.heading_path or None,
        "startSeconds": chunk.start_seconds,
        "endSeconds": chunk.end_seconds,
    }


class OpenIndexCollectionErrorSerializer(serializers.Serializer):
    ok = serializers.BooleanField(default=False)
    error = serializers.CharField()


class OpenIndexSourceSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    type = serializers.ChoiceField(choices=Source.Type.choices)
    source = serializers.CharField(help_text='OpenIndex\'s kind: "web" for a page, else the type.')
    url = serializers.CharField(allow_null=True)
    status = serializers.ChoiceField(choices=Source.Status.choices)
    chunkCount = serializers.IntegerField()
    error = serializers.CharField(allow_null=True)
    followLinks = serializers.BooleanField(help_text="A links(<url>) page: the pages it links to are added.")
    linkedFrom = serializers.CharField(allow_null=True, help_text="The links() page this page was found on.")
    createdAt = serializers.IntegerField()
    updatedAt = serializers.IntegerField()


class OpenIndexCollectionSerializer(serializers.Serializer):
    id = serializers.CharField()
    slug = serializers.CharField()
    userId = serializers.CharField()
    active = serializers.BooleanField()
    createdAt = serializers.IntegerField()
    updatedAt = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    image = serializers.CharField(allow_null=True)
    privacy = serializers.ChoiceField(choices=Collection.Privacy.choices)
    namespace = serializers.CharField()
    sources = OpenIndexSourceSerializer(many=True)
    status = serializers.ChoiceField(choices=["indexing", "ready", "failed"])


class OpenIndexSearchResultSerializer(serializers.Serializer):
    snippet = serializers.CharField()
    url = serializers.CharField(allow_null=True)
    sourceId = serializers.CharField()
    source = serializers.CharField()
    sourceName = serializers.CharField()
    score = serializers.FloatField()
    collectionId = serializers.CharField()
    chunkId = serializers.CharField()
    page = serializers.IntegerField(allow_null=True)
    headingPath = serializers.CharField(allow_null=True)
    startSeconds = serializers.FloatField(allow_null=True)
    endSeconds = serializers.FloatField(allow_null=True)


class SearchQuerySerializer(serializers.Serializer):
    q = serializers.CharField(min_length=1, max_length=1000)
    limit = serializers.IntegerField(min_value=1, max_value=20, default=5)
    collection_id = serializers.CharField(max_length=120, required=False, allow_blank=True)


# Views ------------------------------------------------------------------------------------------------------------


class CollectionsApi(OpenIndexApiView):
    required_scopes = {"GET": "minds:read", "POST": "minds:write"}

    @extend_schema(
        operation_id="openindex_collections_list",
        tags=["OpenIndex"],
        description=(
            "The collections the key reaches (a key restricted to some minds: those attached to its minds), newest "
            "first, each with its sources and a status: `indexing` while any source is unfinished, `failed` when "
            "every source failed, else `ready`."
        ),
        responses={
            200: inline_serializer(
                "OpenIndexCollectionList",
                fields={
                    "ok": serializers.BooleanField(),
                    "collections": OpenIndexCollectionSerializer(many=True),
                },
            ),
            **_errors(401, 403, 500),
        },
    )
    def get(self, request):
        collections = selectors.collections_with_sources(principal=self.principal)
        return ok(collections=[collection_entry(c) for c in collections])

    @extend_schema(
        operation_id="openindex_collections_save",
        tags=["OpenIndex"],
        description=(
            "Creates a collection, or updates the one `id` names (only the fields given), and adds the URLs of "
            "`knowledgeBase` (newline-separated; `links(<url>)` also adds the pages that page links to, one level "
            "deep, same host). Additive: URLs already in the collection are skipped. A line that is not an http(s) "
            "URL a server may fetch is a 400 naming the line, and nothing is created. 403 past the sources "
            "allowance, or for a key restricted to some minds creating a collection; 404 for an unknown `id`."
        ),
        request=CollectionSaveSerializer,
        responses={
            200: inline_serializer(
                "OpenIndexCollectionSaved",
                fields={"ok": serializers.BooleanField(), "collectionId": serializers.CharField()},
            ),
            **_errors(400, 401, 403, 404, 500),
        },
    )
    def post(self, request):
        data = _validated(CollectionSaveSerializer, request.data)
        collection = None
        if data.get("id"):
            collection = selectors.collection_get(principal=self.principal, collection_id=data["id"])
        else:
            selectors.collection_manage_check(principal=self.principal)
            if not data.get("name"):
                raise ValidationFailed("invalid name", details={"fields": {"name": ["A name is required."]}})
        entries = knowledge_base_entries(
            data.get("knowledgeBase") or "", max_entries=self.workspace.effective_source_limit_per_mind
        )
        collection, _ = services.collection_create_or_update(
            workspace=self.workspace, collection=collection, changes=_changes(data), entries=entries
        )
        return ok(collectionId=collection.id)


class CollectionSearchApi(OpenIndexApiView):
    required_scopes = {"GET": "knowledge:search"}
    extra_rate_limits = ("search",)

    @extend_schema(
        operation_id="openindex_collections_search",
        tags=["OpenIndex"],
        description=(
            "Hybrid search (vector and full text) with a rerank over the ready passages of the collections the key "
            "reaches, or of the one `collection_id` names (404 if it does not reach it). `snippet` is the whole "
            "passage; `source` is `web` for a page, else the source's type."
        ),
        parameters=[
            OpenApiParameter("q", str, required=True, description="The query (1–1000 characters)."),
            OpenApiParameter("limit", int, description="1–20, default 5."),
            OpenApiParameter("collection_id", str, description="Search this collection only."),
        ],
        responses={
            200: inline_serializer(
                "OpenIndexCollectionSearch",
                fields={
                    "ok": serializers.BooleanField(),
                    "results": OpenIndexSearchResultSerializer(many=True),
                },
            ),
            **_errors(400, 401, 403, 404, 500),
        },
    )
    def get(self, request):
        params = _validated(SearchQuerySerializer, request.query_params)
        if params.get("collection_id"):
            collection = selectors.collection_get(
                principal=self.principal, collection_id=params["collection_id"]
            )
            scope = KnowledgeScope.of_collections([collection.id])
        else:
            reachable = selectors.collections_reachable(principal=self.principal)
            scope = KnowledgeScope.of_collections(reachable.values_list("id", flat=True))
        hits = search_chunks(
            scope=scope,
            query=params["q"],
            limit=params["limit"],
            threshold=SEARCH_THRESHOLD,
            mode="smart",
            expansions=[],
        )
        return ok(results=[result_entry(hit) for hit in hits])
