"""The public mind page, its chat endpoint and the embeddable widget. No API key: visitors are anonymous.

Request forgery: the chat endpoint accepts only JSON with an `X-Minds-Visitor` header. A cross-site form cannot
send either, and a cross-site script can only after a CORS preflight, which is answered for the mind's
`allowedOrigins` alone; an `Origin` that is neither this site nor an allowed origin is refused outright. (Django's
cookie-based CSRF token cannot be used: inside the widget's iframe on another site, browsers withhold cookies.)
"""

import json
import re
import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from config.api.errors import NotFound
from conversations.chat import chat_stream
from conversations.models import Conversation
from conversations.streaming import stream_response
from minds.models import Mind
from minds.selectors import published_mind_by_slug
from public.limits import public_message_allowed
from public.presentation import page_context, voice_available

MAX_MESSAGE_CHARS = 2000
VISITOR_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


def error(status: int, code: str, message: str, headers: dict | None = None) -> JsonResponse:
    response = JsonResponse(
        {"status": "error", "code": code, "message": message, "details": {}}, status=status
    )
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def _mind(slug: str) -> Mind:
    mind = published_mind_by_slug(slug=slug)
    if mind is None:
        raise Http404("No published mind here.")
    return mind


def _own_origin(request) -> str:
    return f"{request.scheme}://{request.get_host()}"


def _cross_origin(request, mind: Mind) -> tuple[str | None, bool]:
    """(origin to echo in CORS headers or None, allowed?)"""
    origin = request.headers.get("Origin")
    if not origin or origin in (_own_origin(request), settings.PUBLIC_BASE_URL):
        if request.headers.get("Sec-Fetch-Site") == "cross-site":
            return None, False
        return None, True
    allowed = origin.lower() in [o.lower() for o in (mind.allowed_origins or [])]
    return (origin if allowed else None), allowed


