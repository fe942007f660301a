"""TypingMind's groups, roles and audit log (`X-API-KEY`), over the same selectors and services as the native
/groups, /roles and /audit-logs. The users and what the views share are in compat/typingmind/teams.py."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from accounts.models import AuditLog, Group
from compat.typingmind.teams import (
    ENTITY_NAMES,
    ERRORS,
    TAG,
    USERS_MANAGE,
    TypingMindTeamApiView,
    tm_errors,
)
from config.api.pagination import MAX_PAGE
from config.api.serializers import StrictSerializer, body, iso, query_params
from teams import selectors, services
from teams.services import MAX_TITLE_CHARS

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
