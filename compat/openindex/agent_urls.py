from django.urls import path

from compat.openindex.agents import AgentsApi
from compat.openindex.chat import ChatApi

urlpatterns = [
    path("agents", AgentsApi.as_view(), name="openindex-agents"),
    path("chat", ChatApi.as_view(), name="openindex-chat"),
]
