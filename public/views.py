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

from django.http import HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from config.api.errors import NotFound
from config.api.exception_handler import error_json_response
from config.api.parsers import BodyNotAccepted, json_loads_checked
from config.ratelimit import client_address
from conversations.chat import chat_stream
from conversations.models import Conversation, Message
from conversations.services import message_feedback
from integrations import llm
from minds.models import Mind
from minds.selectors import published_mind_by_slug
from public.access import own_origin, published_mind_view
from public.limits import Verdict, public_message_allowed
from public.presentation import page_context, voice_available
from public.rendering import answer_response, conversation_restore_data
from public.serializers import NOT_FOUND, PublicChatInputSerializer, PublicFeedbackInputSerializer
from public.visitor import Visitor, forged, issue_cookie, visitor_of

MAX_SPEECH_CHARS = 4000


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


def _checked_visitor(request) -> Visitor | JsonResponse:
    """The visitor making this request, or the refusal to send when there is none or the request is forged."""
    visitor = visitor_of(request)
    if visitor is None:
        message = "Send the request from the mind's page (X-Minds-Visitor header missing)."
        return error_json_response(400, "bad_request", message)
    if request.method == "POST" and forged(request, visitor):
        return error_json_response(403, "csrf_failed", "This page has expired. Reload it and try again.")
    return visitor


def _chat_input(request, mind: Mind, visitor: Visitor) -> dict | JsonResponse:
    """The checked chat input, or the refusal to send."""
    if request.content_type != "application/json":
        return error_json_response(400, "bad_request", "Send the message as JSON.")
    try:
        data = json_loads_checked(request.body or b"{}")
    except BodyNotAccepted as exc:
        return error_json_response(400, "malformed_request", str(exc))
    if not isinstance(data, dict):
        return error_json_response(400, "malformed_request", "The body must be a JSON object.")
    serializer = PublicChatInputSerializer(data=data, context={"mind": mind, "visitor_id": visitor.id})
    if not serializer.is_valid():
        return error_json_response(*serializer.refusal())
    return serializer.validated_data


def _rate_verdict(mind: Mind, visitor: Visitor, request) -> Verdict:
    return public_message_allowed(mind=mind, visitor_id=visitor.id, ip=client_address(request))


def _rate_limited(verdict: Verdict) -> JsonResponse:
    when = "in a minute" if verdict.scope == "minute" else "tomorrow"
    return error_json_response(
        429,
        "rate_limited",
        f"You're sending messages too quickly. Try again {when}.",
        headers=verdict.headers(),
    )


def _with_headers(response, headers: dict[str, str]):
    for name, value in headers.items():
        response[name] = value
    return response


@csrf_exempt  # checked in _checked_visitor: a CSRF token where the visitor cookie is used (see visitor.py)
@require_http_methods(["POST", "OPTIONS"])
@published_mind_view
def public_chat(request, mind: Mind):
    visitor = _checked_visitor(request)
    if isinstance(visitor, JsonResponse):
        return visitor
    chat_input = _chat_input(request, mind, visitor)
    if isinstance(chat_input, JsonResponse):
        return chat_input
    verdict = _rate_verdict(mind, visitor, request)
    if not verdict.allowed:
        return _rate_limited(verdict)
    try:
        events = chat_stream(
            mind=mind,
            message=chat_input["message"],
            conversation_id=chat_input["conversationId"],
            channel=chat_input["channel"],
            visitor_id=visitor.id,
            visitor_email=chat_input["email"] if mind.collect_email_before_chat else "",
        )
    except NotFound:
        return _with_headers(error_json_response(404, "not_found", NOT_FOUND), verdict.headers())
    return _with_headers(answer_response(events, mind), verdict.headers())


@require_http_methods(["GET", "OPTIONS"])
@published_mind_view
def public_conversation(request, mind: Mind, conversation_id: str):
    """The visitor's own conversation, to restore it after a reload; another visitor's is not found."""
    visitor = visitor_of(request)  # without one (no cookie, no header) nobody's conversation is found
    conversation = (
        Conversation.objects.filter(id=conversation_id, mind=mind, visitor_id=visitor.id).first()
        if visitor
        else None
    )
    if conversation is None:
        return error_json_response(404, "not_found", "Conversation not found.")
    return JsonResponse(conversation_restore_data(conversation, mind))


@csrf_exempt  # checked in _checked_visitor, as for the chat
@require_http_methods(["POST", "OPTIONS"])
@published_mind_view
def public_feedback(request, mind: Mind):
    """Thumbs up or down on an answer, `{"messageId", "rating": "up"|"down"}`: only on an answer of one of this
    visitor's own conversations with this mind (any other is not found). Rating again replaces the rating."""
    visitor = _checked_visitor(request)
    if isinstance(visitor, JsonResponse):
        return visitor
    if request.content_type != "application/json":
        return error_json_response(400, "bad_request", "Send the rating as JSON.")
    try:
        data = json_loads_checked(request.body or b"{}")
    except BodyNotAccepted as exc:
        return error_json_response(400, "malformed_request", str(exc))
    if not isinstance(data, dict):
        return error_json_response(400, "malformed_request", "The body must be a JSON object.")
    serializer = PublicFeedbackInputSerializer(data=data)
    if not serializer.is_valid():
        return error_json_response(400, "validation_error", serializer.first_problem())
    message = Message.objects.filter(
        id=serializer.validated_data["messageId"],
        role=Message.Role.ASSISTANT,
        conversation__mind=mind,
        conversation__visitor_id=visitor.id,
    ).first()
    if message is None:
        return error_json_response(404, "not_found", "This answer is not in your conversations.")
    message = message_feedback(message=message, rating=serializer.validated_data["rating"])
    return JsonResponse({"status": "success", "messageId": message.id, "rating": message.feedback_rating})


@require_GET
def widget_script(request, slug: str):
    mind = published_mind_by_slug(slug=slug)
    if mind is None:
        return HttpResponse(
            "/* No published mind here. */", status=404, content_type="application/javascript; charset=utf-8"
        )
    config = {
        "name": mind.name,
        "pageUrl": f"{own_origin(request)}/m/{mind.slug}",
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
@published_mind_view
def speech(request, mind: Mind):
    """Reads an answer aloud through the configured OpenAI-compatible speech endpoint (when there is one)."""
    if not voice_available(mind):
        return error_json_response(404, "not_found", "Voice is not available for this mind.")
    visitor = _checked_visitor(request)
    if isinstance(visitor, JsonResponse):
        return visitor
    try:
        data = json_loads_checked(request.body or b"{}")
    except BodyNotAccepted:
        data = None
    text = data.get("text") if isinstance(data, dict) else None
    if not isinstance(text, str) or not text.strip():
        return error_json_response(400, "validation_error", "Nothing to read.")
    verdict = _rate_verdict(mind, visitor, request)
    if not verdict.allowed:
        return _rate_limited(verdict)
    try:
        content = llm.speak(text.strip()[:MAX_SPEECH_CHARS], voice=mind.voice_id, speed=mind.voice_speed)
    except llm.LlmUnavailable:
        response = error_json_response(
            502, "voice_unavailable", "The voice service is unavailable right now."
        )
        return _with_headers(response, verdict.headers())
    return _with_headers(HttpResponse(content, content_type="audio/mpeg"), verdict.headers())
