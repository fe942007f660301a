from django.urls import path

from teams import apis

urlpatterns = [
    path("members", apis.MemberListApi.as_view(), name="member-list"),
    path("members/<str:member_id>", apis.MemberDetailApi.as_view(), name="member-detail"),
    path("groups", apis.GroupListApi.as_view(), name="group-list"),
    path("groups/<str:group_id>", apis.GroupDetailApi.as_view(), name="group-detail"),
    path("roles", apis.RoleListApi.as_view(), name="role-list"),
    path("audit-logs", apis.AuditLogListApi.as_view(), name="audit-log-list"),
]
