"""Turns (issue 12): each question and its answer share a turn number, so concurrent turns in one conversation
read in order. The fields are added nullable and backfilled here; 0004 makes `turn` required and adds the
constraint, in its own transaction (PostgreSQL refuses ALTER TABLE with the backfill's deferred FK checks
pending)."""

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce

BATCH = 2000


def backfill_turns(apps, schema_editor) -> None:
    """Numbers each conversation's questions 1, 2, … in the order they were asked; an answer takes the turn of
    the latest question before it and points at it. Recomputes every row, so running it twice changes nothing."""
    Conversation = apps.get_model("conversations", "Conversation")
    Message = apps.get_model("conversations", "Message")
    rows = (
        Message.objects.order_by("conversation_id", "created_at", "id")
        .only("id", "conversation_id", "role", "turn", "reply_to_id")
        .iterator(chunk_size=BATCH)
    )
    changed = []
    conversation_id, turn, question_id = None, 0, None
    for message in rows:
        if message.conversation_id != conversation_id:
            conversation_id, turn, question_id = message.conversation_id, 0, None
        if message.role == "user":
            turn, question_id = turn + 1, message.id
            message.turn, message.reply_to_id = turn, None
        else:
            # An answer with no question before it (never written by the chat) stays at turn 0.
            message.turn, message.reply_to_id = turn, question_id
        changed.append(message)
        if len(changed) >= BATCH:
            Message.objects.bulk_update(changed, ["turn", "reply_to"])
            changed.clear()
    if changed:
        Message.objects.bulk_update(changed, ["turn", "reply_to"])
    questions = (
        Message.objects.filter(conversation=OuterRef("pk"), role="user")
        .values("conversation")
        .annotate(n=Count("id"))
        .values("n")
    )
    Conversation.objects.update(turn_count=Coalesce(Subquery(questions), 0))


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0002_conversation_collection"),
    ]

    operations = [
        migrations.AddField(
            model_name="conversation",
            name="turn_count",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="message",
            name="turn",
            field=models.PositiveIntegerField(null=True),
        ),
        migrations.AddField(
            model_name="message",
            name="reply_to",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="conversations.message",
            ),
        ),
        migrations.RunPython(backfill_turns, migrations.RunPython.noop),
    ]
