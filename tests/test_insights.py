"""Owner insights: real numbers on seeded conversations, the not-found questions grouped by the real embedding
model, the visitors' CSV, validation, tenancy and scopes."""

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from conversations.models import Conversation, Message
from insights.clustering import Question, group_questions
from insights.exports import safe_cell
from knowledge.models import Source
from minds.models import Mind
from tests.helpers import KeyedClient, assert_error, make_key

pytestmark = pytest.mark.django_db

FROM, TO = "2026-03-01", "2026-03-05"
DAY1 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
DAY2 = datetime(2026, 3, 4, 23, 59, tzinfo=UTC)  # the last minute of a UTC day is still that day
BEFORE = datetime(2026, 2, 20, 12, 0, tzinfo=UTC)


def conversation(mind: Mind, channel: str, at: datetime, email: str = "", last: datetime | None = None):
    row = Conversation.objects.create(
        workspace_id=mind.workspace_id, mind=mind, channel=channel, visitor_email=email
    )
    Conversation.objects.filter(id=row.id).update(created_at=at, updated_at=last or at)
    return row


def message(conv: Conversation, role: str, turn: int, at: datetime, **fields) -> Message:
    row = Message.objects.create(conversation=conv, role=role, turn=turn, **fields)
    Message.objects.filter(id=row.id).update(created_at=at)
    return row


def cite(source_id: str, name: str = "FAQ", kind: str = "text", index: int = 1) -> dict:
    return {"index": index, "sourceId": source_id, "sourceName": name, "sourceType": kind, "snippet": "…"}


def turn(conv, number: int, at: datetime, question: str, citations=(), **answer) -> Message:
    asked = message(conv, "user", number, at, content=question)
    return message(
        conv,
        "assistant",
        number,
        at + timedelta(seconds=2),
        content=answer.pop("content", "An answer."),
        reply_to=asked,
        citations=list(citations),
        **answer,
    )


def seed(mind: Mind) -> dict:
    """Four conversations in the range on two days, one before it, and another mind's activity."""
    faq = Source.objects.create(
        workspace_id=mind.workspace_id, mind=mind, type="text", name="FAQ", content="x"
    )
    pdf = Source.objects.create(
        workspace_id=mind.workspace_id, mind=mind, type="document", name="Handbook.pdf", content=""
    )
    a = conversation(mind, "api", DAY1)
    turn(a, 1, DAY1, "What is the warranty?", [cite(faq.id), cite(faq.id, index=2), cite(pdf.id, index=3)],
         feedback_rating="up")  # fmt: skip
    b = conversation(mind, "public", DAY1, email="Ann@Example.com", last=DAY1 + timedelta(minutes=5))
    turn(b, 1, DAY1, "How long is the warranty?", [cite(faq.id)], feedback_rating="down")
    turn(b, 2, DAY1 + timedelta(minutes=1), "Do you sell gift cards?", [])
    c = conversation(mind, "widget", DAY2, email="ann@example.com", last=DAY2 + timedelta(seconds=30))
    asked = message(c, "user", 1, DAY2, content="Can I pay with crypto?")
    message(c, "assistant", 1, DAY2, step=1, content="", reply_to=asked,
            tool_calls=[{"id": "call_1", "type": "function", "function": {"name": "pay", "arguments": "{}"}}])  # fmt: skip
    message(c, "tool", 1, DAY2, step=2, content='{"crypto": false}', tool_call_id="call_1", tool_name="pay")
    message(
        c, "assistant", 1, DAY2, step=3, content="No.", reply_to=asked, citations=[], feedback_rating="up"
    )
    d = conversation(mind, "api", DAY2)
    turn(d, 1, DAY2, "Why?", [], content="", status="error", error_code="llm_unavailable")
    # Outside the range: counted nowhere.
    old = conversation(mind, "public", BEFORE, email="old@example.com")
    turn(old, 1, BEFORE, "An old question?", [cite(pdf.id)], feedback_rating="down")
    # Another mind of the same workspace.
    other = Mind.objects.create(workspace_id=mind.workspace_id, name="Other", slug="other-insights")
    o = conversation(other, "api", DAY1, email="zed@example.com")
    turn(o, 1, DAY1, "Other mind?", [cite(faq.id)], feedback_rating="up")
    return {"faq": faq, "pdf": pdf, "other": other}


@pytest.fixture
def mind(workspace):
    return Mind.objects.create(workspace=workspace, name="Shop", slug="shop")


