from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema

from config.api.schema import COMMON_ERRORS, envelope, errors
from config.api.serializers import query_params
from config.api.views import success
from insights import selectors
from insights.exports import visitors_csv, visitors_filename
from insights.serializers import (
    DateRangeQuerySerializer,
    InsightsSerializer,
    VisitorExportQuerySerializer,
    insights_data,
)
from minds.apis_base import MindScopedApiView


class MindInsightsApi(MindScopedApiView):
    required_scopes = {"GET": "conversations:read"}

    @extend_schema(
        operation_id="minds_insights",
        description=(
            "The mind's activity over `from`..`to` (ISO dates, inclusive UTC days; default the last 30 days, at "
            "most 366): conversations and messages per day by channel (days without activity as zeros), answered "
            "vs not-found answers (complete answers citing no passage), the not-found questions grouped by "
            "meaning, thumbs up/down and their rate, the most cited sources and the visitor emails collected."
        ),
        parameters=[DateRangeQuerySerializer],
        responses={
            200: envelope("InsightsResponse", insights=InsightsSerializer()),
            **errors(*COMMON_ERRORS),
        },
    )
    def get(self, request):
        period = query_params(DateRangeQuerySerializer, request)["period"]
        insights = selectors.mind_insights(mind=self.mind, period=period)
        return success(insights=insights_data(self.mind.id, insights))


class MindVisitorsCsvApi(MindScopedApiView):
    required_scopes = {"GET": "conversations:read"}

    @extend_schema(
        operation_id="minds_insights_visitors_csv",
        description=(
            "The visitor emails of the mind's conversations as CSV (an attachment): `email`, `first_seen_at`, "
            "`last_seen_at`, `conversations`, most recently seen first. All time without `from` and `to`, else "
            "the same range as the insights. Cells starting with `=`, `+`, `-` or `@` are prefixed with `'` so a "
            "spreadsheet does not read them as formulas."
        ),
        parameters=[VisitorExportQuerySerializer],
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="The CSV file."),
            **errors(*COMMON_ERRORS),
        },
    )
    def get(self, request):
        period = query_params(VisitorExportQuerySerializer, request)["period"]
        response = HttpResponse(
            visitors_csv(selectors.visitors(mind=self.mind, period=period)),
            content_type="text/csv; charset=utf-8",
        )
        response["Content-Disposition"] = (
            f'attachment; filename="{visitors_filename(self.mind.slug, period)}"'
        )
        response["Cache-Control"] = "no-store"
        response["X-Content-Type-Options"] = "nosniff"
        return response
