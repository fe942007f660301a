from django.urls import path

from conversations import apis, openai_apis

urlpatterns = [
    path("minds/<str:mind_id>/chat", apis.ChatApi.as_view(), name="minds-chat"),
    path("minds/<str:mind_id>/conversations", apis.ConversationListApi.as_view(), name="minds-conversations"),
    path(
        "conversations/<str:conversation_id>",
        apis.ConversationDetailApi.as_view(),
        name="conversations-detail",
    ),
    path(
        "conversations/<str:conversation_id>/messages/<str:message_id>/feedback",
        apis.MessageFeedbackApi.as_view(),
        name="messages-feedback",
    ),
    path("chatlogs", apis.ChatlogListApi.as_view(), name="chatlogs"),
    path("chat/completions", openai_apis.ChatCompletionsApi.as_view(), name="openai-chat-completions"),
    path("models", openai_apis.ModelListApi.as_view(), name="openai-models"),
]
