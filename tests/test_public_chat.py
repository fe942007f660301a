"""The public chat endpoint: streaming, visitor identity (signed cookie or widget id), forgery and origin checks,
input checks, the email gate, per-visitor and per-IP limits, and a model failure shown as a clean 502."""

from datetime import UTC, datetime

import pytest
from django.test import Client

from conversations.models import Conversation, Message
from minds.models import Mind
from public.visitor import COOKIE
from tests.fakellm import FakeLLM
from tests.test_public_page import VISITOR, events_of, make_mind, post_chat

pytestmark = pytest.mark.django_db


@pytest.fixture
def mind(workspace):
    return make_mind(workspace)


def test_public_chat_streams_an_answer_with_sources(client, mind):
    response = post_chat(client, "keeper", {"message": "Who invented the Fresnel lens?"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/event-stream")
    events = events_of(response)
    done = events[-1][1]
    assert events[-1][0] == "done" and done["message"]["citations"][0]["sourceName"] == "Lighthouses"
    conversation = Conversation.objects.get(id=done["conversationId"])
    assert conversation.channel == "public" and conversation.visitor_id == VISITOR
    widget = events_of(post_chat(client, "keeper", {"message": "Fresnel?", "channel": "widget"}))
    assert Conversation.objects.get(id=widget[-1][1]["conversationId"]).channel == "widget"


def test_sources_a_mind_does_not_show_never_leave_the_server(client, mind):
    shown = events_of(post_chat(client, "keeper", {"message": "Who invented the Fresnel lens?"}))
    assert "citation" in [kind for kind, _ in shown]  # the same question cites a source when they are shown
    Mind.objects.filter(id=mind.id).update(show_sources=False)
    events = events_of(post_chat(client, "keeper", {"message": "Who invented the Fresnel lens?"}))
    assert [kind for kind, _ in events if kind != "token"] == ["conversation", "done"]
    done = events[-1][1]
    assert done["message"]["citations"] == [] and "Fresnel" in done["message"]["content"]
    assert "sourceName" not in str(events) and "chunkId" not in str(events)
    # The answer keeps its sources for the owner; a reload of the page does not get them either.
    assert Message.objects.get(id=done["message"]["id"]).citations
    path = f"/m/keeper/conversation/{done['conversationId']}"
    restored = client.get(path, HTTP_X_MINDS_VISITOR=VISITOR).json()["messages"]
    assert [m["citations"] for m in restored] == [[], []]


def test_restore_only_the_visitors_own_conversation(client, mind):
    done = events_of(post_chat(client, "keeper", {"message": "Who invented the Fresnel lens?"}))[-1][1]
    path = f"/m/keeper/conversation/{done['conversationId']}"
    restored = client.get(path, HTTP_X_MINDS_VISITOR=VISITOR).json()
    assert [m["role"] for m in restored["messages"]] == ["user", "assistant"]
    assert restored["messages"][1]["citations"]
    assert client.get(path, HTTP_X_MINDS_VISITOR="someone-else-0123456789").status_code == 404
    assert client.get(path).status_code == 404
    # Continuing someone else's conversation is refused too.
    stranger = post_chat(
        client,
        "keeper",
        {"message": "hi", "conversationId": done["conversationId"]},
        visitor="someone-else-0123456789",
    )
    assert stranger.status_code == 404


def test_bad_requests_are_refused_cleanly(client, mind):
    assert post_chat(client, "keeper", {"message": ""}).json()["code"] == "validation_error"
    too_long = post_chat(client, "keeper", {"message": "x" * 2001})
    assert too_long.status_code == 400 and too_long.json()["code"] == "message_too_long"
    assert post_chat(client, "keeper", {"message": "hi"}, visitor=None).status_code == 400
    form = client.post("/m/keeper/chat", {"message": "hi"}, HTTP_X_MINDS_VISITOR=VISITOR)
    assert form.status_code == 400  # a cross-site form post cannot be JSON with the custom header
    assert client.get("/m/keeper/chat").status_code == 405


def test_origins_cors_and_forgery(client, mind):
    denied = post_chat(client, "keeper", {"message": "hi"}, origin="https://evil.example")
    assert denied.status_code == 403 and denied.json()["code"] == "origin_not_allowed"
    assert post_chat(client, "keeper", {"message": "hi"}, sec_fetch_site="cross-site").status_code == 403
    preflight = client.options("/m/keeper/chat", HTTP_ORIGIN="https://partner.example")
    assert (
        preflight.status_code == 204 and preflight["Access-Control-Allow-Origin"] == "https://partner.example"
    )
    assert client.options("/m/keeper/chat", HTTP_ORIGIN="https://evil.example").status_code == 403
    allowed = post_chat(client, "keeper", {"message": "Fresnel lens?"}, origin="https://partner.example")
    assert allowed.status_code == 200 and allowed["Access-Control-Allow-Origin"] == "https://partner.example"
    same = post_chat(client, "keeper", {"message": "Fresnel lens?"}, origin="http://testserver")
    assert same.status_code == 200 and "Access-Control-Allow-Origin" not in same


def test_email_gate(client, mind):
    Mind.objects.filter(id=mind.id).update(collect_email_before_chat=True)
    assert post_chat(client, "keeper", {"message": "hi"}).json()["code"] == "email_required"
    assert (
        post_chat(client, "keeper", {"message": "hi", "email": "not-an-email"}).json()["code"]
        == "email_required"
    )
    done = events_of(post_chat(client, "keeper", {"message": "Fresnel lens?", "email": "ada@example.com"}))[
        -1
    ][1]
    conversation = Conversation.objects.get(id=done["conversationId"])
    assert conversation.visitor_email == "ada@example.com"
    follow_up = post_chat(client, "keeper", {"message": "more?", "conversationId": conversation.id})
    assert follow_up.status_code == 200


def test_per_visitor_limits_per_minute(client, mind):
    Mind.objects.filter(id=mind.id).update(public_messages_per_minute=2)
    statuses = []
    for _ in range(3):
        response = post_chat(client, "keeper", {"message": "Fresnel lens?"}, visitor="limited-visitor-000000")
        statuses.append(response.status_code)
    # (A minute boundary between the requests would reset the window; two fast requests then still pass.)
    assert statuses[:2] == [200, 200] and statuses[2] in (429, 200)
    if statuses[2] == 429:
        limited = post_chat(client, "keeper", {"message": "again"}, visitor="limited-visitor-000000")
        assert limited.json()["code"] == "rate_limited" and int(limited["Retry-After"]) >= 1
    # Another visitor on the same IP still has a budget.
    assert (
        post_chat(
            client, "keeper", {"message": "Fresnel lens?"}, visitor="other-visitor-00000000"
        ).status_code
        == 200
    )


def page_visit(client) -> dict:
    """Loads the page like a browser: the visitor cookie and CSRF cookie are set; returns the page's config."""
    response = client.get("/m/keeper")
    assert response.status_code == 200
    return response.context["config"]


def test_the_page_issues_a_signed_httponly_visitor_cookie(client, mind):
    response = client.get("/m/keeper")
    cookie = response.cookies[COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/m/"
    assert cookie["max-age"] >= 30 * 86_400
    assert cookie.value not in response.content.decode()  # scripts never see it
    # A visitor who has one keeps it.
    assert COOKIE not in client.get("/m/keeper").cookies


def test_cookie_visitor_owns_conversations_the_header_cannot_claim(client, mind):
    page_visit(client)
    done = events_of(post_chat(client, "keeper", {"message": "Who invented the Fresnel lens?"}))[-1][1]
    conversation = Conversation.objects.get(id=done["conversationId"])
    assert conversation.visitor_id.startswith("c.")  # the cookie decides, not the header the page also sends
    path = f"/m/keeper/conversation/{conversation.id}"
    assert client.get(path).json()["conversationId"] == conversation.id  # cookie alone is enough
    stranger = Client()
    token = conversation.visitor_id[2:]
    assert stranger.get(path, HTTP_X_MINDS_VISITOR=token).status_code == 404
    assert stranger.get(path, HTTP_X_MINDS_VISITOR=conversation.visitor_id).status_code == 404
    stranger.cookies[COOKIE] = token  # an unsigned copy of the value is no cookie at all
    assert stranger.get(path).status_code == 404
    refused = post_chat(stranger, "keeper", {"message": "hi"}, visitor=None)
    assert refused.status_code == 400 and refused.json()["code"] == "bad_request"


def test_cookie_requests_need_the_csrf_token_and_widget_ids_do_not(mind):
    browser = Client(enforce_csrf_checks=True)
    config = page_visit(browser)
    forged = post_chat(browser, "keeper", {"message": "Fresnel lens?"})
    assert forged.status_code == 403 and forged.json()["code"] == "csrf_failed"
    wrong = post_chat(browser, "keeper", {"message": "Fresnel lens?"}, x_csrftoken="x" * 64)
    assert wrong.status_code == 403 and wrong.json()["code"] == "csrf_failed"
    genuine = post_chat(browser, "keeper", {"message": "Fresnel lens?"}, x_csrftoken=config["csrfToken"])
    assert genuine.status_code == 200 and genuine.events[-1][0] == "done"
    # Inside the widget's iframe on another site the browser sends no cookies: the page's own id is enough.
    widget = Client(enforce_csrf_checks=True)
    assert post_chat(widget, "keeper", {"message": "Fresnel lens?", "channel": "widget"}).status_code == 200
    assert Conversation.objects.filter(channel="widget", visitor_id=VISITOR).count() == 1


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"message": ["a"]}, "validation_error"),
        ({"message": {"text": "hi"}}, "validation_error"),
        ({"message": 5}, "validation_error"),
        ({"message": "hi\x00there"}, "malformed_request"),
        ({"message": "hi", "conversationId": {"id": 1}}, "validation_error"),
        ({"message": "hi", "email": ["a@b.example"]}, "validation_error"),
        ({"message": "   "}, "validation_error"),
        ({"message": "hi", "conversationId": "conv_" + "x" * 200}, "not_found"),
        ({"message": "hi", "channel": "sms"}, "validation_error"),
        ({"message": "hi", "email": "a" * 250 + "@b.example"}, "validation_error"),
    ],
)
def test_malformed_fields_are_refused_and_nothing_is_written(client, mind, body, code):
    response = post_chat(client, "keeper", body)
    assert response.status_code == (404 if code == "not_found" else 400)
    assert response.json()["code"] == code and response.json()["message"]
    assert not Conversation.objects.exists()


