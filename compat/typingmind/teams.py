"""TypingMind's users, groups, roles and audit log (`X-API-KEY`), over the same selectors and services as the
native /members, /groups, /roles and /audit-logs.

The shapes are TypingMind's (seeds/001, reference/seed-apis.md §B.2): bare objects, `{data: [...]}` lists, a bare
array of groups, `{logs, hasMore, page, total}`. Differences a client may notice, all documented in docs/teams.md:
ids are our opaque strings (`usr_…`, `grp_…`) where the v2 spec says integer; a deleted user's `userID` in the audit
log is null, as TypingMind's; entities are named as TypingMind names them (a mind is an "agent", a member a "user").
"""

from django.http import Http404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.response import Response

from accounts.models import AuditLog, Group, Member
from compat.typingmind.base import TypingMindApiView
from config.api.errors import NotFound
from config.api.pagination import MAX_PAGE
from config.api.serializers import StrictSerializer, body, iso, query_params
from teams import selectors, services
from teams.serializers import ProfileSerializer, ids_field, profile_changes, profile_data, tags_field
from teams.services import MAX_TITLE_CHARS, MemberChanges

USERS_MANAGE = "users:manage"
TAG = ["TypingMind"]
# Our entity names -> TypingMind's (its audit log says "agent" where we say "mind").
ENTITY_NAMES = {"mind": "agent", "member": "user"}


class TypingMindError(serializers.Serializer):
    userMessage = serializers.CharField()
    details = serializers.DictField(required=False)


def tm_errors(*status_codes: int) -> dict:
    return {code: TypingMindError for code in status_codes}


ERRORS = (400, 401, 403, 404, 429)


# No class docstring: drf-spectacular would print it as every operation's description.
class TypingMindTeamApiView(TypingMindApiView):
    # TypingMind answers a missing user and a missing group alike.
    not_found_message = "User Not Found"

    def handle_exception(self, exc):
        if isinstance(exc, (NotFound, Http404, exceptions.NotFound)):
            exc = NotFound(self.not_found_message)
        return super().handle_exception(exc)


# Users, v1 (deprecated by TypingMind, tag-based) ------------------------------------------------------------------


class TypingMindUserSerializer(serializers.Serializer):
    id = serializers.CharField(
        help_text="Our opaque member id (`usr_…`); TypingMind's spec types it as a string."
    )
    email = serializers.CharField()
    createdAt = serializers.CharField()
    tags = serializers.ListField(child=serializers.CharField())


def user_data(member: Member) -> dict:
    return {
        "id": member.id,
        "email": member.email,
        "createdAt": iso(member.created_at),
        "tags": list(member.tags),
    }


class TypingMindUserCreateSerializer(StrictSerializer):
    email = serializers.EmailField(max_length=254)
    tags = tags_field(required=False)


class TypingMindUserTagsSerializer(StrictSerializer):
    tags = tags_field()


class TypingMindUserQuerySerializer(serializers.Serializer):
    email = serializers.CharField(max_length=254, required=False)


def _deleted_body() -> dict:
    return {"success": True}


DELETED = inline_serializer("TypingMindDeleted", {"success": serializers.BooleanField()})


class UserListV1Api(TypingMindTeamApiView):
    required_scopes = {"GET": USERS_MANAGE, "POST": USERS_MANAGE}

    @extend_schema(
        operation_id="typingmind_v1_users_list",
        tags=TAG,
        parameters=[TypingMindUserQuerySerializer],
        responses={
            200: inline_serializer("TypingMindUserList", {"data": TypingMindUserSerializer(many=True)}),
            **tm_errors(*ERRORS),
        },
    )
    def get(self, request):
        params = query_params(TypingMindUserQuerySerializer, request)
        members = selectors.member_list(workspace=self.workspace, email=params.get("email"))
        return Response({"data": [user_data(member) for member in members]})

    @extend_schema(
        operation_id="typingmind_v1_users_create",
        tags=TAG,
        request=TypingMindUserCreateSerializer,
        responses={200: TypingMindUserSerializer, **tm_errors(*ERRORS)},
    )
    def post(self, request):
        data = body(TypingMindUserCreateSerializer, request)
        member = services.member_create(
            workspace=self.workspace, changes=MemberChanges(email=data["email"], tags=data.get("tags"))
        )
        return Response(user_data(member))


