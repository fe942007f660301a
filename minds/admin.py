from django.contrib import admin

from minds.models import Mind
from minds.services import mind_delete


@admin.register(Mind)
class MindAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "workspace", "is_published", "created_at")
    list_filter = ("is_published", "workspace")
    search_fields = ("name", "slug", "id")
    readonly_fields = ("id", "created_at", "updated_at")

    def delete_model(self, request, obj):
        mind_delete(mind=obj)  # also removes stored files

    def delete_queryset(self, request, queryset):
        for mind in queryset:
            mind_delete(mind=mind)
