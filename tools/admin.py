"""The admin of tools. Changes go through tools/services.py (validated like the API, audited with the admin user as
the actor). Secret header values are never shown: the ciphertext is excluded, the names are read-only, and the
write-only field below sets or removes values without ever rendering one, not even back into a form with errors."""

import json

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from config.api.errors import ApplicationError
from tools import admin_mcp  # noqa: F401  (MCP servers and the context endpoint register themselves there)
from tools.models import Tool
from tools.services import tool_delete, tool_update

EDITABLE = ("name", "description", "enabled", "is_public", "parameters", "config")


class _NeverRendered(forms.Textarea):
    """A textarea that never renders its value."""

    def format_value(self, value):
        return ""


def _message(error: ApplicationError) -> str:
    fields = error.details.get("fields") if isinstance(error.details, dict) else None
    if isinstance(fields, dict) and fields:
        name, messages = next(iter(fields.items()))
        return f"{name}: {messages[0]}" if isinstance(messages, list) and messages else error.message
    return error.message


class ToolAdminForm(forms.ModelForm):
    secret_headers = forms.CharField(
        required=False,
        widget=_NeverRendered(attrs={"rows": 3, "autocomplete": "off"}),
        help_text='Write-only. JSON {"Header": "value"} sets headers, {"Header": null} removes one; the others are '
        "kept. Leave blank to change nothing. Values are stored encrypted and never shown.",
    )

    class Meta:
        model = Tool
        fields = EDITABLE

    def clean(self):
        cleaned = super().clean()
        headers = None
        raw = (cleaned.get("secret_headers") or "").strip()
        if raw:
            try:
                headers = json.loads(raw)
            except ValueError:
                headers = None
            if not isinstance(headers, dict):
                # The value is not echoed back: it may be a secret mistyped.
                raise ValidationError(
                    {"secret_headers": 'Not a JSON object like {"Authorization": "Bearer …"}.'}
                )
        if self.errors:
            return cleaned
        changes = {
            field: cleaned[field] for field in self.changed_data if field in EDITABLE and field in cleaned
        }
        try:
            # Written here, inside the admin's transaction, so the service's refusal is shown on the form.
            self.saved = tool_update(tool=self.instance, changes=changes, secret_headers=headers)
        except ApplicationError as error:
            raise ValidationError(_message(error)) from error
        return cleaned


@admin.register(Tool)
class ToolAdmin(admin.ModelAdmin):
    form = ToolAdminForm
    list_display = ("name", "kind", "mind", "enabled", "is_public", "mcp_server", "updated_at")
    list_filter = ("kind", "enabled", "is_public")
    search_fields = ("id", "name", "mind__name", "mind__slug")
    list_select_related = ("mind", "mcp_server")
    readonly_fields = (
        "id",
        "workspace",
        "mind",
        "kind",
        "mcp_server",
        "secret_header_names",
        "created_at",
        "updated_at",
    )
    fields = (
        "id",
        "workspace",
        "mind",
        "kind",
        "mcp_server",
        *EDITABLE,
        "secret_header_names",
        "secret_headers",
        "created_at",
        "updated_at",
    )

    def has_add_permission(self, request):
        return False  # tools are created through the API, whose services check them

    def save_model(self, request, obj, form, change):
        pass  # saved by the form through tool_update

    def delete_model(self, request, obj):
        tool_delete(tool=obj)

    def delete_queryset(self, request, queryset):
        for tool in queryset:
            tool_delete(tool=tool)
