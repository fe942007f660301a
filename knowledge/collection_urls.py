from django.urls import path

from knowledge import collection_apis as apis

urlpatterns = [
    path("collections", apis.CollectionListApi.as_view(), name="collection-list"),
    path("collections/<str:collection_id>", apis.CollectionDetailApi.as_view(), name="collection-detail"),
    path(
        "collections/<str:collection_id>/knowledge",
        apis.CollectionSourceListApi.as_view(),
        name="collection-knowledge-list",
    ),
    path(
        "collections/<str:collection_id>/knowledge/upload",
        apis.CollectionUploadApi.as_view(),
        name="collection-knowledge-upload",
    ),
    path(
        "collections/<str:collection_id>/knowledge/files/<str:file_id>",
        apis.CollectionUploadDownloadApi.as_view(),
        name="collection-knowledge-file",
    ),
    path(
        "collections/<str:collection_id>/knowledge/<str:source_id>",
        apis.CollectionSourceDetailApi.as_view(),
        name="collection-knowledge-detail",
    ),
    path(
        "collections/<str:collection_id>/knowledge/<str:source_id>/reprocess",
        apis.CollectionSourceReprocessApi.as_view(),
        name="collection-knowledge-reprocess",
    ),
    path(
        "collections/<str:collection_id>/search", apis.CollectionSearchApi.as_view(), name="collection-search"
    ),
    path("minds/<str:mind_id>/collections", apis.MindCollectionsApi.as_view(), name="mind-collections"),
]