class UserDetailV1Api(TypingMindTeamApiView):
    required_scopes = {"GET": USERS_MANAGE, "PATCH": USERS_MANAGE, "DELETE": USERS_MANAGE}

    @extend_schema(
        operation_id="typingmind_v1_users_retrieve",
        tags=TAG,
        responses={200: TypingMindUserSerializer, **tm_errors(*ERRORS)},
    )
    def get(self, request, user_id: str):
        return Response(user_data(selectors.member_get(workspace=self.workspace, member_id=user_id)))

    @extend_schema(
        operation_id="typingmind_v1_users_update",
        tags=TAG,
        description="Tags are the only field a v1 user can change; they replace the user's tags.",
        request=TypingMindUserTagsSerializer,
        responses={200: TypingMindUserSerializer, **tm_errors(*ERRORS)},
    )
    def patch(self, request, user_id: str):
        data = body(TypingMindUserTagsSerializer, request)
        member = selectors.member_get(workspace=self.workspace, member_id=user_id)
        member = services.member_update(member=member, changes=MemberChanges(tags=data["tags"]))
        return Response(user_data(member))

    @extend_schema(
        operation_id="typingmind_v1_users_destroy",
        tags=TAG,
        description="Removes the user; removing an api-user revokes its API key.",
        responses={200: DELETED, **tm_errors(*ERRORS)},
    )
    def delete(self, request, user_id: str):
        member = selectors.member_get(workspace=self.workspace, member_id=user_id)
        services.member_delete(member=member, actor=self.principal)
        return Response(_deleted_body())


# Users, v2 (groups and profile) -----------------------------------------------------------------------------------


class TypingMindGroupNameSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()


class TypingMindUserV2Serializer(serializers.Serializer):
    id = serializers.CharField(
        help_text="Our opaque member id (`usr_…`) where TypingMind's spec says integer."
    )
    email = serializers.CharField()
    createdAt = serializers.CharField()
    groups = TypingMindGroupNameSerializer(many=True)
    profile = inline_serializer(
        "TypingMindProfile",
        {
            "firstName": serializers.CharField(),
            "lastName": serializers.CharField(),
            "profilePicURL": serializers.CharField(),
            "aboutMe": serializers.CharField(),
        },
        required=False,
        help_text="Present when any of its fields is set.",
    )


def user_v2_data(member: Member) -> dict:
    data = {
        "id": member.id,
        "email": member.email,
        "createdAt": iso(member.created_at),
        "groups": [{"id": group.id, "name": group.name} for group in member.groups.all()],
    }
    profile = profile_data(member)
    if any(profile.values()):
        data["profile"] = profile
    return data


class TypingMindUserV2CreateSerializer(StrictSerializer):
    email = serializers.EmailField(max_length=254)
    groups = ids_field(required=False)
    profile = ProfileSerializer(required=False)


class TypingMindUserGroupsSerializer(StrictSerializer):
    groups = ids_field()


class UserListV2Api(TypingMindTeamApiView):
    required_scopes = {"GET": USERS_MANAGE, "POST": USERS_MANAGE}

    @extend_schema(
        operation_id="typingmind_v2_users_list",
        tags=TAG,
        parameters=[TypingMindUserQuerySerializer],
        responses={
            200: inline_serializer("TypingMindUserV2List", {"data": TypingMindUserV2Serializer(many=True)}),
            **tm_errors(*ERRORS),
        },
    )
    def get(self, request):
        params = query_params(TypingMindUserQuerySerializer, request)
        members = selectors.member_list(workspace=self.workspace, email=params.get("email"))
        return Response({"data": [user_v2_data(member) for member in members]})

    @extend_schema(
        operation_id="typingmind_v2_users_create",
        tags=TAG,
        description="Adds a user (a seat) with its groups (group ids) and profile (no other property).",
        request=TypingMindUserV2CreateSerializer,
        responses={200: TypingMindUserV2Serializer, **tm_errors(*ERRORS)},
    )
    def post(self, request):
        data = body(TypingMindUserV2CreateSerializer, request)
        member = services.member_create(
            workspace=self.workspace,
            changes=MemberChanges(
                email=data["email"], group_ids=data.get("groups"), **profile_changes(data.get("profile"))
            ),
        )
        return Response(user_v2_data(member))


