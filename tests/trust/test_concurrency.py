"""Trust: concurrent requests against a live server, on real threads and separate HTTP connections — duplicate
sources, duplicate uploads, chats into one conversation (each question kept with its own answer, listed turn by
turn), publish races and key revocation end consistent."""

from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import httpx
import pytest

from accounts.models import AuditLog
from apikeys.services import api_key_create, parse_scopes
from conversations.models import Conversation, Message
from knowledge import tasks
from knowledge.models import Source, UploadedFile
from minds.models import Mind
from tests.corpus_minds import ready_source
from tests.fakellm import FakeLLM
from tests.test_search import LIGHTHOUSES

pytestmark = pytest.mark.django_db(transaction=True)

ROLES = ("user", "assistant")


@pytest.fixture(autouse=True)
def nothing_queued(monkeypatch):
    """Created sources stay pending: a session worker must not process (or fail) them under the assertions."""
    queued: list[str] = []
    monkeypatch.setattr(tasks.source_process, "delay", queued.append)
    return queued


@pytest.fixture
def key(workspace):
    return api_key_create(workspace=workspace, name="conc", scopes=parse_scopes("all"))


@pytest.fixture
def mind(workspace):
    return Mind.objects.create(workspace=workspace, name="Atlas", slug="atlas-conc")


def at_once(n: int, call):
    """Runs `call(i)` on n threads, each with its own connection, released together by a barrier."""
    barrier = Barrier(n)

    def run(i):
        barrier.wait(timeout=30)
        return call(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(run, range(n)))


def client(live_server, plaintext: str) -> httpx.Client:
    return httpx.Client(
        base_url=live_server.url, headers={"Authorization": f"Bearer {plaintext}"}, timeout=60
    )


def post(live_server, plaintext: str, path: str, **kwargs) -> httpx.Response:
    with client(live_server, plaintext) as http:
        return http.post(path, **kwargs)


