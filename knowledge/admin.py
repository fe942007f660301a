from django.contrib import admin, messages
from django.db.models import Count

from config.api.errors import ApplicationError
from knowledge import services
from knowledge.models import Chunk, Collection, Source, UploadedFile, WebhookAttempt, WebhookDelivery


@admin.register(Source)
class SourceAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "type",
        "status",
        "mind",
        "collection",
        "chunk_count",
        "token_count",
        "attempts",
        "error_code",
        "created_at",
    )
    list_filter = ("status", "type", "error_code")
    search_fields = ("id", "name", "url", "mind__name", "mind__slug", "collection__name", "collection__slug")
    # The document password's ciphertext is not shown: it is of no use to read, and nothing shows that a secret is
    # there beyond the audit log's "[redacted]".
    exclude = ("password_ciphertext",)
    readonly_fields = [f.name for f in Source._meta.fields if f.name != "password_ciphertext"]
    actions = ["reprocess"]
    list_select_related = ("mind", "collection")

    def has_add_permission(self, request):
        return False  # sources are added through the API or `manage.py ingest`, which validate them

    @admin.action(description="Reprocess the selected sources")
    def reprocess(self, request, queryset):
        done, busy = 0, 0
        for source in queryset:
            try:
                services.source_reprocess(source=source)
                done += 1
            except ApplicationError:
                busy += 1
        self.message_user(request, f"{done} source(s) queued again.", messages.SUCCESS)
        if busy:
            self.message_user(
                request, f"{busy} source(s) are still processing and were left alone.", messages.WARNING
            )

    def delete_model(self, request, obj):
        services.source_delete(source=obj)

    def delete_queryset(self, request, queryset):
        for source in queryset:
            services.source_delete(source=source)


@admin.register(Collection)
class CollectionAdmin(admin.ModelAdmin):
    """Read-only: collections and their minds change through the API, whose services audit every change."""

    list_display = ("name", "slug", "privacy", "workspace", "source_count", "created_at")
    list_filter = ("privacy",)
    search_fields = ("id", "name", "slug", "workspace__name")
    readonly_fields = (
        "id",
        "workspace",
        "name",
        "slug",
        "description",
        "image",
        "privacy",
        "minds",
        "created_at",
    )
    list_select_related = ("workspace",)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(sources_total=Count("sources"))

    @admin.display(description="sources", ordering="sources_total")
    def source_count(self, obj):
        return obj.sources_total

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def delete_model(self, request, obj):
        services.collection_delete(collection=obj)

    def delete_queryset(self, request, queryset):
        for collection in queryset:
            services.collection_delete(collection=collection)


@admin.register(Chunk)
class ChunkAdmin(admin.ModelAdmin):
    list_display = ("id", "source", "ordinal", "token_count", "page", "heading_path", "start_seconds")
    search_fields = ("id", "source__id", "content")
    readonly_fields = (
        "workspace",
        "mind",
        "collection",
        "source",
        "ordinal",
        "content",
        "content_hash",
        "token_count",
        "embedding_model",
        "page",
        "heading_path",
        "start_seconds",
        "end_seconds",
        "url",
        "metadata",
    )
    exclude = ("embedding", "search_vector")
    list_select_related = ("source",)

    def has_add_permission(self, request):
        return False


@admin.register(UploadedFile)
class UploadedFileAdmin(admin.ModelAdmin):
    list_display = ("file_name", "category", "mime_type", "file_size", "mind", "collection", "created_at")
    readonly_fields = [f.name for f in UploadedFile._meta.fields]

    def has_add_permission(self, request):
        return False


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    readonly_fields = ("number", "status_code", "error", "response_excerpt", "duration_ms", "created_at")

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ("id", "event", "url", "status", "attempt_count", "next_attempt_at", "created_at")
    list_filter = ("status", "event")
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]
    inlines = [WebhookAttemptInline]

    def has_add_permission(self, request):
        return False
