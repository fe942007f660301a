"""Trigglio's Chatbot Knowledge Base API (reference/seed-apis.md §A.7) as aliases of the native minds API:
`GET /api/v1/chatbots`, `GET/POST /api/v1/chatbots/{id}/sources`, `POST /api/v1/chatbots/{id}/search`.

A chatbot is a mind: the same access rules (minds_visible, mind_get), the same services, the native envelope.
Only the vocabulary differs, mapped both ways by the tables below: Trigglio's chatbot sources are `text`, `url` or
`file` and are `pending`, `processing`, `ready` or `error`, where a mind's are five types and five statuses.
Scopes are the native equivalents: minds:read to list, minds:write to add, knowledge:search to search.
"""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers

from compat.trigglio import selectors
from config.api.pagination import PageQuerySerializer, paginate
from config.api.schema import COMMON_ERRORS, PaginationSerializer, envelope, errors
from config.api.serializers import StrictSerializer, body, iso, query_params
from config.api.views import WorkspaceApiView, success
from knowledge import services
from knowledge.extractors.youtube import video_id as youtube_video_id
from knowledge.models import Source
from knowledge.search import MODES, search_chunks
from knowledge.search_apis import SearchInputSerializer, SearchResultSerializer, result_data
from knowledge.serializers import MAX_CLAIMED_FILE_SIZE, MAX_TEXT_CHARS, source_data
from minds.apis_base import MindScopedApiView
from minds.selectors import mind_list

TAGS = ["Trigglio chatbots"]
POLL_AFTER_SECONDS = "5"
CHATBOT_ID = OpenApiParameter(
    "mind_id", str, OpenApiParameter.PATH, description="The chatbot: a mind's id or slug."
)

# A mind's source status -> the chatbot's; and a chatbot status filter -> the mind statuses it covers.
CHATBOT_STATUS = {
    Source.Status.PENDING: "pending",
    Source.Status.PROCESSING: "processing",
    Source.Status.TRANSCRIBING: "processing",
    Source.Status.READY: "ready",
    Source.Status.FAILED: "error",
}
STATUS_FILTER = {
    chatbot: [status for status, mapped in CHATBOT_STATUS.items() if mapped == chatbot]
    for chatbot in ("pending", "processing", "ready", "error")
}
# A mind's source type -> the chatbot's; and back, for filters.
CHATBOT_TYPE = {
    Source.Type.TEXT: "text",
    Source.Type.URL: "url",
    Source.Type.YOUTUBE: "url",
    Source.Type.DOCUMENT: "file",
    Source.Type.PODCAST: "file",
}
TYPE_FILTER = {
    chatbot: [kind for kind, mapped in CHATBOT_TYPE.items() if mapped == chatbot]
    for chatbot in ("text", "url", "file")
}


class ChatbotSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    slug = serializers.CharField()
    descriptor = serializers.CharField(help_text="The mind's headline.")
    createdAt = serializers.DateTimeField()
    sourceCount = serializers.IntegerField()
    conversationCount = serializers.IntegerField()


def chatbot_data(mind) -> dict:
    return {
        "id": mind.id,
        "name": mind.name,
        "slug": mind.slug,
        "descriptor": mind.headline,
        "createdAt": iso(mind.created_at),
        "sourceCount": getattr(mind, "knowledge_source_count", 0),
        "conversationCount": getattr(mind, "conversation_count", 0),
    }


class ChatbotListApi(WorkspaceApiView):
    required_scopes = {"GET": "minds:read"}

    @extend_schema(
        operation_id="trigglio_chatbots_list",
        tags=TAGS,
        description="The minds this key may use, as Trigglio chatbots (`descriptor` is the headline), newest first.",
        parameters=[PageQuerySerializer],
        responses={
            200: envelope(
                "ChatbotListResponse",
                chatbots=ChatbotSerializer(many=True),
                pagination=PaginationSerializer(),
            ),
            **errors(*COMMON_ERRORS),
        },
    )
    def get(self, request):
        params = query_params(PageQuerySerializer, request)
        page = paginate(mind_list(principal=self.principal), **params)
        return success(chatbots=[chatbot_data(mind) for mind in page.items], pagination=page.meta)


