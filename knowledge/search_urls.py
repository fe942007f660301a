from django.urls import path

from knowledge.search_apis import SearchApi

urlpatterns = [
    path("minds/<str:mind_id>/search", SearchApi.as_view(), name="knowledge-search"),
]
