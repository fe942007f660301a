import base64
import secrets

from django.conf import settings
from django.db import models

from config.ids import make_id


def workspace_id() -> str:
    return make_id("ws")


def member_id() -> str:
    return make_id("usr")


def group_id() -> str:
    return make_id("grp")


def webhook_secret() -> str:
    # Standard Webhooks secret format: "whsec_" + base64 of 32 random bytes.
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


class Workspace(models.Model):
    """The tenant: owns members, groups, keys, minds and everything below them."""

    id = models.CharField(primary_key=True, max_length=40, default=workspace_id, editable=False)
    name = models.CharField(max_length=100, unique=True)
    # Plan limits; null means the default from settings.
    minds_limit = models.PositiveIntegerField(null=True, blank=True)
    sources_limit = models.PositiveIntegerField(null=True, blank=True)
    source_limit_per_mind = models.PositiveIntegerField(null=True, blank=True)
    api_keys_limit = models.PositiveIntegerField(null=True, blank=True)
    webhook_secret = models.CharField(max_length=80, default=webhook_secret)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def effective_minds_limit(self) -> int:
        return self.minds_limit if self.minds_limit is not None else settings.MINDS_LIMIT

    @property
    def effective_sources_limit(self) -> int:
        return self.sources_limit if self.sources_limit is not None else settings.SOURCES_LIMIT

    @property
    def effective_source_limit_per_mind(self) -> int:
        if self.source_limit_per_mind is not None:
            return self.source_limit_per_mind
        return settings.SOURCE_LIMIT_PER_MIND

    @property
    def effective_api_keys_limit(self) -> int:
        return self.api_keys_limit if self.api_keys_limit is not None else settings.API_KEYS_LIMIT


class Group(models.Model):
    """A set of members; minds with visibility "groups" open to them, and the group's roles bound what its
    api-users' keys may do (accounts/roles.py)."""

    id = models.CharField(primary_key=True, max_length=40, default=group_id, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="groups")
    name = models.CharField(max_length=100)  # TypingMind's `title`
    # Role ids from accounts.roles.ROLES.
    roles = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="group_name_unique_in_workspace")
        ]

    def __str__(self) -> str:
        return self.name


class Member(models.Model):
    """A person (or an API key acting as `api-user-<prefix>`) in a workspace."""

    id = models.CharField(primary_key=True, max_length=40, default=member_id, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="members")
    email = models.EmailField(max_length=254, blank=True)
    name = models.CharField(max_length=200, blank=True)
    tags = models.JSONField(default=list, blank=True)
    groups = models.ManyToManyField(Group, blank=True, related_name="members")
    is_api_user = models.BooleanField(default=False)
    # TypingMind's profile.
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    profile_pic_url = models.URLField(max_length=2000, blank=True)
    about_me = models.TextField(max_length=2000, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "email"],
                condition=~models.Q(email=""),
                name="member_email_unique_in_workspace",
            )
        ]

    def __str__(self) -> str:
        return self.email or self.name or self.id


class AuditLog(models.Model):
    """One change to a workspace, written in the same transaction as the change (accounts/audit.py).

    The id is an integer because TypingMind's audit log numbers its entries. The actor is the key and its member
    (api-user), or an admin user; `actor_member` becomes null when that member is deleted, as TypingMind's
    `userID` does, while `actor_label` keeps who it was.
    """

    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="audit_logs")
    actor_key_id = models.CharField(max_length=40, blank=True)
    actor_member = models.ForeignKey(
        Member, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=200, blank=True)
    entity = models.CharField(max_length=40)
    entity_id = models.CharField(max_length=60)
    entity_name = models.CharField(max_length=255, blank=True)
    action = models.CharField(max_length=40)
    # {field: {"from": old, "to": new}}; secrets are replaced by "[redacted]", long texts shortened.
    changes = models.JSONField(default=dict, blank=True)
    recorded_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["workspace", "-id"], name="audit_workspace_id"),
            models.Index(fields=["workspace", "entity", "action"], name="audit_workspace_entity"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.entity} {self.entity_name or self.entity_id}"
