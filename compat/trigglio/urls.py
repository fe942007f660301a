"""Trigglio's paths beside the native ones: the chatbots (`v1`, under /api/v1/) and the legacy key check (`root`,
under /api/)."""

from django.urls import path

from compat.trigglio import auth, chatbots

v1 = [
    path("chatbots", chatbots.ChatbotListApi.as_view(), name="trigglio-chatbots"),
    path(
        "chatbots/<str:mind_id>/sources",
        chatbots.ChatbotSourceListApi.as_view(),
        name="trigglio-chatbot-sources",
    ),
    path(
        "chatbots/<str:mind_id>/search", chatbots.ChatbotSearchApi.as_view(), name="trigglio-chatbot-search"
    ),
]
root = [
    path(
        "integrations/webhooks/auth/verify",
        auth.IntegrationsAuthVerifyApi.as_view(),
        name="trigglio-integrations-auth-verify",
    ),
]