def test_unknown_mind_or_malformed_json_are_clean_json_errors(client, mind):
    gone = post_chat(client, "nobody", {"message": "hi"})
    assert gone.status_code == 404 and gone.json()["code"] == "not_found"
    broken = client.post(
        "/m/keeper/chat", "{nope", content_type="application/json", HTTP_X_MINDS_VISITOR=VISITOR
    )
    assert broken.status_code == 400 and broken.json()["code"] == "malformed_request"
    listed = client.post(
        "/m/keeper/chat", "[]", content_type="application/json", HTTP_X_MINDS_VISITOR=VISITOR
    )
    assert listed.status_code == 400 and listed.json()["code"] == "malformed_request"


def test_per_day_limit_with_retry_after(client, mind):
    Mind.objects.filter(id=mind.id).update(public_messages_per_day=2, public_messages_per_minute=50)
    for _ in range(2):
        assert post_chat(
            client, "keeper", {"message": "Fresnel lens?"}, visitor="daily-visitor-00000000"
        ).events
    limited = post_chat(client, "keeper", {"message": "again"}, visitor="daily-visitor-00000000")
    assert limited.status_code == 429 and limited.json()["code"] == "rate_limited"
    assert "tomorrow" in limited.json()["message"] and 1 <= int(limited["Retry-After"]) <= 86_400


