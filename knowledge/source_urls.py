from django.urls import path

from knowledge import apis

urlpatterns = [
    path("minds/<str:mind_id>/knowledge", apis.SourceListApi.as_view(), name="knowledge-list"),
    path("minds/<str:mind_id>/knowledge/upload", apis.UploadApi.as_view(), name="knowledge-upload"),
    path(
        "minds/<str:mind_id>/knowledge/files/<str:file_id>",
        apis.UploadDownloadApi.as_view(),
        name="knowledge-file",
    ),
    path(
        "minds/<str:mind_id>/knowledge/<str:source_id>",
        apis.SourceDetailApi.as_view(),
        name="knowledge-detail",
    ),
    path(
        "minds/<str:mind_id>/knowledge/<str:source_id>/reprocess",
        apis.SourceReprocessApi.as_view(),
        name="knowledge-reprocess",
    ),
]
