"""TypingMind's user, group, role and audit-log paths. `v1` is mounted under /api/v1/ beside the native API, whose
members live at /members, so /users is TypingMind's alone; `v2` under /api/v2/."""

from django.urls import path

from compat.typingmind import groups, teams

v1 = [
    path("users", teams.UserListV1Api.as_view(), name="typingmind-v1-users"),
    path("users/<str:user_id>", teams.UserDetailV1Api.as_view(), name="typingmind-v1-user"),
]
v2 = [
    path("users", teams.UserListV2Api.as_view(), name="typingmind-v2-users"),
    path("users/<str:user_id>", teams.UserDetailV2Api.as_view(), name="typingmind-v2-user"),
    path("groups", groups.GroupListApi.as_view(), name="typingmind-v2-groups"),
    path("groups/<str:group_id>", groups.GroupDetailApi.as_view(), name="typingmind-v2-group"),
    path("roles", groups.RoleListApi.as_view(), name="typingmind-v2-roles"),
    path("audit-logs", groups.AuditLogListApi.as_view(), name="typingmind-v2-audit-logs"),
]
