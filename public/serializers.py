"""The public chat's input. Checked like the API's bodies, but refused with the codes the page tells apart."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from rest_framework import serializers
from rest_framework.settings import api_settings

from conversations.models import Conversation

MAX_MESSAGE_CHARS = 2000
MAX_ID_CHARS = 64
MAX_EMAIL_CHARS = 254
NOT_FOUND = "This conversation no longer exists; start a new one."

# (field, error code) → (status, code) for the problems the page handles apart; any other is a validation_error.
REFUSALS = {
    ("message", "max_length"): (400, "message_too_long"),
    # Longer than any id we issue: it names no conversation (the page then starts a new one).
    ("conversationId", "max_length"): (404, "not_found"),
    (api_settings.NON_FIELD_ERRORS_KEY, "email_required"): (400, "email_required"),
}


class TextField(serializers.CharField):
    """A JSON string and nothing else (CharField alone would take the number 5 for "5")."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class PublicChatInputSerializer(serializers.Serializer):
    """Needs `mind` and `visitor_id` in its context, for the email gate."""

    message = TextField(
        max_length=MAX_MESSAGE_CHARS,
        error_messages={
            "required": "Type a message first.",
            "null": "Type a message first.",
            "blank": "Type a message first.",
            "invalid": "The message must be text.",
            "max_length": f"Messages are limited to {MAX_MESSAGE_CHARS} characters.",
        },
    )
    conversationId = TextField(
        max_length=MAX_ID_CHARS,
        required=False,
        allow_null=True,
        allow_blank=True,
        error_messages={"invalid": "The conversation id must be text.", "max_length": NOT_FOUND},
    )
    email = TextField(
        max_length=MAX_EMAIL_CHARS,
        required=False,
        allow_null=True,
        allow_blank=True,
        error_messages={"invalid": "The email must be text."},
    )
    channel = serializers.ChoiceField(
        choices=[Conversation.Channel.PUBLIC, Conversation.Channel.WIDGET],
        default=Conversation.Channel.PUBLIC,
    )

    def validate(self, attrs: dict) -> dict:
        attrs["conversationId"] = attrs.get("conversationId") or None
        attrs["email"] = attrs.get("email") or ""
        if self._email_needed(attrs["conversationId"], attrs["email"]):
            raise serializers.ValidationError(
                "Please enter a valid email address to start the chat.", code="email_required"
            )
        return attrs

    def _email_needed(self, conversation_id: str | None, email: str) -> bool:
        """With collectEmailBeforeChat, a new conversation needs a valid email; a continued one already has it."""
        mind = self.context["mind"]
        if not mind.collect_email_before_chat:
            return False
        if (
            conversation_id
            and Conversation.objects.filter(
                id=conversation_id, mind=mind, visitor_id=self.context["visitor_id"]
            )
            .exclude(visitor_email="")
            .exists()
        ):
            return False
        try:
            validate_email(email)
        except DjangoValidationError:
            return True
        return False

    def refusal(self) -> tuple[int, str, str]:
        """(status, code, message) of an invalid input's first problem, plain validation errors first."""
        problems = [(name, detail) for name, details in self.errors.items() for detail in details]
        name, detail = next(((n, d) for n, d in problems if (n, d.code) not in REFUSALS), problems[0])
        status, code = REFUSALS.get((name, detail.code), (400, "validation_error"))
        return status, code, str(detail)


class PublicFeedbackInputSerializer(serializers.Serializer):
    """A visitor's thumbs on an answer of the public chat."""

    messageId = TextField(max_length=MAX_ID_CHARS)
    rating = serializers.ChoiceField(
        choices=["up", "down"], error_messages={"invalid_choice": "The rating is up or down."}
    )

    def first_problem(self) -> str:
        name, details = next(iter(self.errors.items()))
        return f"{name}: {details[0]}"