class ChatbotSourceSerializer(serializers.Serializer):
    id = serializers.CharField()
    chatbotId = serializers.CharField()
    name = serializers.CharField()
    type = serializers.ChoiceField(choices=["text", "url", "file"])
    status = serializers.ChoiceField(choices=["pending", "processing", "ready", "error"])
    sourceType = serializers.ChoiceField(
        choices=Source.Type.choices, help_text="The mind's own type (url, document, text, youtube, podcast)."
    )
    processingStatus = serializers.ChoiceField(
        choices=Source.Status.choices, help_text="The mind's own status (transcribing shows as processing)."
    )
    url = serializers.CharField(allow_null=True)
    fileUrl = serializers.CharField(allow_null=True)
    fileName = serializers.CharField(allow_null=True)
    mimeType = serializers.CharField(allow_null=True)
    fileSize = serializers.IntegerField(allow_null=True)
    chunkCount = serializers.IntegerField()
    tokenCount = serializers.IntegerField()
    errorCode = serializers.CharField(allow_null=True)
    errorMessage = serializers.CharField(allow_null=True)
    createdAt = serializers.DateTimeField()
    updatedAt = serializers.DateTimeField()


def chatbot_source_data(source: Source) -> dict:
    native = source_data(source)
    return {
        "id": source.id,
        "chatbotId": source.mind_id,
        "name": source.name,
        "type": CHATBOT_TYPE[source.type],
        "status": CHATBOT_STATUS[source.status],
        "sourceType": source.type,
        "processingStatus": source.status,
        **{
            field: native[field]
            for field in (
                "url",
                "fileUrl",
                "fileName",
                "mimeType",
                "fileSize",
                "chunkCount",
                "tokenCount",
                "errorCode",
                "errorMessage",
                "createdAt",
                "updatedAt",
            )
        },
    }


class ChatbotSourceQuerySerializer(PageQuerySerializer):
    status = serializers.ChoiceField(choices=list(STATUS_FILTER), required=False)
    type = serializers.ChoiceField(choices=list(TYPE_FILTER), required=False)


class ChatbotSourceInputSerializer(StrictSerializer):
    type = serializers.ChoiceField(choices=["text", "url", "file"])
    name = serializers.CharField(max_length=255, required=False, allow_blank=True)
    content = serializers.CharField(max_length=MAX_TEXT_CHARS, required=False, trim_whitespace=False)
    url = serializers.CharField(max_length=2000, required=False)
    fileUrl = serializers.CharField(
        max_length=2000, required=False, help_text="From POST /api/v1/minds/{id}/knowledge/upload."
    )
    fileName = serializers.CharField(max_length=255, required=False)
    mimeType = serializers.CharField(max_length=120, required=False)
    fileSize = serializers.IntegerField(min_value=0, max_value=MAX_CLAIMED_FILE_SIZE, required=False)
    callbackUrl = serializers.CharField(max_length=2000, required=False, allow_blank=True)

    REQUIRED = {"text": "content", "url": "url", "file": "fileUrl"}
    ALLOWED = {"text": {"content"}, "url": {"url"}, "file": {"fileUrl", "fileName", "mimeType", "fileSize"}}
    COMMON = {"type", "name", "callbackUrl"}

    def validate(self, attrs):
        kind = attrs["type"]
        problems = {}
        if not attrs.get(self.REQUIRED[kind]) or (kind == "text" and not attrs["content"].strip()):
            problems[self.REQUIRED[kind]] = [f"Required for a {kind} source."]
        for field in set(attrs) - self.ALLOWED[kind] - self.COMMON:
            problems[field] = [f"Not used by a {kind} source."]
        if problems:
            raise serializers.ValidationError(problems)
        return attrs


