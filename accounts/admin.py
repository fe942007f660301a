from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import transaction

from accounts.audit import audit_record, changes_between, values_shown
from accounts.models import AuditLog, Group, Member, Workspace
from accounts.roles import ROLES

# What the admin records, under the names the API gives these fields (teams/services.py records the same), so an
# entity's history reads alike whether a key or an operator changed it. The actor is `admin:<user>`
# (accounts.audit.AdminActorMiddleware), and the admin saves in one transaction, so entry and change commit together.
WORKSPACE_FIELDS = {
    "name": "name",
    "minds_limit": "mindsLimit",
    "sources_limit": "sourcesLimit",
    "source_limit_per_mind": "sourceLimitPerMind",
    "api_keys_limit": "apiKeysLimit",
}
MEMBER_FIELDS = {
    "email": "email",
    "name": "name",
    "tags": "tags",
    "first_name": "firstName",
    "last_name": "lastName",
    "profile_pic_url": "profilePicURL",
    "about_me": "aboutMe",
}
API_USER_FIXED_FIELDS = ("email", "name", "first_name", "last_name", "profile_pic_url", "about_me")


class AuditedAdmin(admin.ModelAdmin):
    """Records each create, change and delete made through this admin page in the audit log."""

    audit_entity = ""
    audit_deletes = True

    def audit_state(self, obj) -> dict[str, Any]:
        raise NotImplementedError

    def _record(self, obj, action: str, changes: dict | None = None) -> None:
        audit_record(
            workspace=obj.workspace_id if self.audit_entity != "workspace" else obj.pk,
            entity=self.audit_entity,
            entity_id=obj.pk,
            entity_name=str(obj),
            action=action,
            changes=changes,
        )

    def save_model(self, request, obj, form, change):
        # Read before the save; many-to-many fields are only saved in save_related, so the diff is taken there.
        form.audit_before = self.audit_state(type(obj).objects.get(pk=obj.pk)) if change else None
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        obj, before = form.instance, getattr(form, "audit_before", None)
        after = self.audit_state(obj)
        if before is None:
            self._record(obj, "create", values_shown(after))
        elif diff := changes_between(before, after):
            self._record(obj, "update", diff)

    def delete_model(self, request, obj):
        if self.audit_deletes:
            self._record(obj, "delete", values_shown(self.audit_state(obj)))
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        # The bulk delete action runs outside the admin's transaction: entries and deletion commit together here.
        with transaction.atomic():
            for obj in queryset if self.audit_deletes else ():
                self._record(obj, "delete", values_shown(self.audit_state(obj)))
            super().delete_queryset(request, queryset)


@admin.register(Workspace)
class WorkspaceAdmin(AuditedAdmin):
    audit_entity = "workspace"
    # A deleted workspace takes its audit log with it: nothing would keep the entry.
    audit_deletes = False
    list_display = (
        "name",
        "id",
        "minds_limit",
        "sources_limit",
        "source_limit_per_mind",
        "api_keys_limit",
        "created_at",
    )
    search_fields = ("name", "id")
    # The webhook signing secret is shown so owners can configure receivers; it is never editable here, and never
    # part of what the audit log records.
    readonly_fields = ("id", "webhook_secret", "created_at", "updated_at")

    def audit_state(self, obj) -> dict[str, Any]:
        return {wire: getattr(obj, field) for field, wire in WORKSPACE_FIELDS.items()}


class MemberAdminForm(forms.ModelForm):
    class Meta:
        model = Member
        fields = (
            "workspace",
            "email",
            "name",
            "tags",
            "groups",
            "first_name",
            "last_name",
            "profile_pic_url",
            "about_me",
        )

    def clean(self):
        cleaned = super().clean()
        workspace = cleaned.get("workspace") or getattr(self.instance, "workspace", None)
        if workspace is None:
            return cleaned
        foreign = [group.name for group in cleaned.get("groups") or [] if group.workspace_id != workspace.pk]
        if foreign:
            self.add_error("groups", f"Groups of another workspace: {', '.join(foreign)}.")
        return cleaned