def test_the_same_text_source_ten_times_at_once_is_stored_once(live_server, key, mind):
    body = {"type": "text", "name": "Notes", "content": "The same words, sent ten times at once."}
    responses = at_once(
        10, lambda i: post(live_server, key.plaintext, f"/api/v1/minds/{mind.id}/knowledge", json=body)
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [400] * 9, [(r.status_code, r.text) for r in responses]
    assert all(r.json()["code"] == "duplicate_source" for r in responses if r.status_code == 400)
    assert Source.objects.filter(mind=mind).count() == 1


def test_the_same_url_source_ten_times_at_once_is_stored_once(live_server, key, mind):
    body = {"type": "url", "url": "https://example.com/the-same-page"}
    responses = at_once(
        10, lambda i: post(live_server, key.plaintext, f"/api/v1/minds/{mind.id}/knowledge", json=body)
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [400] * 9, [(r.status_code, r.text) for r in responses]
    assert all(r.json()["code"] == "duplicate_source" for r in responses if r.status_code == 400)
    assert Source.objects.filter(mind=mind).count() == 1


def test_ten_identical_uploads_at_once_store_one_upload(live_server, key, mind):
    content = b"The same file, uploaded ten times at once.\n" * 20
    responses = at_once(
        10,
        lambda i: post(
            live_server,
            key.plaintext,
            f"/api/v1/minds/{mind.id}/knowledge/upload",
            files={"file": ("notes.txt", content, "text/plain")},
        ),
    )
    assert all(r.status_code in (200, 201) for r in responses), [(r.status_code, r.text) for r in responses]
    assert sorted(r.status_code for r in responses) == [200] * 9 + [201]
    assert len({r.json()["fileId"] for r in responses}) == 1
    assert UploadedFile.objects.count() == 1


def echo_question(body: dict) -> str:
    """The fake LLM's answer names the question it was asked (the prompt ends with "Question: …")."""
    return "Answer to " + body["messages"][-1]["content"].rsplit("\n\nQuestion: ", 1)[1]


def test_twenty_chats_into_one_conversation_keep_every_question_with_its_answer(
    live_server, key, workspace, settings
):
    mind = Mind.objects.create(workspace=workspace, name="Lighthouse", slug="lighthouse-conc")
    ready_source(mind, "Lighthouses", LIGHTHOUSES)
    conversation = Conversation.objects.create(workspace=workspace, mind=mind, title="Twenty at once")
    questions = [f"Question {i}: who invented the lighthouse lens?" for i in range(20)]
    with FakeLLM(echo_question) as fake:
        settings.OPENAI_BASE_URL, settings.OPENAI_API_KEY = fake.base_url, "test"
        responses = at_once(
            20,
            lambda i: post(
                live_server,
                key.plaintext,
                f"/api/v1/minds/{mind.id}/chat",
                json={"message": questions[i], "conversationId": conversation.id},
            ),
        )
        answer_calls = [r for r in fake.requests if r.get("stream")]
    assert all(r.status_code == 200 for r in responses), [(r.status_code, r.text) for r in responses]
    # Each caller gets the answer to its own question.
    assert [r.json()["message"]["content"] for r in responses] == [f"Answer to {q}" for q in questions]
    assert sorted(r.json()["message"]["turn"] for r in responses) == list(range(1, 21))

    # Twenty turns, each one question and its own answer, whatever order they were answered in.
    messages = list(Message.objects.filter(conversation=conversation))
    assert len(messages) == 40
    turns: dict[int, dict[str, Message]] = {}
    for message in messages:
        assert message.role not in turns.setdefault(message.turn, {}), message.turn
        turns[message.turn][message.role] = message
    assert sorted(turns) == list(range(1, 21))
    for turn in turns.values():
        question, answer = turn["user"], turn["assistant"]
        assert answer.reply_to_id == question.id and answer.status == "complete"
        assert answer.content == f"Answer to {question.content}"
        assert responses[questions.index(question.content)].json()["message"]["turn"] == answer.turn
    assert sorted(t["user"].content for t in turns.values()) == sorted(questions)
    conversation.refresh_from_db()
    assert conversation.turn_count == 20

    # Every surface lists them turn by turn: q1, a1, q2, a2, …
    with client(live_server, key.plaintext) as http:
        listed = http.get(f"/api/v1/conversations/{conversation.id}").json()["conversation"]["messages"]
        [log] = [c for c in http.get("/api/v1/chatlogs").json()["data"] if c["chatID"] == conversation.id]
    assert [(m["turn"], m["role"]) for m in listed] == [(n, role) for n in range(1, 21) for role in ROLES]
    assert [m["content"] for m in listed] == [
        text for n in range(1, 21) for text in (turns[n]["user"].content, turns[n]["assistant"].content)
    ]
    assert log["conversationText"] == "\n\n".join(
        f"User: {m['content']}" if m["role"] == "user" else f"Assistant: {m['content']}" for m in listed
    )

    # The history each turn was given holds only turns already answered, each question with its own answer.
    assert len(answer_calls) == 20
    for call in answer_calls:
        history = call["messages"][1:-1]
        assert [m["role"] for m in history] == list(ROLES) * (len(history) // 2)
        for asked, answered in zip(history[::2], history[1::2], strict=True):
            assert asked["content"] in questions and answered["content"] == f"Answer to {asked['content']}"


def test_publish_races_end_consistent_with_the_page_and_the_audit_log(live_server, key, mind):
    path = f"/api/v1/minds/{mind.id}/publish"
    responses = at_once(
        10, lambda i: post(live_server, key.plaintext, path, json={"isPublished": i % 2 == 0})
    )
    assert all(r.status_code == 200 for r in responses), [(r.status_code, r.text) for r in responses]

    mind.refresh_from_db()
    with client(live_server, key.plaintext) as http:
        shown = http.get(f"/api/v1/minds/{mind.id}").json()["mind"]
        page = http.get(f"/m/{mind.slug}")
    assert shown["isPublished"] is mind.is_published
    if mind.is_published:
        assert mind.published_at is not None
        assert page.status_code == 200
    else:
        assert page.status_code == 404
    # One entry per effective change: calls that found the mind already in the asked state write nothing, so the
    # entries alternate, starting from the unpublished mind, and the last one is the state it ended in.
    actions = list(
        AuditLog.objects.filter(entity="mind", entity_id=mind.id, action__in=["publish", "unpublish"])
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions, "the first publish call that ran found the mind unpublished"
    assert actions == ["publish", "unpublish"] * (len(actions) // 2) + ["publish"] * (len(actions) % 2), (
        actions
    )
    assert actions[-1] == ("publish" if mind.is_published else "unpublish")
    # Each caller is told the state it asked for, whether its call changed it or found it so.
    assert [r.json()["mind"]["isPublished"] for r in responses] == [i % 2 == 0 for i in range(10)]


def test_a_revoked_key_fails_on_the_very_next_request_from_another_connection(live_server, workspace):
    admin = api_key_create(workspace=workspace, name="admin", scopes=parse_scopes("all"))
    victim = api_key_create(workspace=workspace, name="victim", scopes=parse_scopes("all"))
    with client(live_server, victim.plaintext) as victim_http:
        # A warm, kept-alive connection that has already authenticated with the key.
        assert victim_http.get("/api/v1/auth/verify").status_code == 200
        with client(live_server, admin.plaintext) as admin_http:
            revoked = admin_http.delete(f"/api/v1/api-keys/{victim.api_key.id}")
        assert revoked.status_code in (200, 204), revoked.text
        after = victim_http.get("/api/v1/auth/verify")
    assert after.status_code == 401, after.text
    # And from a fresh connection on another thread.
    [fresh] = at_once(
        1,
        lambda i: httpx.get(
            f"{live_server.url}/api/v1/auth/verify", headers={"Authorization": f"Bearer {victim.plaintext}"}
        ),
    )
    assert fresh.status_code == 401
