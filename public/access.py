"""Who may call a published mind's JSON endpoints: `published_mind_view` puts the lookup of the published mind, the
Origin check and CORS in front of a view. Refusals are the API's envelope (`error_json_response`)."""

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from config.api.exception_handler import error_json_response
from minds.models import Mind
from minds.selectors import published_mind_by_slug


def own_origin(request: HttpRequest) -> str:
    return f"{request.scheme}://{request.get_host()}"


def _cross_origin(request: HttpRequest, mind: Mind) -> tuple[str | None, bool]:
    """(origin to echo in CORS headers or None, allowed?)"""
    origin = request.headers.get("Origin")
    if not origin or origin in (own_origin(request), settings.PUBLIC_BASE_URL):
        if request.headers.get("Sec-Fetch-Site") == "cross-site":
            return None, False
        return None, True
    allowed = origin.lower() in [o.lower() for o in (mind.allowed_origins or [])]
    return (origin if allowed else None), allowed


def _cors(response: HttpResponse, origin: str | None) -> HttpResponse:
    if origin:
        response["Access-Control-Allow-Origin"] = origin
        response["Access-Control-Allow-Headers"] = "Content-Type, X-Minds-Visitor"
        response["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        # Cross-origin scripts read only the headers named here: the rate-limit budget as well as the wait.
        response["Access-Control-Expose-Headers"] = (
            "Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset"
        )
        response["Access-Control-Max-Age"] = "600"
        response["Vary"] = "Origin"
    return response


def published_mind_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """`view(request, mind, **kwargs)` for a URL with a `slug`: it runs only for a published mind (a JSON 404
    otherwise) and a request from the mind's site or one of its `allowedOrigins` (403 `origin_not_allowed`
    otherwise). CORS preflights (OPTIONS) are answered here, and an allowed foreign origin gets CORS headers on
    every response, refusals included, so its page can read them."""

    @wraps(view)
    def wrapper(request: HttpRequest, slug: str, **kwargs) -> HttpResponse:
        mind = published_mind_by_slug(slug=slug)
        if mind is None:
            return error_json_response(404, "not_found", "There is no published mind at this address.")
        cors_origin, allowed = _cross_origin(request, mind)
        if not allowed:
            return error_json_response(403, "origin_not_allowed", "This site may not use this mind's chat.")
        if request.method == "OPTIONS":
            return _cors(HttpResponse(status=204), cors_origin)
        return _cors(view(request, mind, **kwargs), cors_origin)

    return wrapper
