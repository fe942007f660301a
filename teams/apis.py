"""The native teams endpoints: members, groups, roles and the audit log (scope `users:manage`)."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers

from config.api.pagination import paginate
from config.api.schema import COMMON_ERRORS, PaginationSerializer, envelope, errors
from config.api.serializers import body, query_params
from config.api.views import WorkspaceApiView, success
from teams import selectors, services
from teams.serializers import (
    AuditLogQuerySerializer,
    AuditLogSerializer,
    GroupCreateSerializer,
    GroupQuerySerializer,
    GroupSerializer,
    GroupUpdateSerializer,
    MemberCreateSerializer,
    MemberQuerySerializer,
    MemberSerializer,
    MemberUpdateSerializer,
    RoleSerializer,
    audit_entry_data,
    group_data,
    member_changes,
    member_data,
    role_data,
)

USERS_MANAGE = "users:manage"


def _deleted(name: str) -> serializers.Serializer:
    return envelope(name, deleted=serializers.BooleanField(), id=serializers.CharField())


class MemberListApi(WorkspaceApiView):
    required_scopes = {"GET": USERS_MANAGE, "POST": USERS_MANAGE}

    @extend_schema(
        operation_id="members_list",
        description="Members of the workspace, api-users included, oldest first; filter by `email` "
        "(case-insensitive), `tag` or `groupId`.",
        parameters=[MemberQuerySerializer],
        responses={
            200: envelope(
                "MemberListResponse", members=MemberSerializer(many=True), pagination=PaginationSerializer()
            ),
            **errors(*COMMON_ERRORS),
        },
    )
    def get(self, request):
        params = query_params(MemberQuerySerializer, request)
        members = selectors.member_list(
            workspace=self.workspace,
            email=params.get("email"),
            tag=params.get("tag"),
            group_id=params.get("groupId"),
        )
        page = paginate(members, page=params["page"], limit=params["limit"])
        return success(members=[member_data(m) for m in page.items], pagination=page.meta)

    @extend_schema(
        operation_id="members_create",
        request=MemberCreateSerializer,
        responses={
            201: envelope("MemberCreateResponse", member=MemberSerializer()),
            **errors(*COMMON_ERRORS),
        },
    )
    def post(self, request):
        data = body(MemberCreateSerializer, request)
        member = services.member_create(workspace=self.workspace, changes=member_changes(data))
        return success(201, member=member_data(member))


class MemberDetailApi(WorkspaceApiView):
    required_scopes = {"GET": USERS_MANAGE, "PATCH": USERS_MANAGE, "DELETE": USERS_MANAGE}

    @extend_schema(
        operation_id="members_retrieve",
        responses={
            200: envelope("MemberDetailResponse", member=MemberSerializer()),
            **errors(*COMMON_ERRORS),
        },
    )
    def get(self, request, member_id: str):
        return success(
            member=member_data(selectors.member_get(workspace=self.workspace, member_id=member_id))
        )

    @extend_schema(
        operation_id="members_update",
        description="Partial update; `groupIds` and `tags` replace the member's lists. An api-user's email, name "
        "and profile are fixed (it is named for its key).",
        request=MemberUpdateSerializer,
        responses={
            200: envelope("MemberUpdateResponse", member=MemberSerializer()),
            **errors(*COMMON_ERRORS),
        },
    )
    def patch(self, request, member_id: str):
        data = body(MemberUpdateSerializer, request)
        member = selectors.member_get(workspace=self.workspace, member_id=member_id)
        return success(
            member=member_data(services.member_update(member=member, changes=member_changes(data)))
        )

    @extend_schema(
        operation_id="members_destroy",
        description="Removes the member. Removing an api-user revokes its API key, and is allowed only for a key "
        "within the caller's reach (another is answered 404, as the key revoke endpoint answers).",
        responses={200: _deleted("MemberDeleteResponse"), **errors(*COMMON_ERRORS)},
    )
    def delete(self, request, member_id: str):
        member = selectors.member_get(workspace=self.workspace, member_id=member_id)
        return success(deleted=True, id=services.member_delete(member=member, actor=self.principal))


class GroupListApi(WorkspaceApiView):
    required_scopes = {"GET": USERS_MANAGE, "POST": USERS_MANAGE}

    @extend_schema(
        operation_id="groups_list",
        parameters=[GroupQuerySerializer],
        responses={
            200: envelope(
                "GroupListResponse", groups=GroupSerializer(many=True), pagination=PaginationSerializer()
            ),
            **errors(*COMMON_ERRORS),
        },
    )
    def get(self, request):
        params = query_params(GroupQuerySerializer, request)
        page = paginate(selectors.group_list(workspace=self.workspace), **params)
        return success(groups=[group_data(g) for g in page.items], pagination=page.meta)

    @extend_schema(
        operation_id="groups_create",
        description="`roles` are ids from GET /roles; `memberIds` members of this workspace.",
        request=GroupCreateSerializer,
        responses={201: envelope("GroupCreateResponse", group=GroupSerializer()), **errors(*COMMON_ERRORS)},
    )
    def post(self, request):
        data = body(GroupCreateSerializer, request)
        group = services.group_create(
            workspace=self.workspace,
            title=data["title"],
            roles=data.get("roles"),
            member_ids=data.get("memberIds"),
        )
        return success(201, group=group_data(group))


class GroupDetailApi(WorkspaceApiView):
    required_scopes = {"GET": USERS_MANAGE, "PATCH": USERS_MANAGE, "DELETE": USERS_MANAGE}

    @extend_schema(
        operation_id="groups_retrieve",
        responses={200: envelope("GroupDetailResponse", group=GroupSerializer()), **errors(*COMMON_ERRORS)},
    )
    def get(self, request, group_id: str):
        return success(group=group_data(selectors.group_get(workspace=self.workspace, group_id=group_id)))

    @extend_schema(
        operation_id="groups_update",
        description="Partial update; `roles` and `memberIds` replace the group's lists.",
        request=GroupUpdateSerializer,
        responses={200: envelope("GroupUpdateResponse", group=GroupSerializer()), **errors(*COMMON_ERRORS)},
    )
    def patch(self, request, group_id: str):
        data = body(GroupUpdateSerializer, request)
        group = selectors.group_get(workspace=self.workspace, group_id=group_id)
        group = services.group_update(
            group=group, title=data.get("title"), roles=data.get("roles"), member_ids=data.get("memberIds")
        )
        return success(group=group_data(group))

    @extend_schema(
        operation_id="groups_destroy",
        description="Deletes the group and removes it from every mind's allowedGroupIds; a group-only mind left "
        "with no group stays closed to every key.",
        responses={200: _deleted("GroupDeleteResponse"), **errors(*COMMON_ERRORS)},
    )
    def delete(self, request, group_id: str):
        group = selectors.group_get(workspace=self.workspace, group_id=group_id)
        return success(deleted=True, id=services.group_delete(group=group))


class RoleListApi(WorkspaceApiView):
    required_scopes = {"GET": USERS_MANAGE}

    @extend_schema(
        operation_id="roles_list",
        description="The fixed roles a group can carry and the scopes each grants (roles only narrow a key).",
        responses={
            200: envelope("RoleListResponse", roles=RoleSerializer(many=True)),
            **errors(401, 403, 429),
        },
    )
    def get(self, request):
        return success(roles=[role_data(role) for role in selectors.role_list()])


class AuditLogListApi(WorkspaceApiView):
    required_scopes = {"GET": USERS_MANAGE}

    @extend_schema(
        operation_id="audit_logs_list",
        description="Newest first. Filters: `entity`, `action`, `actorId` (a member id or key id), `from` and `to` "
        "(ISO-8601, inclusive). Cursor: pass `nextStartAfter` as `startAfter`. Needs a key without a mind "
        "restriction.",
        parameters=[
            AuditLogQuerySerializer,
            OpenApiParameter("from", str, description="ISO-8601; entries recorded at or after it."),
        ],
        responses={
            200: envelope(
                "AuditLogListResponse",
                entries=AuditLogSerializer(many=True),
                hasMore=serializers.BooleanField(),
                nextStartAfter=serializers.IntegerField(allow_null=True),
            ),
            **errors(*COMMON_ERRORS),
        },
    )
    def get(self, request):
        params = query_params(AuditLogQuerySerializer, request)
        entries, has_more = selectors.audit_log_page(
            principal=self.principal,
            entity=params.get("entity"),
            action=params.get("action"),
            actor_id=params.get("actorId"),
            since=params.get("from"),
            until=params.get("to"),
            start_after=params.get("startAfter"),
            limit=params["limit"],
        )
        return success(
            entries=[audit_entry_data(entry) for entry in entries],
            hasMore=has_more,
            nextStartAfter=entries[-1].id if has_more and entries else None,
        )
