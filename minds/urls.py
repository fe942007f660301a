from django.urls import path

from minds import apis

urlpatterns = [
    path("minds", apis.MindListApi.as_view(), name="mind-list"),
    path("minds/<str:mind_id>", apis.MindDetailApi.as_view(), name="mind-detail"),
    path("minds/<str:mind_id>/publish", apis.MindPublishApi.as_view(), name="mind-publish"),
]
