"""A read-only insights page per mind in the admin: the API's numbers with server-drawn SVG charts.

Listed as "Mind insights" (a proxy of Mind, no table of its own) and linked from each mind's admin page
(templates/admin/minds/mind/change_form.html). The date range is the API's: `?from=&to=` ISO dates, inclusive UTC
days, the last 30 days by default; an invalid range is reported on the page and the default shown instead.
"""

from django.contrib import admin
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, HttpResponseNotAllowed
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from insights import charts, selectors
from insights.clustering import SIMILARITY_THRESHOLD
from insights.exports import visitors_csv, visitors_filename
from insights.models import MindInsights
from insights.serializers import DateRangeQuerySerializer, VisitorExportQuerySerializer


def _period(serializer_class, params) -> tuple[object, dict]:
    query = serializer_class(data=params)
    if query.is_valid():
        return query.validated_data["period"], {}
    fallback = serializer_class(data={})
    fallback.is_valid(raise_exception=True)
    return fallback.validated_data["period"], query.errors


@admin.register(MindInsights)
class MindInsightsAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "workspace", "is_published", "insights_link")
    list_filter = ("workspace",)
    search_fields = ("name", "slug", "id")
    actions = None

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Insights")
    def insights_link(self, obj):
        return format_html(
            '<a href="{}">Insights</a>', reverse("admin:insights_mindinsights_change", args=[quote(obj.pk)])
        )

    def get_urls(self):
        return [
            path(
                "<path:object_id>/visitors.csv",
                self.admin_site.admin_view(self.visitors_csv_view),
                name="insights_mindinsights_visitors_csv",
            ),
            *super().get_urls(),
        ]

    def _mind(self, request, object_id: str) -> MindInsights:
        # Admin URLs carry the id quoted (admin.utils.quote: `_` becomes `_5F`), as Django's own views expect.
        mind = self.get_object(request, unquote(object_id))
        if mind is None:
            raise Http404("No such mind.")
        if not self.has_view_permission(request, mind):
            raise PermissionDenied
        return mind

    def visitors_csv_view(self, request, object_id: str):
        mind = self._mind(request, object_id)
        period, problems = _period(VisitorExportQuerySerializer, request.GET)
        if problems:
            period = None
        response = HttpResponse(
            visitors_csv(selectors.visitors(mind=mind, period=period)), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="{visitors_filename(mind.slug, period)}"'
        response["Cache-Control"] = "no-store"
        return response

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if request.method != "GET":  # a page to read: there is no form to post
            return HttpResponseNotAllowed(["GET"])
        mind = self._mind(request, object_id)
        period, problems = _period(DateRangeQuerySerializer, request.GET)
        insights = selectors.mind_insights(mind=mind, period=period)
        days = insights["days"]
        labels = [day["date"].isoformat() for day in days]
        outcomes = insights["outcomes"]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Insights: {mind.name}",
            "mind": mind,
            "period": period,
            "problems": problems,
            "insights": insights,
            "threshold": SIMILARITY_THRESHOLD,
            "mind_admin_url": reverse("admin:minds_mind_change", args=[quote(mind.pk)]),
            "csv_url": reverse("admin:insights_mindinsights_visitors_csv", args=[quote(mind.pk)])
            + f"?from={period.start.isoformat()}&to={period.end.isoformat()}",
            "conversations_chart": charts.stacked_bars(
                "Conversations per day by channel",
                labels,
                {
                    channel: [day["channels"][channel]["conversations"] for day in days]
                    for channel in selectors.CHANNELS
                },
            ),
            "messages_chart": charts.line(
                "Messages per day", labels, [day["messages"] for day in days], "messages"
            ),
            "answers_chart": charts.horizontal_bars(
                "Answers",
                [
                    ("answered", outcomes["answered"]),
                    ("not found", outcomes["not_found"]),
                    ("failed", outcomes["failed"]),
                ],
            ),
            "feedback_chart": charts.horizontal_bars(
                "Feedback", [("thumbs up", outcomes["up"]), ("thumbs down", outcomes["down"])]
            ),
            "rate_percent": None if outcomes["rate"] is None else round(outcomes["rate"] * 100, 1),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/insights/mind_insights.html", context)
