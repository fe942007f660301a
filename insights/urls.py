from django.urls import path

from insights import apis

urlpatterns = [
    path("minds/<str:mind_id>/insights", apis.MindInsightsApi.as_view(), name="minds-insights"),
    path(
        "minds/<str:mind_id>/insights/visitors.csv",
        apis.MindVisitorsCsvApi.as_view(),
        name="minds-insights-visitors-csv",
    ),
]
