"""Writes of conversations outside the chat itself: feedback and deletion."""

from config.api.errors import ValidationFailed
from conversations.models import Conversation, Message


def message_feedback(*, message: Message, rating: str, comment: str = "") -> Message:
    if message.role != Message.Role.ASSISTANT:
        raise ValidationFailed("Feedback is for the mind's answers, not the user's messages.")
    message.feedback_rating = rating
    message.feedback_comment = comment
    message.save(update_fields=["feedback_rating", "feedback_comment"])
    return message


def conversation_delete(*, conversation: Conversation) -> str:
    conversation_id = conversation.id
    conversation.delete()  # messages cascade
    return conversation_id
