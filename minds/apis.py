from drf_spectacular.utils import extend_schema
from rest_framework import serializers

from config.api.pagination import PageQuerySerializer, paginate
from config.api.schema import COMMON_ERRORS, PaginationSerializer, envelope, errors
from config.api.serializers import StrictSerializer, body, query_params
from config.api.views import WorkspaceApiView, success
from minds import selectors, services
from minds.apis_base import MindScopedApiView
from minds.serializers import (
    MindDetailSerializer,
    MindInputSerializer,
    MindSerializer,
    MindUpdateSerializer,
    mind_changes,
    mind_detail_data,
)


class UsageSerializer(serializers.Serializer):
    mindsUsed = serializers.IntegerField()
    mindsLimit = serializers.IntegerField()
    sourcesUsed = serializers.IntegerField()
    sourcesLimit = serializers.IntegerField()
    storageUsed = serializers.IntegerField(help_text="Bytes of the workspace's uploads.")
    storageLimit = serializers.IntegerField(help_text="STORAGE_LIMIT_BYTES.")


class MindListApi(WorkspaceApiView):
    required_scopes = {"GET": "minds:read", "POST": "minds:write"}

    @extend_schema(
        operation_id="minds_list",
        parameters=[PageQuerySerializer],
        responses={
            200: envelope(
                "MindListResponse",
                minds=MindSerializer(many=True),
                usage=UsageSerializer(),
                pagination=PaginationSerializer(),
            ),
            **errors(*COMMON_ERRORS),
        },
    )
    def get(self, request):
        params = query_params(PageQuerySerializer, request)
        page = paginate(selectors.mind_list(principal=self.principal), **params)
        return success(
            minds=MindSerializer(page.items, many=True).data,
            usage=selectors.workspace_usage(workspace=self.workspace),
            pagination=page.meta,
        )

    @extend_schema(
        operation_id="minds_create",
        request=MindInputSerializer,
        responses={
            201: envelope("MindCreateResponse", mind=MindDetailSerializer()),
            **errors(*COMMON_ERRORS),
        },
    )
    def post(self, request):
        data = body(MindInputSerializer, request)
        mind = services.mind_create(workspace=self.workspace, changes=mind_changes(data))
        return success(201, mind=mind_detail_data(mind, selectors.mind_detail_counts(mind=mind)))


class MindDetailApi(MindScopedApiView):
    required_scopes = {"GET": "minds:read", "PATCH": "minds:write", "DELETE": "minds:write"}

    @extend_schema(
        operation_id="minds_retrieve",
        responses={
            200: envelope("MindDetailResponse", mind=MindDetailSerializer()),
            **errors(*COMMON_ERRORS),
        },
    )
    def get(self, request):
        return success(mind=mind_detail_data(self.mind, selectors.mind_detail_counts(mind=self.mind)))

    @extend_schema(
        operation_id="minds_update",
        description=(
            "Partial: send only the fields that change. `null` resets `theme` (the default theme), `socialLinks` "
            "(`{}`), `bio`, `headline`, `avatarUrl`, `model`, `language` (empty) and `topP`, `frequencyPenalty`, "
            "`presencePenalty` (the provider's default). The read-only fields of a GET (`id`, `createdAt`, "
            "`updatedAt`, the counters, `sourceLimit`, `sourceStats`, `publicUrl`, `usage`) are ignored, so a mind "
            "fetched, edited and sent back is accepted; `collectionIds` is accepted only unchanged (attach "
            "collections with `PUT /minds/{id}/collections`). Any other unknown field is 400 `validation_error`."
        ),
        request=MindUpdateSerializer,
        responses={
            200: envelope("MindUpdateResponse", mind=MindDetailSerializer()),
            **errors(*COMMON_ERRORS),
        },
    )
    def patch(self, request):
        data = body(MindUpdateSerializer, request, context={"mind": self.mind})
        mind = services.mind_update(mind=self.mind, changes=mind_changes(data))
        return success(mind=mind_detail_data(mind, selectors.mind_detail_counts(mind=mind)))

    @extend_schema(
        operation_id="minds_destroy",
        responses={
            200: envelope(
                "MindDeleteResponse", deleted=serializers.BooleanField(), id=serializers.CharField()
            ),
            **errors(*COMMON_ERRORS),
        },
    )
    def delete(self, request):
        return success(deleted=True, id=services.mind_delete(mind=self.mind))


class MindPublishInputSerializer(StrictSerializer):
    isPublished = serializers.BooleanField(default=True)


class MindPublishApi(MindScopedApiView):
    required_scopes = {"POST": "minds:write"}

    @extend_schema(
        operation_id="minds_publish",
        request=MindPublishInputSerializer,
        responses={
            200: envelope(
                "MindPublishResponse",
                mind=MindDetailSerializer(),
                publicUrl=serializers.CharField(allow_null=True),
                warning=serializers.CharField(required=False),
            ),
            **errors(*COMMON_ERRORS),
        },
    )
    def post(self, request):
        data = body(MindPublishInputSerializer, request)
        mind = services.mind_publish(mind=self.mind, is_published=data["isPublished"])
        warning = selectors.mind_publish_warning(mind=mind)
        return success(
            mind=mind_detail_data(mind, selectors.mind_detail_counts(mind=mind)),
            publicUrl=services.mind_public_url(mind) if mind.is_published else None,
            **({"warning": warning} if warning else {}),
        )
