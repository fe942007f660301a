"""The native collections API: collections, their knowledge and search, and which collections a mind draws on.

A collection's knowledge endpoints take the same bodies, filters and answers as a mind's (knowledge/apis.py); its
sources say `collectionId` where a mind's say `mindId`. Access: the workspace's collections, or, for a key
restricted to some minds, those attached to its minds (knowledge.selectors.collections_reachable); such a key may
not create or delete collections (403 `key_restricted_to_minds`).
"""

from typing import Any

from django.http import FileResponse, HttpRequest, HttpResponseBase
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request

from config.api.errors import ValidationFailed
from config.api.pagination import PageQuerySerializer, paginate
from config.api.schema import COMMON_ERRORS, PaginationSerializer, envelope, errors
from config.api.serializers import body, query_params
from config.api.views import WorkspaceApiView, success
from knowledge import selectors, services
from knowledge.apis import POLL_AFTER_SECONDS, upload_response, upload_responses
from knowledge.models import Collection
from knowledge.search import KnowledgeScope, search_chunks
from knowledge.search_apis import SearchInputSerializer, SearchResultSerializer, result_data
from knowledge.serializers import (
    CollectionDetailSerializer,
    CollectionInputSerializer,
    CollectionSerializer,
    CollectionUpdateSerializer,
    MindCollectionsInputSerializer,
    SourceInputSerializer,
    SourceListQuerySerializer,
    SourceSerializer,
    collection_data,
    collection_detail_data,
    source_create_arguments,
    source_data,
)
from minds.apis_base import MindScopedApiView


# No class docstring: drf-spectacular would print an inherited one as every operation's description.
class CollectionScopedApiView(WorkspaceApiView):
    # The URL's collection, resolved once after authentication, scope and rate limit (as MindScopedApiView does
    # for minds), so a request without a valid key cannot learn which collections exist.
    collection: Collection

    def dispatch(
        self, request: HttpRequest, *args: Any, collection_id: str, **kwargs: Any
    ) -> HttpResponseBase:
        self.collection_id = collection_id
        return super().dispatch(request, *args, **kwargs)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        if request.method != "OPTIONS" and hasattr(self, request.method.lower()):
            self.collection = selectors.collection_get(
                principal=self.principal, collection_id=self.collection_id
            )


def _detail(view: WorkspaceApiView, collection: Collection) -> dict:
    collection = selectors.collection_with_minds(principal=view.principal, collection=collection)
    return collection_detail_data(collection, selectors.collection_source_stats(collection=collection))


class CollectionListApi(WorkspaceApiView):
    required_scopes = {"GET": "minds:read", "POST": "minds:write"}

    @extend_schema(
        operation_id="collections_list",
        description="The workspace's collections; a key restricted to some minds sees those attached to its minds.",
        parameters=[PageQuerySerializer],
        responses={
            200: envelope(
                "CollectionListResponse",
                collections=CollectionSerializer(many=True),
                pagination=PaginationSerializer(),
            ),
            **errors(*COMMON_ERRORS),
        },
    )
    def get(self, request):
        params = query_params(PageQuerySerializer, request)
        page = paginate(selectors.collection_list(principal=self.principal), **params)
        return success(collections=[collection_data(c) for c in page.items], pagination=page.meta)

    @extend_schema(
        operation_id="collections_create",
        description=(
            "A named set of knowledge several minds draw on (attach it with `PUT /minds/{id}/collections`). A key "
            "restricted to some minds cannot create collections: 403 `key_restricted_to_minds`."
        ),
        request=CollectionInputSerializer,
        responses={
            201: envelope("CollectionCreateResponse", collection=CollectionDetailSerializer()),
            **errors(*COMMON_ERRORS),
        },
    )
    def post(self, request):
        data = body(CollectionInputSerializer, request)
        selectors.collection_manage_check(principal=self.principal)
        collection = services.collection_create(
            workspace=self.workspace,
            name=data["name"],
            description=data.get("description", ""),
            image=data.get("image", ""),
            privacy=data.get("privacy", Collection.Privacy.PRIVATE),
        )
        return success(201, collection=_detail(self, collection))


