"""Reads of tools, always within one mind (which the base view resolved within the key's reach)."""

from django.db.models import QuerySet

from config.api.errors import NotFound
from minds.models import Mind
from tools.models import Tool


def tool_list(*, mind: Mind) -> QuerySet[Tool]:
    return Tool.objects.filter(mind=mind, workspace_id=mind.workspace_id).order_by("created_at", "id")


def tool_get(*, mind: Mind, tool_id: str) -> Tool:
    """The mind's tool; another mind's or workspace's is not found, like a missing one."""
    tool = tool_list(mind=mind).filter(pk=tool_id).first()
    if tool is None:
        raise NotFound("Tool not found.")
    return tool
