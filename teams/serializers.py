"""Member, group, role and audit-log shapes of the native API (camelCase on the wire), and the input pieces
TypingMind's surface shares with it (the profile, tags)."""

from rest_framework import serializers

from accounts.models import AuditLog, Group, Member
from accounts.roles import Role
from config.api.pagination import MAX_PAGE
from config.api.serializers import StrictSerializer, iso
from teams.services import MAX_TAG_CHARS, MAX_TAGS, MAX_TITLE_CHARS, MemberChanges

MAX_IDS = 1000

# Wire name in `profile` -> Member field.
PROFILE_FIELDS = {
    "firstName": "first_name",
    "lastName": "last_name",
    "profilePicURL": "profile_pic_url",
    "aboutMe": "about_me",
}


class ProfileSerializer(StrictSerializer):
    """TypingMind's profile; no other property is accepted. null or "" clears a field."""

    firstName = serializers.CharField(max_length=100, required=False, allow_blank=True, allow_null=True)
    lastName = serializers.CharField(max_length=100, required=False, allow_blank=True, allow_null=True)
    profilePicURL = serializers.URLField(max_length=2000, required=False, allow_blank=True, allow_null=True)
    aboutMe = serializers.CharField(max_length=2000, required=False, allow_blank=True, allow_null=True)

    def validate_profilePicURL(self, value: str | None) -> str | None:
        if value and not value.lower().startswith(("https://", "http://")):
            raise serializers.ValidationError("Only http(s) image URLs are allowed.")
        return value


def tags_field(**kwargs) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.CharField(max_length=MAX_TAG_CHARS, min_length=1), max_length=MAX_TAGS, **kwargs
    )


def ids_field(**kwargs) -> serializers.ListField:
    return serializers.ListField(child=serializers.CharField(max_length=40), max_length=MAX_IDS, **kwargs)


def profile_changes(profile: dict | None) -> dict[str, str]:
    return {PROFILE_FIELDS[key]: value or "" for key, value in (profile or {}).items()}


def profile_data(member: Member) -> dict[str, str]:
    return {wire: getattr(member, field) for wire, field in PROFILE_FIELDS.items()}


class MemberCreateSerializer(StrictSerializer):
    email = serializers.EmailField(max_length=254)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    tags = tags_field(required=False)
    groupIds = ids_field(required=False)
    profile = ProfileSerializer(required=False)


class MemberUpdateSerializer(MemberCreateSerializer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, partial=True, **kwargs)


def member_changes(data: dict) -> MemberChanges:
    return MemberChanges(
        email=data.get("email"),
        name=data.get("name"),
        tags=data.get("tags"),
        group_ids=data.get("groupIds"),
        **profile_changes(data.get("profile")),
    )


class MemberQuerySerializer(serializers.Serializer):
    page = serializers.IntegerField(min_value=1, max_value=MAX_PAGE, default=1)
    limit = serializers.IntegerField(min_value=1, max_value=100, default=20)
    email = serializers.CharField(max_length=254, required=False)
    tag = serializers.CharField(max_length=MAX_TAG_CHARS, required=False)
    groupId = serializers.CharField(max_length=40, required=False)


class GroupRefSerializer(serializers.Serializer):
    id = serializers.CharField()
    title = serializers.CharField()


class ProfileOutSerializer(serializers.Serializer):
    firstName = serializers.CharField()
    lastName = serializers.CharField()
    profilePicURL = serializers.CharField()
    aboutMe = serializers.CharField()


class MemberSerializer(serializers.Serializer):
    id = serializers.CharField()
    email = serializers.CharField()
    name = serializers.CharField()
    tags = serializers.ListField(child=serializers.CharField())
    groups = GroupRefSerializer(many=True)
    profile = ProfileOutSerializer()
    isApiUser = serializers.BooleanField()
    createdAt = serializers.DateTimeField()
    updatedAt = serializers.DateTimeField()

    def to_representation(self, instance):
        return member_data(instance)


