from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.db import models
from pgvector.django import HnswIndex, VectorField

from accounts.models import Workspace
from config.ids import make_id
from minds.models import Mind


def source_id() -> str:
    return make_id("src")


def chunk_id() -> str:
    return make_id("chk")


def upload_id() -> str:
    return make_id("file")


def delivery_id() -> str:
    return make_id("whd")


def collection_id() -> str:
    return make_id("col")


def upload_path(instance: "UploadedFile", filename: str) -> str:
    owner = instance.mind_id or instance.collection_id
    return f"uploads/{instance.workspace_id}/{owner}/{instance.id}/{filename}"


class Collection(models.Model):
    """A named set of knowledge several minds draw on (OpenIndex collections, TypingMind knowledge-base tags).

    Its sources and chunks live in the same tables as a mind's, with `collection` set instead of `mind`, so one
    index serves both and nothing is copied: a mind's search covers `mind = it OR collection IN (attached)`.
    """

    class Privacy(models.TextChoices):
        PRIVATE = "private"
        PUBLIC = "public"

    id = models.CharField(primary_key=True, max_length=40, default=collection_id, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="collections")
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=120)
    description = models.TextField(max_length=2000, blank=True)
    image = models.URLField(max_length=2000, blank=True)
    privacy = models.CharField(max_length=20, choices=Privacy.choices, default=Privacy.PRIVATE)
    minds = models.ManyToManyField(Mind, blank=True, related_name="collections")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "slug"], name="collection_slug_unique_in_workspace")
        ]

    def __str__(self) -> str:
        return self.name


# A source, upload or chunk belongs to exactly one owner: a mind or a collection.
def _one_owner(name: str) -> models.CheckConstraint:
    return models.CheckConstraint(
        condition=(models.Q(mind__isnull=False, collection__isnull=True))
        | (models.Q(mind__isnull=True, collection__isnull=False)),
        name=name,
    )


class UploadedFile(models.Model):
    """A file uploaded to a mind; a `document`/`podcast` source refers to it by `fileUrl`."""

    class Category(models.TextChoices):
        DOCUMENT = "document"
        AUDIO = "audio"

    id = models.CharField(primary_key=True, max_length=40, default=upload_id, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="uploads")
    mind = models.ForeignKey(Mind, null=True, blank=True, on_delete=models.CASCADE, related_name="uploads")
    collection = models.ForeignKey(
        Collection, null=True, blank=True, on_delete=models.CASCADE, related_name="uploads"
    )
    file = models.FileField(upload_to=upload_path, max_length=500)
    file_name = models.CharField(max_length=255)
    mime_type = models.CharField(max_length=120)
    file_size = models.BigIntegerField()
    category = models.CharField(max_length=20, choices=Category.choices)
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [_one_owner("upload_has_one_owner")]

    def __str__(self) -> str:
        return self.file_name


class Source(models.Model):
    class Type(models.TextChoices):
        URL = "url"
        DOCUMENT = "document"
        TEXT = "text"
        YOUTUBE = "youtube"
        PODCAST = "podcast"

    class Status(models.TextChoices):
        PENDING = "pending"
        PROCESSING = "processing"
        TRANSCRIBING = "transcribing"
        READY = "ready"
        FAILED = "failed"

    UNFINISHED = (Status.PENDING, Status.PROCESSING, Status.TRANSCRIBING)
    BUSY = (Status.PROCESSING, Status.TRANSCRIBING)

    id = models.CharField(primary_key=True, max_length=40, default=source_id, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="sources")
    mind = models.ForeignKey(Mind, null=True, blank=True, on_delete=models.CASCADE, related_name="sources")
    collection = models.ForeignKey(
        Collection, null=True, blank=True, on_delete=models.CASCADE, related_name="sources"
    )
    type = models.CharField(max_length=20, choices=Type.choices)
    name = models.CharField(max_length=255)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    # What the user gave us.
    url = models.URLField(max_length=2000, blank=True)
    normalized_url = models.CharField(max_length=2000, blank=True)
    youtube_video_id = models.CharField(max_length=20, blank=True)
    audio_url = models.URLField(max_length=2000, blank=True)
    feed_url = models.URLField(max_length=2000, blank=True)
    upload = models.ForeignKey(
        UploadedFile, null=True, blank=True, on_delete=models.SET_NULL, related_name="sources"
    )
    file_name = models.CharField(max_length=255, blank=True)
    mime_type = models.CharField(max_length=120, blank=True)
    file_size = models.BigIntegerField(null=True, blank=True)
    content = models.TextField(blank=True)  # the text of a `text` source
    content_hash = models.CharField(max_length=64, blank=True)
    callback_url = models.URLField(max_length=2000, blank=True)
    # A document's password (a PDF that needs one to open), encrypted with a key derived from SECRET_KEY: never kept
    # in clear, never logged, never returned.
    password_ciphertext = models.TextField(blank=True)
    # URL and feed sources are fetched again this often (null: only on reprocess); next_refresh_at is when.
    refresh_interval_hours = models.PositiveIntegerField(null=True, blank=True)
    next_refresh_at = models.DateTimeField(null=True, blank=True)
    # What processing learned (title, episode, language, extractor…).
    metadata = models.JSONField(default=dict, blank=True)
    # Outcome.
    error_code = models.CharField(max_length=60, blank=True)
    error_message = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    chunk_count = models.PositiveIntegerField(default=0)
    token_count = models.PositiveIntegerField(default=0)
    page_count = models.PositiveIntegerField(null=True, blank=True)
    duration_seconds = models.FloatField(null=True, blank=True)
    embedding_model = models.CharField(max_length=120, blank=True)
    # A timestamp per stage.
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    processing_started_at = models.DateTimeField(null=True, blank=True)
    transcribing_started_at = models.DateTimeField(null=True, blank=True)
    ready_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    # The sweeper re-queues or fails an unfinished source past this time.
    deadline_at = models.DateTimeField(null=True, blank=True)
    # The claim's lease, renewed by the working process (knowledge/source_states.py): once it has passed, the
    # claimant is taken for dead and a redelivered task or the sweeper takes the source over. Null while no process
    # works on a busy source (handed to transcription, waiting in its queue: the deadline guards that wait).
    lease_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["mind", "status"], name="source_mind_status"),
            models.Index(fields=["status", "deadline_at"], name="source_status_deadline"),
            models.Index(fields=["status", "lease_expires_at"], name="source_status_lease"),
            models.Index(fields=["mind", "normalized_url"], name="source_mind_url"),
            models.Index(fields=["mind", "content_hash"], name="source_mind_hash"),
            models.Index(fields=["collection", "status"], name="source_collection_status"),
        ]
        constraints = [_one_owner("source_has_one_owner")]

    def __str__(self) -> str:
        return self.name

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.READY, self.Status.FAILED)


