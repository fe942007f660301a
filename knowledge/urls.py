from django.urls import include, path

urlpatterns = [
    path("", include("knowledge.source_urls")),
    path("", include("knowledge.search_urls")),
    path("", include("knowledge.collection_urls")),
]
