"""TypingMind's users (`X-API-KEY`), over the same selectors and services as the native /members, and what the
TypingMind team views share; groups, roles and the audit log are in compat/typingmind/groups.py.

The shapes are TypingMind's (seeds/001, reference/seed-apis.md §B.2): bare objects, `{data: [...]}` lists, a bare
array of groups, `{logs, hasMore, page, total}`. Differences a client may notice, all documented in docs/teams.md:
ids are our opaque strings (`usr_…`, `grp_…`) where the v2 spec says integer; a deleted user's `userID` in the audit
log is null, as TypingMind's; entities are named as TypingMind names them (a mind is an "agent", a member a "user").
"""

from django.http import Http404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.response import Response

from accounts.models import Member
from compat.typingmind.base import TypingMindApiView
from config.api.errors import NotFound
from config.api.serializers import StrictSerializer, body, iso, query_params
from teams import selectors, services
from teams.serializers import ProfileSerializer, ids_field, profile_changes, profile_data, tags_field
from teams.services import MemberChanges

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
