"""Knowledge shapes on the wire (camelCase): sources, uploads, collections, and the input of each."""

from django.conf import settings
from rest_framework import serializers

from config.api.pagination import PageQuerySerializer
from config.api.serializers import StrictSerializer, iso
from knowledge.models import Collection, Source, UploadedFile
from knowledge.passwords import MAX_PASSWORD_CHARS
from minds.serializers import SourceStatsSerializer  # one component for minds and collections

# The size a client claims is informational (the stored upload's size is used); this only keeps it in bigint.
MAX_CLAIMED_FILE_SIZE = 2**53


def file_url(upload: UploadedFile) -> str:
    """The URL a client passes back as `fileUrl`: the upload's download under its owner (a mind or a collection),
    and only usable in that owner."""
    owner = f"minds/{upload.mind_id}" if upload.mind_id else f"collections/{upload.collection_id}"
    return f"{settings.PUBLIC_BASE_URL}/api/v1/{owner}/knowledge/files/{upload.id}"


def upload_data(upload: UploadedFile) -> dict:
    return {
        "fileId": upload.id,
        "fileUrl": file_url(upload),
        "fileName": upload.file_name,
        "mimeType": upload.mime_type,
        "fileSize": upload.file_size,
        "category": upload.category,
    }


def source_data(source: Source) -> dict:
    return {
        "id": source.id,
        "mindId": source.mind_id,
        "collectionId": source.collection_id,
        "name": source.name,
        "type": source.type,
        "status": source.status,
        "url": source.url or None,
        "youtubeVideoId": source.youtube_video_id or None,
        "audioUrl": source.audio_url or None,
        "feedUrl": source.feed_url or None,
        "fileUrl": file_url(source.upload) if source.upload_id and source.upload else None,
        "fileName": source.file_name or None,
        "mimeType": source.mime_type or None,
        "fileSize": source.file_size,
        "contentHash": source.content_hash or None,
        "callbackUrl": source.callback_url or None,
        "refreshIntervalHours": source.refresh_interval_hours,
        "nextRefreshAt": iso(source.next_refresh_at),
        "metadata": source.metadata,
        "errorCode": source.error_code or None,
        "errorMessage": source.error_message or None,
        "attempts": source.attempts,
        "chunkCount": source.chunk_count,
        "tokenCount": source.token_count,
        "pageCount": source.page_count,
        "durationSeconds": source.duration_seconds,
        "embeddingModel": source.embedding_model or None,
        "createdAt": iso(source.created_at),
        "updatedAt": iso(source.updated_at),
        "queuedAt": iso(source.queued_at),
        "processingStartedAt": iso(source.processing_started_at),
        "transcribingStartedAt": iso(source.transcribing_started_at),
        "readyAt": iso(source.ready_at),
        "failedAt": iso(source.failed_at),
    }


class SourceSerializer(serializers.Serializer):
    """Documents `source_data` in the OpenAPI schema."""

    id = serializers.CharField()
    mindId = serializers.CharField(
        allow_null=True, help_text="The mind it belongs to; null for a collection's."
    )
    collectionId = serializers.CharField(
        allow_null=True, help_text="The collection it belongs to; null for a mind's."
    )
    name = serializers.CharField()
    type = serializers.ChoiceField(choices=Source.Type.choices)
    status = serializers.ChoiceField(choices=Source.Status.choices)
    url = serializers.CharField(allow_null=True)
    youtubeVideoId = serializers.CharField(allow_null=True)
    audioUrl = serializers.CharField(allow_null=True)
    feedUrl = serializers.CharField(allow_null=True)
    fileUrl = serializers.CharField(allow_null=True)
    fileName = serializers.CharField(allow_null=True)
    mimeType = serializers.CharField(allow_null=True)
    fileSize = serializers.IntegerField(allow_null=True)
    contentHash = serializers.CharField(allow_null=True)
    callbackUrl = serializers.CharField(allow_null=True)
    refreshIntervalHours = serializers.IntegerField(allow_null=True)
    nextRefreshAt = serializers.DateTimeField(allow_null=True)
    metadata = serializers.DictField()
    errorCode = serializers.CharField(allow_null=True)
    errorMessage = serializers.CharField(allow_null=True)
    attempts = serializers.IntegerField()
    chunkCount = serializers.IntegerField()
    tokenCount = serializers.IntegerField()
    pageCount = serializers.IntegerField(allow_null=True)
    durationSeconds = serializers.FloatField(allow_null=True)
    embeddingModel = serializers.CharField(allow_null=True)
    createdAt = serializers.DateTimeField()
    updatedAt = serializers.DateTimeField()
    queuedAt = serializers.DateTimeField(allow_null=True)
    processingStartedAt = serializers.DateTimeField(allow_null=True)
    transcribingStartedAt = serializers.DateTimeField(allow_null=True)
    readyAt = serializers.DateTimeField(allow_null=True)
    failedAt = serializers.DateTimeField(allow_null=True)


