"""What a mind can call while it answers: built-in tools, HTTP tools, the tools of MCP servers, and the dynamic
context endpoint read on every turn. Secret header values are stored encrypted (tools/secrets.py) and never returned.
"""

from django.db import models

from accounts.models import Workspace
from config.ids import make_id
from minds.models import Mind


def tool_id() -> str:
    return make_id("tool")


def mcp_server_id() -> str:
    return make_id("mcp")


class McpServer(models.Model):
    """A remote MCP server (streamable HTTP). Its tools are listed and cached as Tool rows of kind `mcp`, each
    enabled on its own."""

    id = models.CharField(primary_key=True, max_length=40, default=mcp_server_id, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="mcp_servers")
    mind = models.ForeignKey(Mind, on_delete=models.CASCADE, related_name="mcp_servers")
    # Prefixes the function names of its tools, so two servers' tools never collide.
    name = models.CharField(max_length=40)
    url = models.URLField(max_length=2000)
    secret_headers_ciphertext = models.TextField(blank=True)
    secret_header_names = models.JSONField(default=list, blank=True)
    enabled = models.BooleanField(default=True)
    listed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [models.UniqueConstraint(fields=["mind", "name"], name="mcp_server_name_per_mind")]

    def __str__(self) -> str:
        return self.name


class Tool(models.Model):
    class Kind(models.TextChoices):
        SEARCH_KNOWLEDGE = "search_knowledge"
        FETCH_URL = "fetch_url"
        HTTP = "http"
        MCP = "mcp"

    id = models.CharField(primary_key=True, max_length=40, default=tool_id, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="tools")
    mind = models.ForeignKey(Mind, on_delete=models.CASCADE, related_name="tools")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    # The function name the model sees (^[a-zA-Z0-9_-]{1,64}$), unique in the mind.
    name = models.CharField(max_length=64)
    description = models.TextField(blank=True)
    # The JSON Schema of the arguments (HTTP tools; MCP tools copy the server's inputSchema).
    parameters = models.JSONField(default=dict, blank=True)
    # Off unless enabled: a mind acts only through tools its owner switched on.
    enabled = models.BooleanField(default=False)
    # Usable on the public page and the widget, where anyone can make the mind call it.
    is_public = models.BooleanField(default=False)
    # What the kind needs: http {method, urlTemplate, bodyTemplate?}; fetch_url {allowedHosts}; mcp {remoteName}.
    config = models.JSONField(default=dict, blank=True)
    secret_headers_ciphertext = models.TextField(blank=True)
    secret_header_names = models.JSONField(default=list, blank=True)
    mcp_server = models.ForeignKey(
        McpServer, null=True, blank=True, on_delete=models.CASCADE, related_name="tools"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [models.UniqueConstraint(fields=["mind", "name"], name="tool_name_per_mind")]

    def __str__(self) -> str:
        return self.name


class ContextEndpoint(models.Model):
    """The customer's endpoint called on each chat turn; its answer goes into the system prompt."""

    mind = models.OneToOneField(
        Mind, primary_key=True, on_delete=models.CASCADE, related_name="context_endpoint"
    )
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    # May use {conversationId}, {mindId}, {lastUserMessage}, {userId} (each URL-encoded when filled in).
    url_template = models.CharField(max_length=2000)
    secret_headers_ciphertext = models.TextField(blank=True)
    secret_header_names = models.JSONField(default=list, blank=True)
    cache_seconds = models.PositiveIntegerField(default=300)
    timeout_seconds = models.FloatField(default=3.0)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.url_template
