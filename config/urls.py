import sys

from django.conf import settings
from django.contrib import admin
from django.http import Http404
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt
from django.views.defaults import bad_request, page_not_found, server_error
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerView
from rest_framework.permissions import AllowAny

from compat.openindex import agent_urls as openindex_agent_urls
from compat.openindex import collection_urls as openindex_collection_urls
from compat.trigglio import urls as trigglio_urls
from compat.typingmind import agent_urls as typingmind_agent_urls
from compat.typingmind import team_urls as typingmind_team_urls
from config.api.exception_handler import DATABASE_RETRY_AFTER, error_json_response, unavailable_message
from config.api.middleware import answers_in_json
from config.health import healthz, readyz

api_v1 = [
    path("", include("apikeys.urls")),
    path("", include("minds.urls")),
    path("", include("knowledge.urls")),
    path("", include("conversations.urls")),
    path("", include("teams.urls")),
    path("", include("tools.urls")),
    path("", include("tools.mcp_urls")),
    path("", include("insights.urls")),
    # TypingMind's v1 paths (users, ai-characters) and Trigglio's chatbots, beside the native ones.
    path("", include(typingmind_team_urls.v1)),
    path("", include(typingmind_agent_urls.v1)),
    path("", include(trigglio_urls.v1)),
    path(
        "openapi.json",
        SpectacularJSONAPIView.as_view(authentication_classes=[], permission_classes=[AllowAny]),
        name="openapi-schema",
    ),
]


@csrf_exempt  # nothing is done here; a CSRF refusal would only hide the 404 behind an HTML page
def api_not_found(request, *args, **kwargs):
    return error_json_response(404, "not_found", f"No API endpoint at {request.path}.")


urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path(settings.ADMIN_PATH, admin.site.urls),
    path("api/v1/", include(api_v1)),
    # TypingMind's v2 (users, groups, roles, audit logs, agent chat).
    path("api/v2/", include(typingmind_team_urls.v2 + typingmind_agent_urls.v2)),
    # OpenIndex (/api/agents, /api/chat, /api/collections) and Trigglio's /api/integrations/… alias.
    path("api/", include(openindex_agent_urls.urlpatterns + openindex_collection_urls.urlpatterns)),
    path("api/", include(trigglio_urls.root)),
    path(
        "api/docs",
        SpectacularSwaggerView.as_view(
            url_name="openapi-schema", authentication_classes=[], permission_classes=[AllowAny]
        ),
        name="api-docs",
    ),
    re_path(r"^api/", api_not_found),
    path("", include("public.urls")),
]


def handler404(request, exception=None):
    if answers_in_json(request.path):
        return api_not_found(request)
    return page_not_found(request, exception or Http404())


def handler400(request, exception=None):
    if answers_in_json(request.path):
        return error_json_response(400, "bad_request", "The request could not be read.")
    return bad_request(request, exception)


def handler500(request):
    # Django calls this inside its `except` block: a database or Redis outage outside DRF (middleware, public
    # JSON) is a 503 to retry, not a 500.
    message = unavailable_message(sys.exc_info()[1])
    if answers_in_json(request.path) and message:
        return error_json_response(
            503, "service_unavailable", message, headers={"Retry-After": DATABASE_RETRY_AFTER}
        )
    if answers_in_json(request.path):
        return error_json_response(500, "internal_error", "An internal error occurred. It has been logged.")
    return server_error(request)
