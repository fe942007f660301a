from django.http import FileResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.parsers import MultiPartParser

from config.api.errors import ValidationFailed
from config.api.pagination import paginate
from config.api.schema import COMMON_ERRORS, PaginationSerializer, envelope, errors
from config.api.serializers import body, query_params
from config.api.views import success
from knowledge import selectors, services
from knowledge.serializers import (
    SourceInputSerializer,
    SourceListQuerySerializer,
    SourceSerializer,
    UploadSerializer,
    source_create_arguments,
    source_data,
    upload_data,
)
from minds.apis_base import MindScopedApiView

# While a source is unfinished, clients are told when to poll again.
POLL_AFTER_SECONDS = "5"


def upload_responses(name: str) -> dict:
    """201 for a new upload, 200 when the owner already had these bytes (`deduplicated`: the stored upload)."""
    fields = {
        **UploadSerializer().get_fields(),
        "deduplicated": serializers.BooleanField(),
        "durationSeconds": serializers.FloatField(
            allow_null=True, help_text="Audio only: read from its header."
        ),
    }
    return {201: envelope(name, **fields), 200: envelope(f"{name}Deduplicated", **fields)}


def upload_response(stored: services.StoredUpload):
    return success(
        200 if stored.deduplicated else 201,
        **upload_data(stored.upload),
        deduplicated=stored.deduplicated,
        durationSeconds=stored.duration_seconds,
    )


class SourceListApi(MindScopedApiView):
    required_scopes = {"GET": "minds:read", "POST": "minds:write"}

    @extend_schema(
        operation_id="knowledge_list",
        parameters=[SourceListQuerySerializer],
        responses={
            200: envelope(
                "SourceListResponse", sources=SourceSerializer(many=True), pagination=PaginationSerializer()
            ),
            **errors(*COMMON_ERRORS),
        },
    )
    def get(self, request):
        params = query_params(SourceListQuerySerializer, request)
        page = paginate(
            selectors.source_list(mind=self.mind, status=params.get("status"), type=params.get("type")),
            page=params["page"],
            limit=params["limit"],
        )
        return success(sources=[source_data(s) for s in page.items], pagination=page.meta)

    @extend_schema(
        operation_id="knowledge_create",
        description=(
            "Adds a knowledge source in `pending`; a worker takes it to `ready` or `failed`. URLs are checked against "
            "SSRF rules (`url_not_allowed`); the same URL or content twice in a mind gives 400 `duplicate_source`."
        ),
        request=SourceInputSerializer,
        responses={
            201: envelope("SourceCreateResponse", source=SourceSerializer()),
            **errors(*COMMON_ERRORS),
        },
    )
    def post(self, request):
        data = body(SourceInputSerializer, request)
        source = services.source_create(mind=self.mind, **source_create_arguments(data))
        return success(201, headers={"Retry-After": POLL_AFTER_SECONDS}, source=source_data(source))


class SourceDetailApi(MindScopedApiView):
    required_scopes = {"GET": "minds:read", "DELETE": "minds:write"}

    @extend_schema(
        operation_id="knowledge_retrieve",
        description="The full source. While it is unfinished the response carries `Retry-After: 5`.",
        responses={
            200: envelope("SourceDetailResponse", source=SourceSerializer()),
            **errors(*COMMON_ERRORS),
        },
    )
    def get(self, request, source_id: str):
        source = selectors.source_get(mind=self.mind, source_id=source_id)
        headers = None if source.is_finished else {"Retry-After": POLL_AFTER_SECONDS}
        return success(headers=headers, source=source_data(source))

    @extend_schema(
        operation_id="knowledge_destroy",
        responses={
            200: envelope(
                "SourceDeleteResponse", deleted=serializers.BooleanField(), id=serializers.CharField()
            ),
            **errors(*COMMON_ERRORS),
        },
    )
    def delete(self, request, source_id: str):
        source = selectors.source_get(mind=self.mind, source_id=source_id)
        return success(deleted=True, id=services.source_delete(source=source))


class SourceReprocessApi(MindScopedApiView):
    required_scopes = {"POST": "minds:write"}

    @extend_schema(
        operation_id="knowledge_reprocess",
        request=None,
        responses={
            200: envelope("SourceReprocessResponse", source=SourceSerializer()),
            **errors(*COMMON_ERRORS, 409),
        },
    )
    def post(self, request, source_id: str):
        source = selectors.source_get(mind=self.mind, source_id=source_id)
        source = services.source_reprocess(source=source)
        return success(headers={"Retry-After": POLL_AFTER_SECONDS}, source=source_data(source))


class UploadApi(MindScopedApiView):
    required_scopes = {"POST": "minds:write"}
    parser_classes = [MultiPartParser]

    @extend_schema(
        operation_id="knowledge_upload",
        description=(
            "Multipart `file`. PDF, DOCX, TXT, MD up to 50 MB; MP3, WAV, M4A, OGG up to 500 MB. The type is decided "
            "from the file's bytes, not its name or declared type; an audio file must have a decodable stream with "
            "a duration. The workspace's uploads count against its storage limit (`limit_exceeded`). The same bytes "
            "sent again return the stored upload with 200 and `deduplicated: true`. Pass the returned `fileUrl` to "
            "create a `document` or `podcast` source in the same mind; an upload no source uses expires after "
            "UPLOAD_UNATTACHED_TTL_HOURS."
        ),
        request={
            "multipart/form-data": inline_serializer(
                "UploadRequest", fields={"file": serializers.FileField()}
            )
        },
        responses={
            **upload_responses("UploadResponse"),
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
        return upload_response(services.upload_store(mind=self.mind, file=files[0]))


class UploadDownloadApi(MindScopedApiView):
    """The bytes of an uploaded file (what `fileUrl` points at), for the mind's owners only."""

    required_scopes = {"GET": "minds:read"}

    @extend_schema(
        operation_id="knowledge_file_download",
        # The stored file's own type (text/plain, application/pdf, …), whatever it was uploaded as.
        responses={(200, "*/*"): bytes, **errors(*COMMON_ERRORS)},
        parameters=[OpenApiParameter("file_id", str, OpenApiParameter.PATH)],
    )
    def get(self, request, file_id: str):
        upload = selectors.upload_get(mind=self.mind, upload_id=file_id)
        return FileResponse(
            upload.file.open("rb"),
            as_attachment=True,
            filename=upload.file_name,
            content_type=upload.mime_type,
        )