class Chunk(models.Model):
    """A span of a source's text with its embedding, full-text vector and position."""

    id = models.CharField(primary_key=True, max_length=40, default=chunk_id, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    mind = models.ForeignKey(Mind, null=True, blank=True, on_delete=models.CASCADE, related_name="chunks")
    collection = models.ForeignKey(
        Collection, null=True, blank=True, on_delete=models.CASCADE, related_name="chunks"
    )
    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="chunks")
    ordinal = models.PositiveIntegerField()
    content = models.TextField()
    content_hash = models.CharField(max_length=64)
    token_count = models.PositiveIntegerField(default=0)
    embedding = VectorField(dimensions=settings.EMBEDDING_DIMENSIONS)
    embedding_model = models.CharField(max_length=120)
    # `manage.py reembed` writes the new vector here while searches keep reading `embedding`, then swaps it in per
    # source in one transaction (knowledge/reembed.py); empty outside a re-embed.
    next_embedding = VectorField(dimensions=settings.EMBEDDING_DIMENSIONS, null=True, blank=True)
    next_embedding_model = models.CharField(max_length=120, blank=True)
    # Computed by PostgreSQL on every write, from the headings and the text, with the configuration the search
    # queries use (knowledge/search.py). A generated column needs an immutable expression: to_tsvector with a
    # constant regconfig is.
    search_vector = models.GeneratedField(
        expression=SearchVector("heading_path", "content", config="english"),
        output_field=SearchVectorField(),
        db_persist=True,
    )
    # Position of the span in its source.
    page = models.PositiveIntegerField(null=True, blank=True)
    heading_path = models.CharField(max_length=1000, blank=True)
    start_seconds = models.FloatField(null=True, blank=True)
    end_seconds = models.FloatField(null=True, blank=True)
    url = models.URLField(max_length=2000, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["source", "ordinal"]
        indexes = [
            HnswIndex(
                name="chunk_embedding_hnsw",
                fields=["embedding"],
                m=16,
                ef_construction=64,
                opclasses=["vector_cosine_ops"],
            ),
            GinIndex(fields=["search_vector"], name="chunk_search_vector_gin"),
            models.Index(fields=["mind", "source"], name="chunk_mind_source"),
            models.Index(fields=["collection", "source"], name="chunk_collection_source"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["source", "ordinal"], name="chunk_ordinal_unique_in_source"),
            _one_owner("chunk_has_one_owner"),
        ]

    def __str__(self) -> str:
        return f"{self.source_id}#{self.ordinal}"


class WebhookDelivery(models.Model):
    """One event sent to a `callbackUrl`, with every attempt recorded."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    id = models.CharField(primary_key=True, max_length=40, default=delivery_id, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="webhook_deliveries")
    source = models.ForeignKey(
        Source, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries"
    )
    event = models.CharField(max_length=60)
    url = models.URLField(max_length=2000)
    payload = models.JSONField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    attempt_count = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.event} → {self.url}"


class WebhookAttempt(models.Model):
    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveIntegerField()
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    response_excerpt = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["delivery", "number"]

    def __str__(self) -> str:
        return f"{self.delivery_id} attempt {self.number}"