def _cors(response, origin: str | None):
    if origin:
        response["Access-Control-Allow-Origin"] = origin
        response["Access-Control-Allow-Headers"] = "Content-Type, X-Minds-Visitor"
        response["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        response["Access-Control-Max-Age"] = "600"
        response["Vary"] = "Origin"
    return response


def _client_ip(request) -> str:
    # Behind a trusted proxy set USE_X_FORWARDED_FOR; otherwise the socket address is the only honest one.
    if getattr(settings, "USE_X_FORWARDED_FOR", False):
        forwarded = request.headers.get("X-Forwarded-For", "").split(",")[0].strip()
        if forwarded:
            return forwarded
    return request.META.get("REMOTE_ADDR", "unknown")


def _security_headers(response, *, frame_ancestors: str, nonce: str):
    response["Content-Security-Policy"] = (
        "default-src 'self'; script-src 'self'; "
        f"style-src 'self' 'nonce-{nonce}'; img-src 'self' https: http: data:; media-src 'self' blob:; "
        f"connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors {frame_ancestors}"
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Referrer-Policy"] = "strict-origin-when-cross-origin"
    return response


@require_GET
@xframe_options_exempt  # framing is governed by CSP frame-ancestors instead (allowed origins only)
def mind_page(request, slug: str):
    mind = published_mind_by_slug(slug=slug)
    if mind is None:
        response = render(request, "public/404.html", status=404)
        return _security_headers(response, frame_ancestors="'none'", nonce=secrets.token_urlsafe(12))
    embed = request.GET.get("embed") == "1"
    nonce = secrets.token_urlsafe(12)
    context = page_context(mind, embed=embed)
    context["nonce"] = nonce
    response = render(request, "public/mind.html", context)
    origins = " ".join(o for o in (mind.allowed_origins or []) if re.match(r"^https?://[A-Za-z0-9.:-]+$", o))
    ancestors = (origins or "'none'") if embed else "'none'"
    response["Cache-Control"] = "no-cache"
    return _security_headers(response, frame_ancestors=ancestors, nonce=nonce)


def _visitor(request) -> str | None:
    visitor = request.headers.get("X-Minds-Visitor", "")
    return visitor if VISITOR_RE.match(visitor) else None


@csrf_exempt  # see the module docstring: JSON + custom header + Origin check instead of a cookie token
@require_http_methods(["POST", "OPTIONS"])
def public_chat(request, slug: str):
    mind = _mind(slug)
    cors_origin, allowed = _cross_origin(request, mind)
    if not allowed:
        return error(403, "origin_not_allowed", "This site may not use this mind's chat.")
    if request.method == "OPTIONS":
        return _cors(HttpResponse(status=204), cors_origin)
    visitor = _visitor(request)
    if request.content_type != "application/json" or visitor is None:
        return _cors(error(400, "bad_request", "Send JSON with an X-Minds-Visitor header."), cors_origin)
    try:
        data = json.loads(request.body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        return _cors(error(400, "malformed_request", "The body is not valid JSON."), cors_origin)
    if not isinstance(data, dict):
        return _cors(error(400, "malformed_request", "The body must be a JSON object."), cors_origin)
    message = str(data.get("message") or "").strip()
    if not message:
        return _cors(error(400, "validation_error", "Type a message first."), cors_origin)
    if len(message) > MAX_MESSAGE_CHARS:
        return _cors(
            error(400, "message_too_long", f"Messages are limited to {MAX_MESSAGE_CHARS} characters."),
            cors_origin,
        )
    conversation_id = data.get("conversationId") or None
    email = str(data.get("email") or "").strip()
    if mind.collect_email_before_chat:
        known = (
            conversation_id
            and Conversation.objects.filter(id=conversation_id, mind=mind, visitor_id=visitor)
            .exclude(visitor_email="")
            .exists()
        )
        if not known:
            try:
                validate_email(email)
            except ValidationError:
                return _cors(
                    error(400, "email_required", "Please enter a valid email address to start the chat."),
                    cors_origin,
                )
    verdict = public_message_allowed(mind=mind, visitor_id=visitor, ip=_client_ip(request))
    if not verdict.allowed:
        when = "a minute" if verdict.scope == "minute" else "tomorrow"
        return _cors(
            error(
                429,
                "rate_limited",
                f"You're sending messages too quickly. Try again in {when}.",
                {"Retry-After": str(verdict.retry_after)},
            ),
            cors_origin,
        )
    channel = Conversation.Channel.WIDGET if data.get("channel") == "widget" else Conversation.Channel.PUBLIC
    try:
        events = chat_stream(
            mind=mind,
            message=message,
            conversation_id=conversation_id,
            channel=channel,
            visitor_id=visitor,
            visitor_email=email if mind.collect_email_before_chat else "",
        )
    except NotFound:
        return _cors(
            error(404, "not_found", "This conversation no longer exists; start a new one."), cors_origin
        )
    return _cors(stream_response(events, "sse"), cors_origin)


@require_http_methods(["GET", "OPTIONS"])
def public_conversation(request, slug: str, conversation_id: str):
    """The visitor's own conversation, to restore it after a reload; another visitor's is not found."""
    mind = _mind(slug)
    cors_origin, allowed = _cross_origin(request, mind)
    if not allowed:
        return error(403, "origin_not_allowed", "This site may not use this mind's chat.")
    if request.method == "OPTIONS":
        return _cors(HttpResponse(status=204), cors_origin)
    visitor = _visitor(request)
    conversation = (
        Conversation.objects.filter(id=conversation_id, mind=mind, visitor_id=visitor).first()
        if visitor
        else None
    )
    if conversation is None:
        return _cors(error(404, "not_found", "Conversation not found."), cors_origin)
    messages = [
        {
            "role": m.role,
            "content": m.content,
            "citations": m.citations if mind.show_sources else [],
            "followups": m.followups,
        }
        for m in conversation.messages.order_by("created_at", "id")
        if m.content
    ]
    return _cors(
        JsonResponse({"status": "success", "conversationId": conversation.id, "messages": messages}),
        cors_origin,
    )


@require_GET
def widget_script(request, slug: str):
    mind = published_mind_by_slug(slug=slug)
    if mind is None:
        raise Http404("No published mind here.")
    config = {
        "name": mind.name,
        "pageUrl": f"{_own_origin(request)}/m/{mind.slug}",
        "allowedOrigins": [o.lower() for o in (mind.allowed_origins or [])],
    }
    # JSON inside JavaScript: "<" escaped so no "</script>" can ever appear, even if the file is inlined.
    data = (
        json.dumps(config).replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    )
    body = render(request, "public/widget.js", {"config": data}).content
    response = HttpResponse(body, content_type="application/javascript; charset=utf-8")
    response["Cache-Control"] = "public, max-age=300"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@csrf_exempt
@require_http_methods(["POST"])
def speech(request, slug: str):
    """Reads an answer aloud through the configured OpenAI-compatible speech endpoint (when there is one)."""
    mind = _mind(slug)
    _, allowed = _cross_origin(request, mind)
    if not allowed or not voice_available(mind) or _visitor(request) is None:
        return error(404, "not_found", "Voice is not available for this mind.")
    try:
        text = str(json.loads(request.body or b"{}").get("text") or "").strip()[:4000]
    except (json.JSONDecodeError, AttributeError):
        text = ""
    if not text:
        return error(400, "validation_error", "Nothing to read.")
    verdict = public_message_allowed(mind=mind, visitor_id=_visitor(request), ip=_client_ip(request))
    if not verdict.allowed:
        return error(
            429,
            "rate_limited",
            "Too many requests; try again shortly.",
            {"Retry-After": str(verdict.retry_after)},
        )
    from conversations import llm

    try:
        audio = llm.client(30).audio.speech.create(
            model=settings.TTS_MODEL, voice=mind.voice_id, input=text, speed=mind.voice_speed
        )
        content = audio.read()
    except Exception:  # any provider failure: the page shows a readable message
        return error(502, "voice_unavailable", "The voice service is unavailable right now.")
    return HttpResponse(content, content_type="audio/mpeg")
