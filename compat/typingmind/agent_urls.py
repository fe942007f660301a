"""TypingMind's characters (`v1`, under /api/v1/) and agent chat (`v2`, under /api/v2/)."""

from django.urls import path

from compat.typingmind import agents

v1 = [
    path("ai-characters", agents.CharacterListApi.as_view(), name="typingmind-ai-characters"),
]
v2 = [
    path("agents/<str:agent_id>/chat", agents.AgentChatApi.as_view(), name="typingmind-agent-chat"),
]
