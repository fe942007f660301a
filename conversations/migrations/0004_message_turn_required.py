"""Turns, second step: every message has one now (0003), so it is required, messages list by turn, and a turn
holds one question."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0003_message_turn"),
    ]

    operations = [
        migrations.AlterField(
            model_name="message",
            name="turn",
            field=models.PositiveIntegerField(),
        ),
        migrations.AlterModelOptions(
            name="message",
            options={"ordering": ["turn", "-role", "created_at", "id"]},
        ),
        migrations.RemoveIndex(
            model_name="message",
            name="message_conversation_created",
        ),
        migrations.AddIndex(
            model_name="message",
            index=models.Index(fields=["conversation", "turn"], name="message_conversation_turn"),
        ),
        migrations.AddConstraint(
            model_name="message",
            constraint=models.UniqueConstraint(
                condition=models.Q(("role", "user")),
                fields=("conversation", "turn"),
                name="message_one_question_per_turn",
            ),
        ),
    ]
