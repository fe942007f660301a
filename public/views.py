"""The public mind page, its chat endpoint and the embeddable widget. No API key: visitors are anonymous.

Who the visitor is (a signed cookie on the mind's site, a localStorage id inside the widget) is in visitor.py.
Request forgery: the chat endpoint accepts only JSON, and an `Origin` that is neither this site nor one of the
mind's `allowedOrigins` is refused outright (CORS preflights are answered for those origins alone). Requests
identified by the visitor cookie must also carry Django's CSRF token; requests identified by the `X-Minds-Visitor`
header need no token, since no other site knows that id (and a cross-site form can't send a custom header).
"""

import json
import re
import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.http import HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from config.api.errors import NotFound
from config.api.parsers import BodyNotAccepted, json_loads_checked
from conversations.chat import chat_stream
from conversations.models import Conversation
from integrations import llm
from minds.models import Mind
from minds.selectors import published_mind_by_slug
from public.limits import public_message_allowed
from public.presentation import page_context, voice_available
from public.rendering import answer_response, conversation_restore_data
from public.visitor import Visitor, forged, issue_cookie, visitor_of

MAX_MESSAGE_CHARS = 2000
MAX_ID_CHARS = 64


def error(
    status: int, code: str, message: str, headers: dict | None = None, details: dict | None = None
) -> JsonResponse:
    response = JsonResponse(
        {"status": "error", "code": code, "message": message, "details": details or {}}, status=status
    )
    for name, value in (headers or {}).items():
        response[name] = value
    return response


NO_MIND = (404, "not_found", "There is no published mind at this address.")


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
        response["Access-Control-Expose-Headers"] = "Retry-After"
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
    # The CSRF token goes with requests identified by the visitor cookie (where browsers send cookies at all).
    context["config"]["csrfToken"] = get_token(request)
    response = render(request, "public/mind.html", context)
    issue_cookie(request, response)
    origins = " ".join(o for o in (mind.allowed_origins or []) if re.match(r"^https?://[A-Za-z0-9.:-]+$", o))
    ancestors = (origins or "'none'") if embed else "'none'"
    response["Cache-Control"] = "no-cache"
    return _security_headers(response, frame_ancestors=ancestors, nonce=nonce)


def _text(data: dict, name: str, limit: int) -> str | None:
    """A string field of the body, stripped; None when it is not a string (NULs never get this far)."""
    value = data.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        return None
    return value.strip()[: limit + 1]


def _origin_refused() -> JsonResponse:
    return error(403, "origin_not_allowed", "This site may not use this mind's chat.")


def _checked_visitor(request, cors_origin: str | None) -> Visitor | JsonResponse:
    """The visitor making this request, or the refusal to send when there is none or the request is forged."""
    visitor = visitor_of(request)
    if visitor is None:
        message = "Send the request from the mind's page (X-Minds-Visitor header missing)."
        return _cors(error(400, "bad_request", message), cors_origin)
    if request.method == "POST" and forged(request, visitor):
        message = "This page has expired. Reload it and try again."
        return _cors(error(403, "csrf_failed", message), cors_origin)
    return visitor


def _rate_limited(verdict) -> JsonResponse:
    when = "in a minute" if verdict.scope == "minute" else "tomorrow"
    return error(
        429,
        "rate_limited",
        f"You're sending messages too quickly. Try again {when}.",
        {"Retry-After": str(verdict.retry_after)},
    )


def _email_needed(mind: Mind, visitor: Visitor, conversation_id: str | None, email: str) -> bool:
    """With collectEmailBeforeChat, a new conversation needs a valid email; a continued one already has it."""
    if not mind.collect_email_before_chat:
        return False
    if conversation_id and (
        Conversation.objects.filter(id=conversation_id, mind=mind, visitor_id=visitor.id)
        .exclude(visitor_email="")
        .exists()
    ):
        return False
    try:
        validate_email(email)
    except ValidationError:
        return True
    return False


