# Native API of MCP servers and the dynamic context endpoint (tools/mcp_apis.py).
urlpatterns = []