def member_data(member: Member) -> dict:
    """The fields of MemberSerializer (which documents them); groups come from the prefetch when there is one."""
    return {
        "id": member.id,
        "email": member.email,
        "name": member.name,
        "tags": list(member.tags),
        "groups": [{"id": group.id, "title": group.name} for group in member.groups.all()],
        "profile": profile_data(member),
        "isApiUser": member.is_api_user,
        "createdAt": iso(member.created_at),
        "updatedAt": iso(member.updated_at),
    }


class GroupCreateSerializer(StrictSerializer):
    title = serializers.CharField(max_length=MAX_TITLE_CHARS, min_length=1)
    # Any string: unknown role ids are refused by the service with the list of roles, for every surface alike.
    roles = serializers.ListField(child=serializers.CharField(max_length=40), max_length=20, required=False)
    memberIds = ids_field(required=False)


class GroupUpdateSerializer(GroupCreateSerializer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, partial=True, **kwargs)


class GroupSerializer(serializers.Serializer):
    id = serializers.CharField()
    title = serializers.CharField()
    roles = serializers.ListField(child=serializers.CharField())
    memberIds = serializers.ListField(child=serializers.CharField())
    createdAt = serializers.DateTimeField()
    updatedAt = serializers.DateTimeField()

    def to_representation(self, instance):
        return group_data(instance)


def group_data(group: Group) -> dict:
    return {
        "id": group.id,
        "title": group.name,
        "roles": list(group.roles),
        "memberIds": [member.id for member in group.members.all()],
        "createdAt": iso(group.created_at),
        "updatedAt": iso(group.updated_at),
    }


class GroupQuerySerializer(serializers.Serializer):
    page = serializers.IntegerField(min_value=1, max_value=MAX_PAGE, default=1)
    limit = serializers.IntegerField(min_value=1, max_value=100, default=20)


class RoleSerializer(serializers.Serializer):
    id = serializers.CharField()
    title = serializers.CharField()
    description = serializers.CharField()
    scopes = serializers.ListField(child=serializers.CharField())

    def to_representation(self, instance):
        return role_data(instance)


def role_data(role: Role) -> dict:
    return {
        "id": role.id,
        "title": role.title,
        "description": role.description,
        "scopes": sorted(role.scopes),
    }


class AuditLogQuerySerializer(serializers.Serializer):
    entity = serializers.CharField(max_length=40, required=False)
    action = serializers.CharField(max_length=40, required=False)
    actorId = serializers.CharField(max_length=40, required=False)
    # `from` is a Python keyword: declared below under its wire name.
    to = serializers.DateTimeField(required=False)
    startAfter = serializers.IntegerField(min_value=1, max_value=2**63 - 1, required=False)
    limit = serializers.IntegerField(min_value=1, max_value=100, default=20)

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = serializers.DateTimeField(required=False)
        return fields

    def validate(self, attrs):
        if attrs.get("from") and attrs.get("to") and attrs["from"] > attrs["to"]:
            raise serializers.ValidationError({"from": ["Must not be after `to`."]})
        return attrs


class AuditActorSerializer(serializers.Serializer):
    keyId = serializers.CharField(allow_null=True)
    memberId = serializers.CharField(allow_null=True)
    label = serializers.CharField()


class AuditLogSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    entity = serializers.CharField()
    entityId = serializers.CharField()
    entityName = serializers.CharField()
    action = serializers.CharField()
    actor = AuditActorSerializer()
    changes = serializers.DictField()
    recordedAt = serializers.DateTimeField()

    def to_representation(self, instance):
        return audit_entry_data(instance)


def audit_entry_data(entry: AuditLog) -> dict:
    return {
        "id": entry.id,
        "entity": entry.entity,
        "entityId": entry.entity_id,
        "entityName": entry.entity_name,
        "action": entry.action,
        "actor": {
            "keyId": entry.actor_key_id or None,
            "memberId": entry.actor_member_id,
            "label": entry.actor_label,
        },
        "changes": entry.changes,
        "recordedAt": iso(entry.recorded_at),
    }
