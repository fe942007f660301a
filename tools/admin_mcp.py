"""The admin of MCP servers and context endpoints: read-only (changes go through the API, whose services list the
server's tools, check URLs and audit), with an action to refresh a server's tools. Secret header values are never
shown: the ciphertext field is excluded, only the header names are."""

from django.contrib import admin, messages

from config.api.errors import ApplicationError
from tools import mcp_services
from tools.models import ContextEndpoint, McpServer

SECRET_FIELDS = ("secret_headers_ciphertext",)


class _ReadOnly(admin.ModelAdmin):
    exclude = SECRET_FIELDS

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields if f.name not in SECRET_FIELDS]

    def has_add_permission(self, request):
        return False


@admin.register(McpServer)
class McpServerAdmin(_ReadOnly):
    list_display = ("name", "mind", "url", "enabled", "tool_count", "listed_at", "last_error", "created_at")
    list_filter = ("enabled",)
    search_fields = ("id", "name", "url", "mind__name", "mind__slug")
    list_select_related = ("mind",)
    actions = ["refresh"]

    @admin.display(description="tools")
    def tool_count(self, obj) -> int:
        return obj.tools.count()

    @admin.action(description="List the selected servers' tools again")
    def refresh(self, request, queryset):
        done, failed = 0, 0
        for server in queryset:
            try:
                mcp_services.mcp_server_refresh(server=server)
                done += 1
            except ApplicationError:
                failed += 1
        self.message_user(request, f"{done} server(s) refreshed.", messages.SUCCESS)
        if failed:
            self.message_user(
                request, f"{failed} server(s) could not be listed (see last error).", messages.WARNING
            )

    def delete_model(self, request, obj):
        mcp_services.mcp_server_delete(server=obj)

    def delete_queryset(self, request, queryset):
        for server in queryset:
            mcp_services.mcp_server_delete(server=server)


@admin.register(ContextEndpoint)
class ContextEndpointAdmin(_ReadOnly):
    list_display = ("mind", "url_template", "enabled", "cache_seconds", "timeout_seconds", "updated_at")
    list_filter = ("enabled",)
    search_fields = ("mind__name", "mind__slug", "url_template")
    list_select_related = ("mind",)