class UserDetailV2Api(TypingMindTeamApiView):
    required_scopes = {"GET": USERS_MANAGE, "PATCH": USERS_MANAGE, "DELETE": USERS_MANAGE}

    @extend_schema(
        operation_id="typingmind_v2_users_retrieve",
        tags=TAG,
        responses={200: TypingMindUserV2Serializer, **tm_errors(*ERRORS)},
    )
    def get(self, request, user_id: str):
        return Response(user_v2_data(selectors.member_get(workspace=self.workspace, member_id=user_id)))

    @extend_schema(
        operation_id="typingmind_v2_users_update",
        tags=TAG,
        description="`groups` (group ids) replace the user's groups.",
        request=TypingMindUserGroupsSerializer,
        responses={200: TypingMindUserV2Serializer, **tm_errors(*ERRORS)},
    )
    def patch(self, request, user_id: str):
        data = body(TypingMindUserGroupsSerializer, request)
        member = selectors.member_get(workspace=self.workspace, member_id=user_id)
        member = services.member_update(member=member, changes=MemberChanges(group_ids=data["groups"]))
        return Response(user_v2_data(member))

    @extend_schema(
        operation_id="typingmind_v2_users_destroy",
        tags=TAG,
        description="Removes the user; removing an api-user revokes its API key.",
        responses={200: DELETED, **tm_errors(*ERRORS)},
    )
    def delete(self, request, user_id: str):
        member = selectors.member_get(workspace=self.workspace, member_id=user_id)
        services.member_delete(member=member, actor=self.principal)
        return Response(_deleted_body())


# Groups and roles ------------------------------------------------------------------------------------------------


class TypingMindGroupSerializer(serializers.Serializer):
    id = serializers.CharField()
    title = serializers.CharField()


class TypingMindGroupWithRolesSerializer(TypingMindGroupSerializer):
    roles = serializers.ListField(child=serializers.CharField())


def group_with_roles_data(group: Group) -> dict:
    return {"id": group.id, "title": group.name, "roles": list(group.roles)}


class TypingMindGroupCreateSerializer(StrictSerializer):
    title = serializers.CharField(max_length=MAX_TITLE_CHARS, min_length=1)
    roles = serializers.ListField(child=serializers.CharField(max_length=40), max_length=20, required=False)


class TypingMindGroupUpdateSerializer(TypingMindGroupCreateSerializer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, partial=True, **kwargs)

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError("Give `title`, `roles` or both.")
        return attrs


class GroupListApi(TypingMindTeamApiView):
    required_scopes = {"GET": USERS_MANAGE, "POST": USERS_MANAGE}

    @extend_schema(
        operation_id="typingmind_v2_groups_list",
        tags=TAG,
        responses={200: TypingMindGroupSerializer(many=True), **tm_errors(401, 403, 429)},
    )
    def get(self, request):
        groups = selectors.group_list(workspace=self.workspace)
        return Response([{"id": group.id, "title": group.name} for group in groups])

    @extend_schema(
        operation_id="typingmind_v2_groups_create",
        tags=TAG,
        description="`roles` are ids from GET /api/v2/roles.",
        request=TypingMindGroupCreateSerializer,
        responses={200: TypingMindGroupWithRolesSerializer, **tm_errors(*ERRORS)},
    )
    def post(self, request):
        data = body(TypingMindGroupCreateSerializer, request)
        group = services.group_create(workspace=self.workspace, title=data["title"], roles=data.get("roles"))
        return Response(group_with_roles_data(group))