class CollectionDetailApi(CollectionScopedApiView):
    required_scopes = {"GET": "minds:read", "PATCH": "minds:write", "DELETE": "minds:write"}

    @extend_schema(
        operation_id="collections_retrieve",
        responses={
            200: envelope("CollectionDetailResponse", collection=CollectionDetailSerializer()),
            **errors(*COMMON_ERRORS),
        },
    )
    def get(self, request):
        return success(collection=_detail(self, self.collection))

    @extend_schema(
        operation_id="collections_update",
        request=CollectionUpdateSerializer,
        responses={
            200: envelope("CollectionUpdateResponse", collection=CollectionDetailSerializer()),
            **errors(*COMMON_ERRORS),
        },
    )
    def patch(self, request):
        data = body(CollectionUpdateSerializer, request)
        collection = services.collection_update(collection=self.collection, changes=dict(data))
        return success(collection=_detail(self, collection))

    @extend_schema(
        operation_id="collections_destroy",
        description=(
            "Deletes the collection with its sources, chunks and files; the minds it was attached to no longer "
            "draw on it. A key restricted to some minds cannot: 403 `key_restricted_to_minds`."
        ),
        responses={
            200: envelope(
                "CollectionDeleteResponse", deleted=serializers.BooleanField(), id=serializers.CharField()
            ),
            **errors(*COMMON_ERRORS),
        },
    )
    def delete(self, request):
        selectors.collection_manage_check(principal=self.principal)
        return success(deleted=True, id=services.collection_delete(collection=self.collection))


class CollectionSourceListApi(CollectionScopedApiView):
    required_scopes = {"GET": "minds:read", "POST": "minds:write"}

    @extend_schema(
        operation_id="collection_knowledge_list",
        parameters=[SourceListQuerySerializer],
        responses={
            200: envelope(
                "CollectionSourceListResponse",
                sources=SourceSerializer(many=True),
                pagination=PaginationSerializer(),
            ),
            **errors(*COMMON_ERRORS),
        },
    )
    def get(self, request):
        params = query_params(SourceListQuerySerializer, request)
        page = paginate(
            selectors.source_list(
                collection=self.collection, status=params.get("status"), type=params.get("type")
            ),
            page=params["page"],
            limit=params["limit"],
        )
        return success(sources=[source_data(s) for s in page.items], pagination=page.meta)

    @extend_schema(
        operation_id="collection_knowledge_create",
        description=(
            "Adds a knowledge source to the collection, in `pending`, with the same bodies as a mind's knowledge "
            "(`url`, `document`, `text`, `youtube`, `podcast`); every mind the collection is attached to searches it "
            "once it is `ready`. The same URL or content twice in a collection gives 400 `duplicate_source`."
        ),
        request=SourceInputSerializer,
        responses={
            201: envelope("CollectionSourceCreateResponse", source=SourceSerializer()),
            **errors(*COMMON_ERRORS),
        },
    )
    def post(self, request):
        data = body(SourceInputSerializer, request)
        source = services.source_create(collection=self.collection, **source_create_arguments(data))
        return success(201, headers={"Retry-After": POLL_AFTER_SECONDS}, source=source_data(source))


class CollectionSourceDetailApi(CollectionScopedApiView):
    required_scopes = {"GET": "minds:read", "DELETE": "minds:write"}

    @extend_schema(
        operation_id="collection_knowledge_retrieve",
        description="The full source. While it is unfinished the response carries `Retry-After: 5`.",
        responses={
            200: envelope("CollectionSourceDetailResponse", source=SourceSerializer()),
            **errors(*COMMON_ERRORS),
        },
    )
    def get(self, request, source_id: str):
        source = selectors.source_get(collection=self.collection, source_id=source_id)
        headers = None if source.is_finished else {"Retry-After": POLL_AFTER_SECONDS}
        return success(headers=headers, source=source_data(source))

    @extend_schema(
        operation_id="collection_knowledge_destroy",
        responses={
            200: envelope(
                "CollectionSourceDeleteResponse",
                deleted=serializers.BooleanField(),
                id=serializers.CharField(),
            ),
            **errors(*COMMON_ERRORS),
        },
    )
    def delete(self, request, source_id: str):
        source = selectors.source_get(collection=self.collection, source_id=source_id)
        return success(deleted=True, id=services.source_delete(source=source))


class CollectionSourceReprocessApi(CollectionScopedApiView):
    required_scopes = {"POST": "minds:write"}

    @extend_schema(
        operation_id="collection_knowledge_reprocess",
        request=None,
        responses={
            200: envelope("CollectionSourceReprocessResponse", source=SourceSerializer()),
            **errors(*COMMON_ERRORS, 409),
        },
    )
    def post(self, request, source_id: str):
        source = selectors.source_get(collection=self.collection, source_id=source_id)
        source = services.source_reprocess(source=source)
        return success(headers={"Retry-After": POLL_AFTER_SECONDS}, source=source_data(source))