@csrf_exempt  # checked in _checked_visitor: a CSRF token where the visitor cookie is used (see visitor.py)
@require_http_methods(["POST", "OPTIONS"])
def public_chat(request, slug: str):
    mind = published_mind_by_slug(slug=slug)
    if mind is None:
        return error(*NO_MIND)
    cors_origin, allowed = _cross_origin(request, mind)
    if not allowed:
        return _origin_refused()
    if request.method == "OPTIONS":
        return _cors(HttpResponse(status=204), cors_origin)
    visitor = _checked_visitor(request, cors_origin)
    if isinstance(visitor, JsonResponse):
        return visitor

    def refuse(status: int, code: str, message: str):
        return _cors(error(status, code, message), cors_origin)

    if request.content_type != "application/json":
        return refuse(400, "bad_request", "Send the message as JSON.")
    try:
        data = json_loads_checked(request.body or b"{}")
    except BodyNotAccepted as exc:
        return refuse(400, "malformed_request", str(exc))
    if not isinstance(data, dict):
        return refuse(400, "malformed_request", "The body must be a JSON object.")
    message = _text(data, "message", MAX_MESSAGE_CHARS)
    conversation_id = _text(data, "conversationId", MAX_ID_CHARS)
    email = _text(data, "email", 254)
    if message is None or conversation_id is None or email is None:
        return refuse(400, "validation_error", "message, conversationId and email must be text.")
    if not message:
        return refuse(400, "validation_error", "Type a message first.")
    if len(message) > MAX_MESSAGE_CHARS:
        return refuse(400, "message_too_long", f"Messages are limited to {MAX_MESSAGE_CHARS} characters.")
    if len(conversation_id) > MAX_ID_CHARS:
        return refuse(404, "not_found", "This conversation no longer exists; start a new one.")
    if _email_needed(mind, visitor, conversation_id or None, email):
        return refuse(400, "email_required", "Please enter a valid email address to start the chat.")
    verdict = public_message_allowed(mind=mind, visitor_id=visitor.id, ip=_client_ip(request))
    if not verdict.allowed:
        return _cors(_rate_limited(verdict), cors_origin)
    channel = Conversation.Channel.WIDGET if data.get("channel") == "widget" else Conversation.Channel.PUBLIC
    try:
        events = chat_stream(
            mind=mind,
            message=message,
            conversation_id=conversation_id or None,
            channel=channel,
            visitor_id=visitor.id,
            visitor_email=email if mind.collect_email_before_chat else "",
        )
    except NotFound:
        return refuse(404, "not_found", "This conversation no longer exists; start a new one.")
    return _cors(answer_response(events, mind), cors_origin)


@require_http_methods(["GET", "OPTIONS"])
def public_conversation(request, slug: str, conversation_id: str):
    """The visitor's own conversation, to restore it after a reload; another visitor's is not found."""
    mind = published_mind_by_slug(slug=slug)
    if mind is None:
        return error(*NO_MIND)
    cors_origin, allowed = _cross_origin(request, mind)
    if not allowed:
        return _origin_refused()
    if request.method == "OPTIONS":
        return _cors(HttpResponse(status=204), cors_origin)
    visitor = visitor_of(request)  # without one (no cookie, no header) nobody's conversation is found
    conversation = (
        Conversation.objects.filter(id=conversation_id, mind=mind, visitor_id=visitor.id).first()
        if visitor
        else None
    )
    if conversation is None:
        return _cors(error(404, "not_found", "Conversation not found."), cors_origin)
    return _cors(JsonResponse(conversation_restore_data(conversation, mind)), cors_origin)


@require_GET
def widget_script(request, slug: str):
    mind = published_mind_by_slug(slug=slug)
    if mind is None:
        return HttpResponse(
            "/* No published mind here. */", status=404, content_type="application/javascript; charset=utf-8"
        )
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


@csrf_exempt  # checked in _checked_visitor, as for the chat
@require_http_methods(["POST"])
def speech(request, slug: str):
    """Reads an answer aloud through the configured OpenAI-compatible speech endpoint (when there is one)."""
    mind = published_mind_by_slug(slug=slug)
    if mind is None or not voice_available(mind):
        return error(404, "not_found", "Voice is not available for this mind.")
    if not _cross_origin(request, mind)[1]:
        return _origin_refused()
    visitor = _checked_visitor(request, None)
    if isinstance(visitor, JsonResponse):
        return visitor
    try:
        data = json_loads_checked(request.body or b"{}")
    except BodyNotAccepted:
        data = None
    text = _text(data, "text", 4000) if isinstance(data, dict) else None
    if not text:
        return error(400, "validation_error", "Nothing to read.")
    verdict = public_message_allowed(mind=mind, visitor_id=visitor.id, ip=_client_ip(request))
    if not verdict.allowed:
        return _rate_limited(verdict)
    try:
        content = llm.speak(text[:4000], voice=mind.voice_id, speed=mind.voice_speed)
    except llm.LlmUnavailable:
        return error(502, "voice_unavailable", "The voice service is unavailable right now.")
    return HttpResponse(content, content_type="audio/mpeg")
