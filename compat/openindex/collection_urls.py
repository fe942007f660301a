from django.urls import path

from compat.openindex.collections import CollectionsApi, CollectionSearchApi

urlpatterns = [
    path("collections", CollectionsApi.as_view(), name="openindex-collections"),
    path("collections/search", CollectionSearchApi.as_view(), name="openindex-collections-search"),
]