def _source_create(mind, data: dict) -> Source:
    """A chatbot source as the mind's own: a URL that is a YouTube video becomes a youtube source (its captions or
    transcript, not the player page), a file is a document or, for an audio upload, a podcast."""
    common = {"mind": mind, "name": data.get("name"), "callback_url": data.get("callbackUrl")}
    if data["type"] == "text":
        return services.source_create(kind=Source.Type.TEXT, content=data["content"], **common)
    if data["type"] == "url":
        if youtube_video_id(data["url"]):
            return services.source_create(kind=Source.Type.YOUTUBE, youtube_url=data["url"], **common)
        return services.source_create(kind=Source.Type.URL, url=data["url"], **common)
    kind = selectors.upload_source_kind(mind=mind, file_url=data["fileUrl"])
    return services.source_create(
        kind=kind, file_url=data["fileUrl"], file_name=data.get("fileName"), **common
    )


class ChatbotSourceListApi(MindScopedApiView):
    required_scopes = {"GET": "minds:read", "POST": "minds:write"}

    @extend_schema(
        operation_id="trigglio_chatbot_sources_list",
        tags=TAGS,
        description=(
            "The chatbot's knowledge sources, newest first. `status`: pending, processing (also transcribing), "
            "ready, error (failed). `type`: text, url (also youtube), file (document, podcast)."
        ),
        parameters=[CHATBOT_ID, ChatbotSourceQuerySerializer],
        responses={
            200: envelope(
                "ChatbotSourceListResponse",
                sources=ChatbotSourceSerializer(many=True),
                pagination=PaginationSerializer(),
            ),
            **errors(*COMMON_ERRORS),
        },
    )
    def get(self, request):
        params = query_params(ChatbotSourceQuerySerializer, request)
        sources = selectors.chatbot_sources(
            mind=self.mind,
            statuses=STATUS_FILTER.get(params.get("status")),
            types=TYPE_FILTER.get(params.get("type")),
        )
        page = paginate(sources, page=params["page"], limit=params["limit"])
        return success(sources=[chatbot_source_data(s) for s in page.items], pagination=page.meta)

    @extend_schema(
        operation_id="trigglio_chatbot_sources_create",
        tags=TAGS,
        description=(
            "Adds a source in `pending`: `text` with `content`, `url` with `url` (a YouTube video link is "
            "transcribed), or `file` with the `fileUrl` of an upload (a document, or audio). Same rules as the "
            "native knowledge API: SSRF checks, limits, 400 `duplicate_source`."
        ),
        parameters=[CHATBOT_ID],
        request=ChatbotSourceInputSerializer,
        responses={
            201: envelope("ChatbotSourceCreateResponse", source=ChatbotSourceSerializer()),
            **errors(*COMMON_ERRORS),
        },
    )
    def post(self, request):
        data = body(ChatbotSourceInputSerializer, request)
        source = _source_create(self.mind, data)
        return success(201, headers={"Retry-After": POLL_AFTER_SECONDS}, source=chatbot_source_data(source))


class ChatbotSearchInputSerializer(SearchInputSerializer):
    # Trigglio's chatbot search defaults to pure vector similarity (the mind search to hybrid).
    mode = serializers.ChoiceField(choices=MODES, default="vector")


class ChatbotSearchApi(MindScopedApiView):
    required_scopes = {"POST": "knowledge:search"}
    extra_rate_limits = ("search",)

    @extend_schema(
        operation_id="trigglio_chatbot_search",
        tags=TAGS,
        description=(
            "The mind search (POST /api/v1/minds/{id}/search) under Trigglio's chatbot path; `mode` defaults to "
            "`vector` as Trigglio documents."
        ),
        parameters=[CHATBOT_ID],
        request=ChatbotSearchInputSerializer,
        responses={
            200: envelope(
                "ChatbotSearchResponse",
                results=SearchResultSerializer(many=True),
                mode=serializers.CharField(),
            ),
            **errors(*COMMON_ERRORS),
        },
    )
    def post(self, request):
        data = body(ChatbotSearchInputSerializer, request)
        hits = search_chunks(
            mind=self.mind,
            query=data["query"],
            limit=data["limit"],
            threshold=data["threshold"],
            mode=data["mode"],
        )
        return success(results=[result_data(h) for h in hits], mode=data["mode"])