class UploadSerializer(serializers.Serializer):
    fileId = serializers.CharField()
    fileUrl = serializers.CharField()
    fileName = serializers.CharField()
    mimeType = serializers.CharField()
    fileSize = serializers.IntegerField()
    category = serializers.ChoiceField(choices=UploadedFile.Category.choices)


MAX_TEXT_CHARS = 2_000_000


class SourceInputSerializer(StrictSerializer):
    """One shape for every type; `validate` checks which fields each type needs."""

    name = serializers.CharField(max_length=255, required=False, allow_blank=True)
    type = serializers.ChoiceField(choices=Source.Type.choices)
    url = serializers.CharField(max_length=2000, required=False)
    fileUrl = serializers.CharField(max_length=2000, required=False)
    fileName = serializers.CharField(max_length=255, required=False)
    mimeType = serializers.CharField(max_length=120, required=False)
    fileSize = serializers.IntegerField(min_value=0, max_value=MAX_CLAIMED_FILE_SIZE, required=False)
    content = serializers.CharField(max_length=MAX_TEXT_CHARS, required=False, trim_whitespace=False)
    youtubeUrl = serializers.CharField(max_length=2000, required=False)
    audioUrl = serializers.CharField(max_length=2000, required=False)
    feedUrl = serializers.CharField(max_length=2000, required=False)
    callbackUrl = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    password = serializers.CharField(
        max_length=MAX_PASSWORD_CHARS,
        required=False,
        write_only=True,
        trim_whitespace=False,
        help_text="A document's password, for a PDF that needs one to open. Stored encrypted, used only to open "
        "the file; never returned or logged.",
    )
    refreshIntervalHours = serializers.IntegerField(
        min_value=1,
        max_value=24 * 365,
        required=False,
        allow_null=True,
        help_text="A url source or a podcast feed is fetched again this often; only changed chunks are embedded "
        "again.",
    )

    REQUIRED = {
        "url": ("url",),
        "document": ("fileUrl",),
        "text": ("content",),
        "youtube": ("youtubeUrl",),
    }
    ALLOWED = {
        "url": {"url", "refreshIntervalHours"},
        "document": {"fileUrl", "fileName", "mimeType", "fileSize", "password"},
        "text": {"content"},
        "youtube": {"youtubeUrl"},
        "podcast": {
            "fileUrl",
            "fileName",
            "mimeType",
            "fileSize",
            "audioUrl",
            "feedUrl",
            "refreshIntervalHours",
        },
    }
    COMMON = {"name", "type", "callbackUrl"}

    def validate(self, attrs):
        kind = attrs["type"]
        errors = {}
        for field in self.REQUIRED.get(kind, ()):
            if not attrs.get(field):
                errors[field] = [f"Required for a {kind} source."]
        for field in set(attrs) - self.ALLOWED[kind] - self.COMMON:
            errors[field] = [f"Not used by a {kind} source."]
        if kind == "podcast":
            given = [f for f in ("fileUrl", "audioUrl", "feedUrl") if attrs.get(f)]
            if len(given) != 1:
                errors["podcast"] = ["Give exactly one of fileUrl, audioUrl or feedUrl."]
            if attrs.get("refreshIntervalHours") and not attrs.get("feedUrl"):
                errors["refreshIntervalHours"] = ["Only a podcast feed (feedUrl) is fetched again."]
        if kind == "text" and "content" in attrs and not attrs["content"].strip():
            errors["content"] = ["The text is empty."]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