def test_throwing_away_the_visitor_id_still_hits_the_ip_limit(client, mind):
    # Per day, so no minute boundary can reset the window mid-test; the IP budget is 5x a visitor's.
    Mind.objects.filter(id=mind.id).update(public_messages_per_day=1, public_messages_per_minute=50)
    statuses = [
        post_chat(
            client, "keeper", {"message": "Fresnel lens?"}, visitor=f"fresh-visitor-{n:010d}"
        ).status_code
        for n in range(6)
    ]
    assert statuses == [200] * 5 + [429]
    assert Conversation.objects.count() == 5


def test_cross_origin_429_exposes_retry_after(client, mind):
    Mind.objects.filter(id=mind.id).update(public_messages_per_day=0)
    limited = post_chat(client, "keeper", {"message": "hi"}, origin="https://partner.example")
    assert limited.status_code == 429 and limited["Access-Control-Allow-Origin"] == "https://partner.example"
    exposed = limited["Access-Control-Expose-Headers"]
    assert "Retry-After" in exposed and "X-RateLimit-Remaining" in exposed and "X-RateLimit-Reset" in exposed


def _reset_in_window(response, window_seconds: int) -> None:
    reset = datetime.fromisoformat(response["X-RateLimit-Reset"].replace("Z", "+00:00"))
    assert 0 < (reset - datetime.now(UTC)).total_seconds() <= window_seconds + 1


