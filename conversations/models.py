from django.db import models
from django.db.models import Q

from accounts.models import Member, Workspace
from config.ids import make_id
from knowledge.models import Collection
from minds.models import Mind


def conversation_id() -> str:
    return make_id("conv")


def message_id() -> str:
    return make_id("msg")


class Conversation(models.Model):
    class Channel(models.TextChoices):
        API = "api"
        OPENAI = "openai"
        PUBLIC = "public"
        WIDGET = "widget"
        AGENT = "agent"  # TypingMind's stateless agent chat
        OPENINDEX = "openindex"

    id = models.CharField(primary_key=True, max_length=40, default=conversation_id, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="conversations")
    mind = models.ForeignKey(Mind, on_delete=models.CASCADE, related_name="conversations")
    member = models.ForeignKey(Member, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    channel = models.CharField(max_length=20, choices=Channel.choices, default=Channel.API)
    # A chat with a collection (OpenIndex): the mind is the workspace's general agent and retrieval covers only
    # this collection.
    collection = models.ForeignKey(
        Collection, null=True, blank=True, on_delete=models.CASCADE, related_name="conversations"
    )
    title = models.CharField(max_length=200, blank=True)
    visitor_id = models.CharField(max_length=64, blank=True)
    visitor_email = models.EmailField(blank=True)
    # The last turn given out: a question takes the next one under this row's lock (conversations.chat).
    turn_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["mind", "-created_at"], name="conversation_mind_created"),
            models.Index(fields=["workspace", "-created_at"], name="conversation_ws_created"),
        ]

    def __str__(self) -> str:
        return self.title or self.id


# A conversation reads turn by turn, each question before its answer, whatever order concurrent turns finished
# in; within a turn by step (the question 0, then the assistant's tool calls and their results, then the answer).
# Rows older than steps are all step 0: "user" sorts after "assistant", hence the descending role.
MESSAGE_ORDER = ("turn", "step", "-role", "created_at", "id")


class Message(models.Model):
    class Role(models.TextChoices):
        USER = "user"
        ASSISTANT = "assistant"
        TOOL = "tool"  # a tool's result, answering one of the assistant's tool_calls

    class Status(models.TextChoices):
        COMPLETE = "complete"
        ERROR = "error"
        INTERRUPTED = "interrupted"

    class Rating(models.TextChoices):
        UP = "up"
        DOWN = "down"

    id = models.CharField(primary_key=True, max_length=40, default=message_id, editable=False)
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    role = models.CharField(max_length=20, choices=Role.choices)
    # A question and its answer share a turn; the answer also points at its question.
    turn = models.PositiveIntegerField()
    reply_to = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    # Order within the turn (MESSAGE_ORDER): 0 for the question, counting up through tool calls to the answer.
    step = models.PositiveSmallIntegerField(default=0)
    # An assistant message that calls tools: [{id, type: "function", function: {name, arguments}}] (OpenAI's shape).
    tool_calls = models.JSONField(default=list, blank=True)
    # A tool message: which call it answers and the tool's name.
    tool_call_id = models.CharField(max_length=64, blank=True)
    tool_name = models.CharField(max_length=64, blank=True)
    content = models.TextField(blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.COMPLETE)
    citations = models.JSONField(default=list, blank=True)
    followups = models.JSONField(default=list, blank=True)
    model = models.CharField(max_length=120, blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    error_code = models.CharField(max_length=60, blank=True)
    feedback_rating = models.CharField(max_length=10, choices=Rating.choices, blank=True)
    feedback_comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = list(MESSAGE_ORDER)
        indexes = [models.Index(fields=["conversation", "turn"], name="message_conversation_turn")]
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "turn"],
                condition=Q(role="user"),
                name="message_one_question_per_turn",
            )
        ]

    def __str__(self) -> str:
        return f"{self.role}: {self.content[:40]}"