class GroupDetailApi(TypingMindTeamApiView):
    required_scopes = {"GET": USERS_MANAGE, "PATCH": USERS_MANAGE}

    @extend_schema(
        operation_id="typingmind_v2_groups_retrieve",
        tags=TAG,
        responses={200: TypingMindGroupWithRolesSerializer, **tm_errors(*ERRORS)},
    )
    def get(self, request, group_id: str):
        return Response(
            group_with_roles_data(selectors.group_get(workspace=self.workspace, group_id=group_id))
        )

    @extend_schema(
        operation_id="typingmind_v2_groups_update",
        tags=TAG,
        description="One of `{title}`, `{roles}` or `{title, roles}`; `roles` replace the group's roles.",
        request=TypingMindGroupUpdateSerializer,
        responses={200: TypingMindGroupWithRolesSerializer, **tm_errors(*ERRORS)},
    )
    def patch(self, request, group_id: str):
        data = body(TypingMindGroupUpdateSerializer, request)
        group = selectors.group_get(workspace=self.workspace, group_id=group_id)
        group = services.group_update(group=group, title=data.get("title"), roles=data.get("roles"))
        return Response(group_with_roles_data(group))


class RoleListApi(TypingMindTeamApiView):
    required_scopes = {"GET": USERS_MANAGE}

    @extend_schema(
        operation_id="typingmind_v2_roles_list",
        tags=TAG,
        responses={
            200: inline_serializer(
                "TypingMindRole", {"id": serializers.CharField(), "title": serializers.CharField()}, many=True
            ),
            **tm_errors(401, 403, 429),
        },
    )
    def get(self, request):
        return Response([{"id": role.id, "title": role.title} for role in selectors.role_list()])


# Audit log ---------------------------------------------------------------------------------------------------------


class TypingMindAuditLogQuerySerializer(serializers.Serializer):
    page = serializers.IntegerField(min_value=1, max_value=MAX_PAGE, default=1)
    limit = serializers.IntegerField(min_value=1, max_value=100, default=25)


class TypingMindAuditLogEntrySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    entity = serializers.CharField()
    entityName = serializers.CharField()
    action = serializers.CharField()
    recordedAt = serializers.CharField()
    userID = serializers.CharField(
        allow_null=True, help_text="The acting member's id (`usr_…`), null once that member is deleted."
    )


def audit_log_data(entry: AuditLog) -> dict:
    return {
        "id": entry.id,
        "entity": ENTITY_NAMES.get(entry.entity, entry.entity),
        "entityName": entry.entity_name,
        "action": entry.action,
        "recordedAt": iso(entry.recorded_at),
        "userID": entry.actor_member_id,
    }


class AuditLogListApi(TypingMindTeamApiView):
    required_scopes = {"GET": USERS_MANAGE}

    @extend_schema(
        operation_id="typingmind_v2_audit_logs_list",
        tags=TAG,
        description="Newest first; `page` from 1, `limit` 1–100 (default 25). Needs a key without a mind restriction.",
        parameters=[TypingMindAuditLogQuerySerializer],
        responses={
            200: inline_serializer(
                "TypingMindAuditLogList",
                {
                    "logs": TypingMindAuditLogEntrySerializer(many=True),
                    "hasMore": serializers.BooleanField(),
                    "page": serializers.IntegerField(),
                    "total": serializers.IntegerField(),
                },
            ),
            **tm_errors(400, 401, 403, 429),
        },
    )
    def get(self, request):
        params = query_params(TypingMindAuditLogQuerySerializer, request)
        page = selectors.audit_log_numbered_page(principal=self.principal, **params)
        return Response(
            {
                "logs": [audit_log_data(entry) for entry in page.items],
                "hasMore": page.page * page.limit < page.total,
                "page": page.page,
                "total": page.total,
            }
        )
