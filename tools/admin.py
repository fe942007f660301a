from tools import admin_mcp  # noqa: F401  (MCP servers and the context endpoint register themselves there)