def source_create_arguments(data: dict) -> dict:
    """knowledge.services.source_create's arguments from a validated SourceInputSerializer body, for a mind's or a
    collection's knowledge alike. mimeType and fileSize are informational: the stored upload's own are used."""
    return {
        "kind": data["type"],
        "name": data.get("name"),
        "url": data.get("url"),
        "file_url": data.get("fileUrl"),
        "file_name": data.get("fileName"),
        "content": data.get("content"),
        "youtube_url": data.get("youtubeUrl"),
        "audio_url": data.get("audioUrl"),
        "feed_url": data.get("feedUrl"),
        "callback_url": data.get("callbackUrl"),
        "password": data.get("password"),
        "refresh_interval_hours": data.get("refreshIntervalHours"),
    }


class SourceListQuerySerializer(PageQuerySerializer):
    status = serializers.ChoiceField(choices=Source.Status.choices, required=False)
    type = serializers.ChoiceField(choices=Source.Type.choices, required=False)


# Collections ------------------------------------------------------------------------------------------------------


def collection_data(collection: Collection) -> dict:
    """A collection as lists show it; `knowledge_source_count` and `reachable_minds` come from the selectors."""
    return {
        "id": collection.id,
        "name": collection.name,
        "slug": collection.slug,
        "description": collection.description,
        "image": collection.image or None,
        "privacy": collection.privacy,
        "mindIds": [mind.id for mind in collection.reachable_minds],
        "knowledgeSourceCount": collection.knowledge_source_count,
        "createdAt": iso(collection.created_at),
        "updatedAt": iso(collection.updated_at),
    }


def collection_detail_data(collection: Collection, source_stats: dict) -> dict:
    return {
        **collection_data(collection),
        "sourceLimit": collection.workspace.effective_source_limit_per_mind,
        "sourceStats": source_stats,
    }


class CollectionSerializer(serializers.Serializer):
    """Documents `collection_data`."""

    id = serializers.CharField()
    name = serializers.CharField()
    slug = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    image = serializers.CharField(allow_null=True)
    privacy = serializers.ChoiceField(choices=Collection.Privacy.choices)
    mindIds = serializers.ListField(
        child=serializers.CharField(), help_text="The minds it is attached to, within the key's reach."
    )
    knowledgeSourceCount = serializers.IntegerField()
    createdAt = serializers.DateTimeField()
    updatedAt = serializers.DateTimeField()


class CollectionDetailSerializer(CollectionSerializer):
    sourceLimit = serializers.IntegerField()
    sourceStats = SourceStatsSerializer()


def _http_url(value: str) -> str:
    if value and not value.lower().startswith(("https://", "http://")):
        raise serializers.ValidationError("Only http(s) URLs are allowed.")
    return value


class CollectionInputSerializer(StrictSerializer):
    name = serializers.CharField(max_length=100, min_length=1)
    description = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    image = serializers.URLField(max_length=2000, required=False, allow_blank=True, validators=[_http_url])
    privacy = serializers.ChoiceField(choices=Collection.Privacy.choices, required=False)


class CollectionUpdateSerializer(CollectionInputSerializer):
    name = serializers.CharField(max_length=100, min_length=1, required=False)


class MindCollectionsInputSerializer(StrictSerializer):
    collectionIds = serializers.ListField(
        child=serializers.CharField(max_length=40), max_length=100, allow_empty=True
    )
