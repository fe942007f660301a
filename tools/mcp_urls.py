# Native API of MCP servers and the dynamic context endpoint (tools/mcp_apis.py).
from django.urls import path

from tools import mcp_apis

urlpatterns = [
    path("minds/<str:mind_id>/mcp-servers", mcp_apis.McpServerListApi.as_view(), name="mcp-server-list"),
    path(
        "minds/<str:mind_id>/mcp-servers/<str:server_id>",
        mcp_apis.McpServerDetailApi.as_view(),
        name="mcp-server-detail",
    ),
    path(
        "minds/<str:mind_id>/mcp-servers/<str:server_id>/refresh",
        mcp_apis.McpServerRefreshApi.as_view(),
        name="mcp-server-refresh",
    ),
    path(
        "minds/<str:mind_id>/context-endpoint", mcp_apis.ContextEndpointApi.as_view(), name="context-endpoint"
    ),
]
