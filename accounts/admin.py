from django.contrib import admin

from accounts.models import Group, Member, Workspace


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "id",
        "minds_limit",
        "sources_limit",
        "source_limit_per_mind",
        "api_keys_limit",
        "created_at",
    )
    search_fields = ("name", "id")
    # The webhook signing secret is shown so owners can configure receivers; it is never editable here.
    readonly_fields = ("id", "webhook_secret", "created_at", "updated_at")


@admin.register(Member)
class MemberAdmin(admin.ModelAdmin):
    list_display = ("name", "email", "workspace", "is_api_user", "created_at")
    list_filter = ("is_api_user",)
    search_fields = ("name", "email")


@admin.register(Group)
class GroupAdmin(admin.ModelAdmin):
    list_display = ("name", "workspace", "created_at")
    search_fields = ("name",)