def test_public_chat_carries_rate_limit_headers_on_200_and_429(client, mind):
    # Per day, so no minute boundary resets the count mid-test; the day budget is then the tightest one.
    Mind.objects.filter(id=mind.id).update(public_messages_per_day=2, public_messages_per_minute=50)
    first = post_chat(client, "keeper", {"message": "Fresnel lens?"}, visitor="headers-visitor-000000")
    assert first.status_code == 200 and first.events
    assert (first["X-RateLimit-Limit"], first["X-RateLimit-Remaining"]) == ("2", "1")
    _reset_in_window(first, 86_400)
    assert "Retry-After" not in first
    second = post_chat(client, "keeper", {"message": "Fresnel lens?"}, visitor="headers-visitor-000000")
    assert (second.status_code, second["X-RateLimit-Remaining"]) == (200, "0")
    limited = post_chat(client, "keeper", {"message": "again"}, visitor="headers-visitor-000000")
    assert limited.status_code == 429 and limited.json()["code"] == "rate_limited"
    assert (limited["X-RateLimit-Limit"], limited["X-RateLimit-Remaining"]) == ("2", "0")
    _reset_in_window(limited, 86_400)
    assert 1 <= int(limited["Retry-After"]) <= 86_400


def test_public_chat_headers_report_the_tightest_budget(client, mind):
    # A visitor's minute budget (3) is tighter than the day's (200) and the IP's (15 and 1000).
    Mind.objects.filter(id=mind.id).update(public_messages_per_minute=3, public_messages_per_day=200)
    answered = post_chat(client, "keeper", {"message": "Fresnel lens?"}, visitor="tight-visitor-0000000")
    assert answered.status_code == 200 and answered["X-RateLimit-Limit"] == "3"
    assert answered["X-RateLimit-Remaining"] == "2"
    _reset_in_window(answered, 60)


def test_model_failure_is_a_readable_502_that_keeps_the_question(client, mind, settings):
    with FakeLLM(fail_with=500) as fake:
        settings.OPENAI_BASE_URL = fake.base_url
        failed = post_chat(client, "keeper", {"message": "Who invented the Fresnel lens?"})
    assert failed.status_code == 502 and failed.json()["code"] == "llm_unavailable"
    assert "unavailable" in failed.json()["message"].lower()
    conversation = Conversation.objects.get(id=failed.json()["details"]["conversationId"])
    assert [m.content for m in conversation.messages.filter(role="user")] == [
        "Who invented the Fresnel lens?"
    ]
    # Once the model is back, the same conversation continues.
    with FakeLLM("Augustin Fresnel [1].") as fake:
        settings.OPENAI_BASE_URL = fake.base_url
        retry = post_chat(
            client, "keeper", {"message": "Who invented it?", "conversationId": conversation.id}
        )
    assert retry.events[-1][0] == "done" and retry.events[-1][1]["conversationId"] == conversation.id
