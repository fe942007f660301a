from django.urls import path

from public import views

urlpatterns = [
    path("m/<slug:slug>", views.mind_page, name="public-mind"),
    path("m/<slug:slug>/chat", views.public_chat, name="public-chat"),
    path(
        "m/<slug:slug>/conversation/<str:conversation_id>",
        views.public_conversation,
        name="public-conversation",
    ),
    path("m/<slug:slug>/feedback", views.public_feedback, name="public-feedback"),
    path("m/<slug:slug>/widget.js", views.widget_script, name="public-widget"),
    path("m/<slug:slug>/speech", views.speech, name="public-speech"),
]