def insights(api, mind, **params):
    response = api.get(f"/api/v1/minds/{mind.id}/insights", params)
    assert response.status_code == 200, response.json()
    return response.json()["insights"]


def test_insights_count_conversations_messages_answers_feedback_and_sources(api, mind):
    seeded = seed(mind)
    data = insights(api, mind, **{"from": FROM, "to": TO})
    assert (data["mindId"], data["from"], data["to"]) == (mind.id, FROM, TO)
    days = {day["date"]: day for day in data["days"]}
    assert list(days) == ["2026-03-01", "2026-03-02", "2026-03-03", "2026-03-04", "2026-03-05"]
    # Days without activity are zeros, in total and for every channel.
    for empty in ("2026-03-01", "2026-03-03", "2026-03-05"):
        assert days[empty]["conversations"] == days[empty]["messages"] == 0
        assert all(c == {"conversations": 0, "messages": 0} for c in days[empty]["channels"].values())
    first = days["2026-03-02"]
    assert (first["conversations"], first["messages"]) == (2, 6)
    assert first["channels"]["api"] == {"conversations": 1, "messages": 2}
    assert first["channels"]["public"] == {"conversations": 1, "messages": 4}
    second = days["2026-03-04"]
    # The tool-calling step and the tool's result are not messages of the count: question and final answer only.
    assert (second["conversations"], second["messages"]) == (2, 4)
    assert second["channels"]["widget"] == {"conversations": 1, "messages": 2}
    assert second["channels"]["api"] == {"conversations": 1, "messages": 2}
    assert set(second["channels"]) == set(Conversation.Channel.values)
    assert data["totals"] == {"conversations": 4, "messages": 10, "questions": 5, "answers": 5, "visitors": 1}
    assert data["answers"] == {"total": 5, "answered": 2, "notFound": 2, "failed": 1}
    assert data["feedback"] == {"up": 2, "down": 1, "rated": 3, "rate": 0.6667}
    faq, pdf = seeded["faq"], seeded["pdf"]
    assert data["topSources"] == [
        {"sourceId": faq.id, "name": "FAQ", "type": "text", "answers": 2, "citations": 3, "deleted": False},
        {"sourceId": pdf.id, "name": "Handbook.pdf", "type": "document", "answers": 1, "citations": 1,
         "deleted": False},
    ]  # fmt: skip
    assert data["visitors"] == [
        {
            "email": "ann@example.com",
            "firstSeenAt": "2026-03-02T09:30:00Z",
            "lastSeenAt": "2026-03-04T23:59:30Z",
            "conversations": 2,
        }
    ]
    assert data["notFound"]["questions"] == 2 and data["notFound"]["grouped"] == 2
    asked = sorted(example for group in data["notFound"]["groups"] for example in group["examples"])
    assert asked == ["Can I pay with crypto?", "Do you sell gift cards?"]


def test_a_deleted_source_keeps_its_cited_name(api, mind):
    conv = conversation(mind, "api", DAY1)
    turn(conv, 1, DAY1, "Where?", [cite("src_gone", name="Old <b>FAQ</b>", kind="url")])
    [row] = insights(api, mind, **{"from": FROM, "to": TO})["topSources"]
    assert row == {"sourceId": "src_gone", "name": "Old <b>FAQ</b>", "type": "url", "answers": 1, "citations": 1,
                   "deleted": True}  # fmt: skip


def test_default_range_is_the_last_30_days_with_zeros(api, mind):
    today = datetime.now(UTC).date()
    now = datetime.now(UTC)
    conv = conversation(mind, "api", now)
    turn(conv, 1, now, "Today?", [])
    thirty_one_days_ago = now - timedelta(days=31)
    old = conversation(mind, "api", thirty_one_days_ago)
    turn(old, 1, thirty_one_days_ago, "Long ago?", [])
    data = insights(api, mind)
    assert data["to"] == today.isoformat()
    assert data["from"] == (today - timedelta(days=29)).isoformat()
    assert len(data["days"]) == 30
    assert data["days"][-1] == {
        **data["days"][-1],
        "date": today.isoformat(),
        "conversations": 1,
        "messages": 2,
    }
    assert sum(day["conversations"] for day in data["days"]) == 1
    assert data["answers"]["notFound"] == 1


