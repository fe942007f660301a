from django.contrib import admin

from conversations.models import Conversation, Message


class MessageInline(admin.TabularInline):
    model = Message
    extra = 0
    can_delete = False
    fields = (
        "turn",
        "step",
        "role",
        "tool_name",
        "tool_call_id",
        "tool_calls",
        "content",
        "status",
        "citations",
        "model",
        "prompt_tokens",
        "completion_tokens",
        "latency_ms",
        "feedback_rating",
        "created_at",
    )
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ("id", "title", "mind", "channel", "visitor_email", "created_at")
    list_filter = ("channel",)
    search_fields = ("id", "title", "visitor_email", "mind__name")
    readonly_fields = (
        "id",
        "workspace",
        "mind",
        "member",
        "channel",
        "title",
        "visitor_id",
        "visitor_email",
        "created_at",
        "updated_at",
    )
    inlines = [MessageInline]
    list_select_related = ("mind",)

    def has_add_permission(self, request):
        return False
