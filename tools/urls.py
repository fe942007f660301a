from django.urls import path

from tools import apis

urlpatterns = [
    path("minds/<str:mind_id>/tools", apis.ToolListApi.as_view(), name="tool-list"),
    path("minds/<str:mind_id>/tools/<str:tool_id>", apis.ToolDetailApi.as_view(), name="tool-detail"),
]