@pytest.mark.parametrize(
    "params",
    [
        {"from": "2026-03-05", "to": "2026-03-01"},
        {"from": "2025-01-01", "to": "2026-01-02"},  # 367 days
        {"from": "2026-13-01"},
        {"to": "2026-03-01T00:00:00"},
        {"from": "yesterday"},
        {"from": "1999-12-31", "to": "2000-01-05"},
        {"to": "9999-12-31"},
    ],
)
def test_a_bad_range_is_400_validation_error(api, mind, params):
    body = assert_error(api.get(f"/api/v1/minds/{mind.id}/insights", params), 400, "validation_error")
    assert set(body["details"]["fields"]) <= {"from", "to"}
    assert_error(api.get(f"/api/v1/minds/{mind.id}/insights/visitors.csv", params), 400, "validation_error")


def test_a_range_of_366_days_is_accepted(api, mind):
    data = insights(api, mind, **{"from": "2024-01-01", "to": "2024-12-31"})  # a leap year: 366 days
    assert len(data["days"]) == 366 and data["totals"]["conversations"] == 0
    assert data["feedback"]["rate"] is None and data["notFound"]["groups"] == []


NOT_FOUND = [
    "What are your opening hours?",
    "When are you open?",
    "What time do you open on Sunday?",
    "when are   you OPEN?",  # the same question again, in other case and spacing
    "Do you ship to Canada?",
    "Can I get delivery to Canada?",
    "What is the price of the premium plan?",
]


def test_not_found_questions_are_grouped_by_meaning_with_the_real_model(api, mind):
    conv = conversation(mind, "public", DAY1)
    for number, question in enumerate(NOT_FOUND, start=1):
        turn(conv, number, DAY1 + timedelta(minutes=number), question, [])
    # Answered questions are not among them.
    turn(conv, 50, DAY1, "Do you deliver to Canada?", [cite("src_x")])
    found = insights(api, mind, **{"from": FROM, "to": TO})["notFound"]
    assert (found["questions"], found["grouped"], found["threshold"]) == (7, 7, 0.6)
    groups = found["groups"]
    assert found["groupCount"] == 3
    assert [g["count"] for g in groups] == [4, 2, 1]
    hours, shipping, price = groups
    assert {e.casefold() for e in hours["examples"]} == {
        "what are your opening hours?",
        "when are you open?",
        "what time do you open on sunday?",
    }
    assert hours["representative"] in hours["examples"]
    assert hours["lastAskedAt"] == "2026-03-02T09:34:00Z"  # its latest asking: the fourth question
    assert set(shipping["examples"]) == {"Do you ship to Canada?", "Can I get delivery to Canada?"}
    assert price["examples"] == ["What is the price of the premium plan?"]
    assert price["representative"] == "What is the price of the premium plan?"


def test_grouping_keeps_unrelated_questions_apart():
    at = datetime(2026, 3, 1, tzinfo=UTC)
    groups = group_questions(
        [
            Question("Who founded the company?", at),
            Question("What is the refund policy?", at),
            Question("Is the museum wheelchair accessible?", at),
            Question("Can I bring my dog?", at),
        ]
    )
    assert len(groups) == 4 and all(g.count == 1 for g in groups)


def test_grouping_is_capped_to_the_most_recent_questions(api, mind, monkeypatch):
    from insights import selectors

    monkeypatch.setattr(selectors, "MAX_GROUPED_QUESTIONS", 2)
    conv = conversation(mind, "api", DAY1)
    for number, question in enumerate(["Oldest question?", "Middle question?", "Newest question?"], start=1):
        turn(conv, number, DAY1 + timedelta(hours=number), question, [])
    found = insights(api, mind, **{"from": FROM, "to": TO})["notFound"]
    assert (found["questions"], found["grouped"]) == (3, 2)
    examples = {e for g in found["groups"] for e in g["examples"]}
    assert examples == {"Middle question?", "Newest question?"}


def read_csv(response) -> list[list[str]]:
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    return list(csv.reader(io.StringIO(response.content.decode("utf-8"))))