@admin.register(Member)
class MemberAdmin(AuditedAdmin):
    audit_entity = "member"
    form = MemberAdminForm
    list_display = ("__str__", "email", "name", "workspace", "group_titles", "is_api_user", "created_at")
    list_filter = ("is_api_user", "workspace", "groups")
    search_fields = ("name", "email", "id")
    filter_horizontal = ("groups",)
    readonly_fields = ("id", "is_api_user", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("id", "workspace", "email", "name", "tags", "groups", "is_api_user")}),
        ("Profile", {"fields": ("first_name", "last_name", "profile_pic_url", "about_me")}),
        (None, {"fields": ("created_at", "updated_at")}),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("workspace").prefetch_related("groups")

    @admin.display(description="groups")
    def group_titles(self, obj) -> str:
        return ", ".join(group.name for group in obj.groups.all())

    def get_readonly_fields(self, request, obj=None):
        # An api-user is named for its key; giving it a person's email or name would let the key pass for them.
        if obj is not None and obj.is_api_user:
            return (*self.readonly_fields, "workspace", *API_USER_FIXED_FIELDS)
        return self.readonly_fields if obj is None else (*self.readonly_fields, "workspace")

    def has_delete_permission(self, request, obj=None):
        # An api-user goes with its key: revoke the key under API keys (or remove the user through the API).
        if obj is not None and obj.is_api_user:
            return False
        return super().has_delete_permission(request, obj)

    def delete_queryset(self, request, queryset):
        api_users = queryset.filter(is_api_user=True)
        if api_users.exists():
            messages.warning(
                request,
                "api-users were kept: revoke their API keys instead (or remove them through the API).",
            )
        super().delete_queryset(request, queryset.filter(is_api_user=False))

    def audit_state(self, obj) -> dict[str, Any]:
        state = {wire: getattr(obj, field) for field, wire in MEMBER_FIELDS.items()}
        state["groupIds"] = sorted(obj.groups.values_list("id", flat=True))
        return state


class GroupAdminForm(forms.ModelForm):
    roles = forms.MultipleChoiceField(
        choices=[(role.id, f"{role.title}: {role.description}") for role in ROLES],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="Roles narrow what the API keys of the group's members may do (docs/teams.md).",
    )

    class Meta:
        model = Group
        fields = ("workspace", "name", "roles")

    def clean_roles(self) -> list[str]:
        chosen = set(self.cleaned_data["roles"])
        return [role.id for role in ROLES if role.id in chosen]


def _group_forget_in_minds(group: Group) -> None:
    """As teams.services.group_delete does: the group leaves every mind's allowedGroupIds (a group-only mind left
    with none stays closed). Minds are reached through the relation minds declares on the workspace, so accounts
    imports no higher app."""
    for mind in group.workspace.minds.select_for_update().filter(allowed_group_ids__contains=[group.id]):
        before = list(mind.allowed_group_ids)
        mind.allowed_group_ids = [group_id for group_id in before if group_id != group.id]
        mind.save(update_fields=["allowed_group_ids", "updated_at"])
        audit_record(
            workspace=mind.workspace_id,
            entity="mind",
            entity_id=mind.id,
            entity_name=mind.name,
            action="update",
            changes=changes_between(
                {"allowed_group_ids": before}, {"allowed_group_ids": mind.allowed_group_ids}
            ),
        )


@admin.register(Group)
class GroupAdmin(AuditedAdmin):
    audit_entity = "group"
    form = GroupAdminForm
    list_display = ("name", "workspace", "roles", "member_count", "created_at")
    list_filter = ("workspace",)
    search_fields = ("name", "id")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("workspace").prefetch_related("members")

    @admin.display(description="members")
    def member_count(self, obj) -> int:
        return len(obj.members.all())

    def get_readonly_fields(self, request, obj=None):
        return ("workspace",) if obj is not None else ()

    def delete_model(self, request, obj):
        _group_forget_in_minds(obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for group in queryset:
                _group_forget_in_minds(group)
            super().delete_queryset(request, queryset)

    def audit_state(self, obj) -> dict[str, Any]:
        return {
            "title": obj.name,
            "roles": list(obj.roles),
            "memberIds": sorted(obj.members.values_list("id", flat=True)),
        }


@admin.register(AuditLog)
class AuditLogAdmin(admin.ModelAdmin):
    """Read-only: the log is written by the changes themselves, never edited."""

    list_display = (
        "recorded_at",
        "workspace",
        "entity",
        "entity_name",
        "action",
        "actor_label",
        "actor_key_id",
    )
    list_filter = ("entity", "action", "workspace")
    search_fields = ("entity_name",)
    date_hierarchy = "recorded_at"
    list_select_related = ("workspace",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
