from django.contrib.postgres.fields import ArrayField
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from accounts.models import Workspace
from config.ids import make_id

VOICE_IDS = ("alloy", "echo", "fable", "onyx", "nova", "shimmer")


def mind_id() -> str:
    return make_id("mind")


def default_theme() -> dict:
    return {
        "primaryColor": "#4f46e5",
        "backgroundColor": "#ffffff",
        "fontFamily": "system-ui",
        "mode": "light",
    }


class Mind(models.Model):
    class Visibility(models.TextChoices):
        WORKSPACE = "workspace"
        GROUPS = "groups"

    id = models.CharField(primary_key=True, max_length=40, default=mind_id, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="minds")
    name = models.CharField(max_length=100)
    # Unique per workspace (the API's lookups are scoped to it); the public address /m/<slug> only among published
    # minds, so an unpublished slug of another workspace can neither be detected nor block anyone (see Meta).
    slug = models.SlugField(max_length=120)
    headline = models.CharField(max_length=200, blank=True)
    bio = models.TextField(blank=True)
    avatar_url = models.URLField(max_length=2000, blank=True)
    system_prompt = models.TextField(blank=True)
    welcome_message = models.TextField(blank=True)
    suggested_questions = ArrayField(models.CharField(max_length=300), default=list, blank=True, size=4)
    expertise_areas = ArrayField(models.CharField(max_length=100), default=list, blank=True, size=10)
    is_published = models.BooleanField(default=False)
    show_sources = models.BooleanField(default=True)
    collect_email_before_chat = models.BooleanField(default=False)
    temperature = models.FloatField(default=0.7, validators=[MinValueValidator(0), MaxValueValidator(2)])
    # Further sampling parameters (OpenIndex's `params`); null leaves the provider's default.
    top_p = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0), MaxValueValidator(1)])
    frequency_penalty = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(-2), MaxValueValidator(2)]
    )
    presence_penalty = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(-2), MaxValueValidator(2)]
    )
    model = models.CharField(max_length=100, blank=True)
    language = models.CharField(max_length=20, blank=True)
    theme = models.JSONField(default=default_theme, blank=True)
    social_links = models.JSONField(default=dict, blank=True)
    voice_enabled = models.BooleanField(default=False)
    voice_id = models.CharField(max_length=20, default="alloy", choices=[(v, v) for v in VOICE_IDS])
    voice_speed = models.FloatField(default=1.0, validators=[MinValueValidator(0.25), MaxValueValidator(4)])
    visibility = models.CharField(max_length=20, choices=Visibility.choices, default=Visibility.WORKSPACE)
    allowed_group_ids = models.JSONField(default=list, blank=True)
    # Origins where the embeddable widget may run; empty means no other site.
    allowed_origins = models.JSONField(default=list, blank=True)
    # Per-visitor limits on the public page and widget.
    public_messages_per_minute = models.PositiveIntegerField(default=10)
    public_messages_per_day = models.PositiveIntegerField(default=200)
    source_limit = models.PositiveIntegerField(null=True, blank=True)
    # OpenIndex agent settings kept as given: tool switches [{id, checked}] and the autonomous flag.
    agent_tools = models.JSONField(default=list, blank=True)
    is_autonomous = models.BooleanField(default=False)
    # The workspace's general agent ("Jack Of All Trades"), made on first use by the OpenIndex chat when a
    # message names no agent; not counted against the minds limit.
    is_default_agent = models.BooleanField(default=False)
    published_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["workspace", "-created_at"], name="mind_workspace_created")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(temperature__gte=0, temperature__lte=2), name="mind_temperature_range"
            ),
            models.CheckConstraint(
                condition=models.Q(voice_speed__gte=0.25, voice_speed__lte=4), name="mind_voice_speed_range"
            ),
            models.UniqueConstraint(
                fields=["workspace"],
                condition=models.Q(is_default_agent=True),
                name="mind_one_default_agent_per_workspace",
            ),
            models.UniqueConstraint(fields=["workspace", "slug"], name="mind_slug_unique_per_workspace"),
            models.UniqueConstraint(
                fields=["slug"], condition=models.Q(is_published=True), name="mind_published_slug_unique"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def effective_source_limit(self) -> int:
        if self.source_limit is not None:
            return self.source_limit
        return self.workspace.effective_source_limit_per_mind