def test_visitors_csv_is_an_attachment_with_neutralised_formulas(api, mind):
    conversation(mind, "public", DAY1, email="=HYPERLINK(x)@evil.com")
    conversation(mind, "public", DAY1 + timedelta(hours=1), email="+1@example.com")
    conversation(mind, "widget", DAY1 + timedelta(hours=2), email="-sum@example.com")
    conversation(mind, "widget", DAY1 + timedelta(hours=3), email="@at.example.com")
    conversation(mind, "public", DAY2, email='"bob,jr"@example.com')
    conversation(mind, "public", DAY2 + timedelta(seconds=1), email="Bob@Example.com")
    conversation(mind, "public", DAY2 + timedelta(seconds=2), email="bob@example.com")
    conversation(mind, "public", BEFORE, email="early@example.com")
    conversation(mind, "api", DAY1)  # no email: not a visitor
    response = api.get(f"/api/v1/minds/{mind.id}/insights/visitors.csv")
    assert response["Content-Disposition"] == 'attachment; filename="shop-visitors-all.csv"'
    rows = read_csv(response)
    assert rows[0] == ["email", "first_seen_at", "last_seen_at", "conversations"]
    by_email = {row[0]: row for row in rows[1:]}
    assert list(by_email) == [
        "bob@example.com",
        '"bob,jr"@example.com',
        "'@at.example.com",
        "'-sum@example.com",
        "'+1@example.com",
        "'=hyperlink(x)@evil.com",
        "early@example.com",
    ]
    assert by_email["bob@example.com"] == [
        "bob@example.com", "2026-03-04T23:59:01Z", "2026-03-04T23:59:02Z", "2"
    ]  # fmt: skip
    ranged = api.get(f"/api/v1/minds/{mind.id}/insights/visitors.csv", {"from": FROM, "to": TO})
    assert ranged["Content-Disposition"] == 'attachment; filename="shop-visitors-2026-03-01_2026-03-05.csv"'
    assert "early@example.com" not in {row[0] for row in read_csv(ranged)}
    assert len(read_csv(ranged)) == 1 + 6


def test_safe_cell_neutralises_every_formula_start():
    for start in "=+-@\t\r":
        assert safe_cell(f"{start}1+1") == f"'{start}1+1"
    assert safe_cell("a=1") == "a=1" and safe_cell(3) == "3" and safe_cell(None) == ""


def test_another_workspace_gets_404(other_api, mind):
    seed(mind)
    for url in (f"/api/v1/minds/{mind.id}/insights", f"/api/v1/minds/{mind.id}/insights/visitors.csv"):
        assert_error(other_api.get(url), 404, "not_found")


def test_a_key_restricted_to_another_mind_gets_404(workspace, mind):
    other = Mind.objects.create(workspace=workspace, name="Elsewhere", slug="elsewhere")
    restricted = KeyedClient(make_key(workspace, scopes=["conversations:read"], allowed_mind_ids=[other.id]))
    assert_error(restricted.get(f"/api/v1/minds/{mind.id}/insights"), 404, "not_found")
    assert_error(restricted.get(f"/api/v1/minds/{mind.id}/insights/visitors.csv"), 404, "not_found")
    assert restricted.get(f"/api/v1/minds/{other.id}/insights").status_code == 200


def test_a_key_without_conversations_read_gets_403_and_no_key_401(workspace, mind):
    scopes = ["minds:read", "minds:write", "minds:chat", "knowledge:search", "users:manage", "keys:manage"]
    weak = KeyedClient(make_key(workspace, scopes=scopes))
    for url in (f"/api/v1/minds/{mind.id}/insights", f"/api/v1/minds/{mind.id}/insights/visitors.csv"):
        assert_error(weak.get(url), 403, "insufficient_scope")
        assert_error(KeyedClient(None).get(url), 401, "missing_api_key")
    reader = KeyedClient(make_key(workspace, scopes=["conversations:read"]))
    assert reader.get(f"/api/v1/minds/{mind.id}/insights").status_code == 200


def test_the_responses_match_the_openapi_document(api, mind, client):
    seed(mind)
    document = json.loads(client.get("/api/v1/openapi.json").content)
    operation = document["paths"]["/api/v1/minds/{mind_id}/insights"]["get"]
    assert {p["name"] for p in operation["parameters"] if p["in"] == "query"} == {"from", "to"}
    response = api.get(f"/api/v1/minds/{mind.id}/insights", {"from": FROM, "to": TO})
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    registry = Registry().with_resource(
        "urn:doc",
        Resource.from_contents({**document, "$schema": "https://json-schema.org/draft/2020-12/schema"}),
    )
    validator = Draft202012Validator({"$ref": "urn:doc#" + schema["$ref"][1:]}, registry=registry)
    problems = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(response.json())]
    assert not problems, problems[:5]
    csv_operation = document["paths"]["/api/v1/minds/{mind_id}/insights/visitors.csv"]["get"]
    assert list(csv_operation["responses"]["200"]["content"]) == ["text/csv"]
    assert "application/json" in csv_operation["responses"]["404"]["content"]
    assert date.fromisoformat(response.json()["insights"]["days"][0]["date"]) == date(2026, 3, 1)