class CollectionUploadApi(CollectionScopedApiView):
    required_scopes = {"POST": "minds:write"}
    parser_classes = [MultiPartParser]

    @extend_schema(
        operation_id="collection_knowledge_upload",
        description=(
            "Multipart `file`, with the same types, limits, deduplication and expiry as a mind's upload. The "
            "returned `fileUrl` points at this collection and is accepted only by a `document` or `podcast` source "
            "of this collection."
        ),
        request={
            "multipart/form-data": inline_serializer(
                "CollectionUploadRequest", fields={"file": serializers.FileField()}
            )
        },
        responses={
            **upload_responses("CollectionUploadResponse"),
            **errors(*COMMON_ERRORS, 413, 415),
        },
    )
    def post(self, request):
        files = request.FILES.getlist("file")
        if len(files) != 1:
            raise ValidationFailed(
                "Send exactly one file in the multipart field `file`.",
                details={"fields": {"file": ["Exactly one file is required."]}},
            )
        return upload_response(services.upload_store(collection=self.collection, file=files[0]))


class CollectionUploadDownloadApi(CollectionScopedApiView):
    required_scopes = {"GET": "minds:read"}

    @extend_schema(
        operation_id="collection_knowledge_file_download",
        description="The bytes of a file uploaded to the collection (what its `fileUrl` points at).",
        # The stored file's own type (text/plain, application/pdf, …), whatever it was uploaded as.
        responses={(200, "*/*"): bytes, **errors(*COMMON_ERRORS)},
        parameters=[OpenApiParameter("file_id", str, OpenApiParameter.PATH)],
    )
    def get(self, request, file_id: str):
        upload = selectors.upload_get(collection=self.collection, upload_id=file_id)
        return FileResponse(
            upload.file.open("rb"),
            as_attachment=True,
            filename=upload.file_name,
            content_type=upload.mime_type,
        )


class CollectionSearchApi(CollectionScopedApiView):
    required_scopes = {"POST": "knowledge:search"}
    extra_rate_limits = ("search",)

    @extend_schema(
        operation_id="collection_search",
        description=(
            "Searches the collection's ready passages, with the same body, modes and scores as "
            "`POST /minds/{id}/search`. Rate limited with the other searches (30/min per key by default)."
        ),
        request=SearchInputSerializer,
        responses={
            200: envelope(
                "CollectionSearchResponse",
                results=SearchResultSerializer(many=True),
                mode=serializers.CharField(),
            ),
            **errors(*COMMON_ERRORS),
        },
    )
    def post(self, request):
        data = body(SearchInputSerializer, request)
        hits = search_chunks(
            scope=KnowledgeScope.of_collections([self.collection.id]),
            query=data["query"],
            limit=data["limit"],
            threshold=data["threshold"],
            mode=data["mode"],
        )
        return success(results=[result_data(h) for h in hits], mode=data["mode"])


def _mind_collections(view: MindScopedApiView) -> dict:
    collections = list(selectors.mind_collection_list(principal=view.principal, mind=view.mind))
    return {
        "collectionIds": [c.id for c in collections],
        "collections": [collection_data(c) for c in collections],
    }


class MindCollectionsApi(MindScopedApiView):
    required_scopes = {"GET": "minds:read", "PUT": "minds:write"}

    @extend_schema(
        operation_id="mind_collections_retrieve",
        description="The collections the mind draws on: its search and chat cover their ready sources too.",
        responses={
            200: envelope(
                "MindCollectionsResponse",
                collectionIds=serializers.ListField(child=serializers.CharField()),
                collections=CollectionSerializer(many=True),
            ),
            **errors(*COMMON_ERRORS),
        },
    )
    def get(self, request):
        return success(**_mind_collections(self))

    @extend_schema(
        operation_id="mind_collections_set",
        description=(
            "Attaches exactly these collections to the mind (an empty list detaches all). Each must be a collection "
            "the key reaches; another is refused as unknown (400 `validation_error`)."
        ),
        request=MindCollectionsInputSerializer,
        responses={
            200: envelope(
                "MindCollectionsSetResponse",
                collectionIds=serializers.ListField(child=serializers.CharField()),
                collections=CollectionSerializer(many=True),
            ),
            **errors(*COMMON_ERRORS),
        },
    )
    def put(self, request):
        data = body(MindCollectionsInputSerializer, request)
        services.mind_collections_set(
            mind=self.mind,
            collection_ids=data["collectionIds"],
            available=selectors.collections_reachable(principal=self.principal),
        )
        return success(**_mind_collections(self))
