from django.db import models
from django.utils import timezone

from accounts.models import Member, Workspace
from config.ids import make_id

KEY_PREFIX = "tr_live_"

ALL_SCOPES = (
    "minds:read",
    "minds:write",
    "minds:chat",
    "knowledge:search",
    "conversations:read",
    "users:manage",
    "keys:manage",
)


def api_key_id() -> str:
    return make_id("key")


class ApiKeyQuerySet(models.QuerySet):
    def live(self):
        now = timezone.now()
        return self.filter(revoked_at__isnull=True).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now)
        )


class ApiKey(models.Model):
    """Only the SHA-256 of the key and its last 4 characters are stored; the plaintext is shown once."""

    id = models.CharField(primary_key=True, max_length=40, default=api_key_id, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="api_keys")
    member = models.OneToOneField(Member, on_delete=models.CASCADE, related_name="api_key")
    name = models.CharField(max_length=100)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    last4 = models.CharField(max_length=4, editable=False)
    scopes = models.JSONField(default=list)
    # Empty list: every mind of the workspace. Otherwise only these mind ids.
    allowed_mind_ids = models.JSONField(default=list, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} (…{self.last4})"

    @property
    def masked(self) -> str:
        return f"{KEY_PREFIX}…{self.last4}"

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()
