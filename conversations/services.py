"""Writes of conversations outside the chat itself: feedback and deletion."""

from conversations.models import Conversation, Message


def message_feedback(*, message: Message, rating: str, comment: str = "") -> Message:
    message.feedback_rating = rating
    message.feedback_comment = comment
    message.save(update_fields=["feedback_rating", "feedback_comment"])
    return message


def conversation_delete(*, conversation: Conversation) -> str:
    conversation_id = conversation.id
    conversation.delete()  # messages cascade
    return conversation_id
