"""Chat: extractive answers offline, a fake OpenAI-compatible LLM at the HTTP boundary, citations that always
point at retrieved passages, streaming parsed event by event, errors, history, conversations and chat logs."""

import json

import pytest

from conversations.chat import chat_stream
from conversations.models import Conversation, Message
from minds.models import Mind
from tests.corpus_minds import ready_source
from tests.fakellm import FakeLLM
from tests.helpers import KeyedClient, assert_error, make_key
from tests.test_search import LIGHTHOUSES, VOLCANOES

pytestmark = pytest.mark.django_db


@pytest.fixture
def mind(workspace):
    mind = Mind.objects.create(
        workspace=workspace,
        name="Atlas",
        slug="atlas-chat",
        suggested_questions=["What is a Fresnel lens?", "How tall is Etna?"],
    )
    ready_source(mind, "Lighthouses", LIGHTHOUSES)
    ready_source(mind, "Volcanoes", VOLCANOES)
    return mind


def chat(api, mind, **body):
    return api.post(f"/api/v1/minds/{mind.id}/chat", body)


def sse_events(response) -> list[tuple[str, dict]]:
    raw = b"".join(response.streaming_content).decode()
    events = []
    for block in raw.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_extractive_answer_cites_the_right_source(api, mind):
    response = chat(api, mind, message="Who invented the Fresnel lens used in lighthouses?")
    assert response.status_code == 200, response.json()
    body = response.json()
    message = body["message"]
    assert "Fresnel" in message["content"] and "[1]" in message["content"]
    first = message["citations"][0]
    assert first["index"] == 1 and first["sourceName"] == "Lighthouses"
    assert first["chunkId"].startswith("chk_") and "Fresnel" in first["snippet"]
    assert set(first) >= {
        "index",
        "sourceId",
        "sourceName",
        "chunkId",
        "snippet",
        "url",
        "page",
        "startSeconds",
    }
    assert body["conversationId"].startswith("conv_") and body["followups"] == mind.suggested_questions
    saved = Message.objects.get(id=message["id"])
    assert (
        saved.citations == message["citations"]
        and saved.model == "extractive"
        and saved.latency_ms is not None
    )


def test_nothing_relevant_says_so_and_cites_nothing(api, mind):
    message = chat(api, mind, message="What is the best banana bread recipe?").json()["message"]
    assert message["citations"] == [] and "couldn't find" in message["content"]


def test_llm_answer_keeps_valid_citations_and_drops_invented_ones(api, mind, settings):
    answer = "Augustin-Jean Fresnel invented it in 1822 [1]. Etna is tall [2][9]. Also see [7] and [1, 8]."
    with FakeLLM(answer) as fake:
        settings.OPENAI_BASE_URL = fake.base_url
        settings.OPENAI_API_KEY = "test"
        body = chat(
            api, mind, message="Who invented the Fresnel lens, and how tall is the volcano Etna?"
        ).json()
        prompt = next(r for r in fake.requests if r.get("stream"))
    content = body["message"]["content"]
    assert "[9]" not in content and "[7]" not in content and "[8]" not in content
    assert content == "Augustin-Jean Fresnel invented it in 1822 [1]. Etna is tall [2]. Also see and [1]."
    assert [c["index"] for c in body["message"]["citations"]] == [1, 2]
    assert body["followups"] == ["What else?", "Tell me more"]
    assert body["usage"]["promptTokens"] == 42
    # The prompt carried the persona's rules and numbered passages.
    system, user = prompt["messages"][0]["content"], prompt["messages"][-1]["content"]
    assert "[1]" in user and "Fresnel" in user and "cite" in system.lower()
    assert prompt["temperature"] == mind.temperature


def test_sse_stream_event_by_event(api, mind, settings):
    with FakeLLM("Fresnel made the lens [1]. Invented [5].") as fake:
        settings.OPENAI_BASE_URL = fake.base_url
        response = chat(api, mind, message="Who made the lighthouse lens?", stream=True)
        assert response["Content-Type"].startswith("text/event-stream")
        assert response["X-Accel-Buffering"] == "no" and response["Cache-Control"] == "no-cache"
        events = sse_events(response)
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "conversation" and kinds[-1] == "done" and kinds.count("citation") == 1
    assert kinds.count("token") > 3  # streamed in pieces, not one block
    streamed = "".join(data["content"] for kind, data in events if kind == "token")
    done = events[-1][1]
    assert streamed.strip() == done["message"]["content"] == "Fresnel made the lens [1]. Invented."
    citation = next(data for kind, data in events if kind == "citation")
    assert citation["index"] == 1 and citation["sourceName"] == "Lighthouses"
    assert kinds.index("citation") < kinds.index("done")


def test_jsonl_stream(api, mind):
    response = chat(api, mind, message="How tall is Mount Etna?", format="jsonl")
    assert response["Content-Type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]
    assert lines[0]["event"] == "conversation" and lines[-1]["event"] == "done"
    assert lines[-1]["message"]["citations"][0]["sourceName"] == "Volcanoes"


def test_llm_failure_is_a_clean_502_and_keeps_the_question(api, mind, settings):
    with FakeLLM(fail_with=500) as fake:
        settings.OPENAI_BASE_URL = fake.base_url
        body = assert_error(chat(api, mind, message="Who invented the lens?"), 502, "llm_unavailable")
        conversation = Conversation.objects.get(id=body["details"]["conversationId"])
        streamed = sse_events(
            chat(api, mind, message="And the keepers?", stream=True, conversationId=conversation.id)
        )
    assert [m.role for m in conversation.messages.all()] == ["user", "user"]
    assert streamed[-1][0] == "error" and streamed[-1][1]["code"] == "llm_unavailable"


def test_llm_timeout_is_llm_unavailable(api, mind, settings):
    import threading

    release = threading.Event()
    with FakeLLM("late") as fake:
        fake.site.route("/v1/chat/completions", handler=lambda r: (release.wait(5), (200, {}, b"{}"))[1])
        settings.OPENAI_BASE_URL = fake.base_url
        settings.LLM_TIMEOUT_SECONDS = 0.5
        assert_error(chat(api, mind, message="Who invented the lens?"), 502, "llm_unavailable")
        release.set()


def test_history_and_follow_up_rewriting(api, mind, settings):
    with FakeLLM("It was Fresnel [1].") as fake:
        settings.OPENAI_BASE_URL = fake.base_url
        first = chat(api, mind, message="Tell me about lighthouse lenses").json()
        second = chat(api, mind, message="Who invented it?", conversationId=first["conversationId"]).json()
        rewrite = next(
            r
            for r in fake.requests
            if "rewrite the last user question" in r["messages"][-1]["content"].lower()
        )
        answer_call = [r for r in fake.requests if r.get("stream")][-1]
    assert second["conversationId"] == first["conversationId"]
    assert "Tell me about lighthouse lenses" in rewrite["messages"][-1]["content"]
    roles = [m["role"] for m in answer_call["messages"]]
    assert roles == ["system", "user", "assistant", "user"]
    conversation = api.get(f"/api/v1/conversations/{first['conversationId']}").json()["conversation"]
    assert [m["role"] for m in conversation["messages"]] == ["user", "assistant", "user", "assistant"]
    assert conversation["messages"][1]["citations"][0]["sourceName"] == "Lighthouses"


def test_disconnect_mid_stream_leaves_a_consistent_conversation(mind):
    events = chat_stream(mind=mind, message="Who invented the Fresnel lens used in lighthouses?")
    first = next(events)
    next(events)  # one token, then the client goes away
    events.close()
    conversation = Conversation.objects.get(id=first.conversation_id)
    messages = list(conversation.messages.order_by("created_at"))
    assert [m.role for m in messages] == ["user", "assistant"]
    assert messages[1].status == "interrupted" and messages[1].content


def test_chat_validation_scopes_and_isolation(api, mind, workspace, other_api):
    assert_error(chat(api, mind, message=""), 400, "validation_error")
    assert_error(chat(api, mind, message="x" * 4001), 400, "validation_error")
    assert_error(chat(api, mind, message="hi", format="xml"), 400, "validation_error")
    assert_error(chat(api, mind, message="hi", conversationId="conv_nope"), 404, "not_found")
    assert_error(chat(other_api, mind, message="hi"), 404, "not_found")
    other_mind = Mind.objects.create(workspace=workspace, name="Other", slug="other-chat")
    conversation_id = chat(api, mind, message="Fresnel lens?").json()["conversationId"]
    # A conversation belongs to its mind: it cannot be continued through another one.
    assert_error(chat(api, other_mind, message="hi", conversationId=conversation_id), 404, "not_found")
    assert_error(other_api.get(f"/api/v1/conversations/{conversation_id}"), 404, "not_found")
    reader = KeyedClient(make_key(workspace, scopes=["minds:read"]))
    assert_error(chat(reader, mind, message="hi"), 403, "insufficient_scope")
    restricted = KeyedClient(make_key(workspace, scopes="all", allowed_mind_ids=[other_mind.id]))
    assert_error(chat(restricted, mind, message="hi"), 404, "not_found")


def test_conversation_list_cursor_feedback_delete_and_counts(api, mind):
    ids = [
        chat(api, mind, message=f"Question {i} about the Fresnel lens").json()["conversationId"]
        for i in range(3)
    ]
    page = api.get(f"/api/v1/minds/{mind.id}/conversations", {"limit": 2}).json()
    assert [c["id"] for c in page["conversations"]] == ids[::-1][:2] and page["hasMore"]
    rest = api.get(
        f"/api/v1/minds/{mind.id}/conversations", {"limit": 2, "startAfter": page["nextStartAfter"]}
    ).json()
    assert [c["id"] for c in rest["conversations"]] == [ids[0]] and not rest["hasMore"]
    detail = api.get(f"/api/v1/minds/{mind.id}").json()["mind"]
    assert detail["conversationCount"] == 3 and detail["recentConversationCount"] == 3
    conversation = api.get(f"/api/v1/conversations/{ids[0]}").json()["conversation"]
    answer = conversation["messages"][1]
    feedback = api.post(
        f"/api/v1/conversations/{ids[0]}/messages/{answer['id']}/feedback",
        {"rating": "down", "comment": "too short"},
    )
    assert feedback.status_code == 200 and feedback.json()["message"]["feedback"] == {
        "rating": "down",
        "comment": "too short",
    }
    assert_error(
        api.post(f"/api/v1/conversations/{ids[0]}/messages/{answer['id']}/feedback", {"rating": "meh"}),
        400,
        "validation_error",
    )
    assert api.delete(f"/api/v1/conversations/{ids[0]}").json() == {
        "status": "success",
        "deleted": True,
        "id": ids[0],
    }
    assert_error(api.get(f"/api/v1/conversations/{ids[0]}"), 404, "not_found")


def test_chatlogs_in_typingmind_shape(api, mind, other_api):
    chat(api, mind, message="Who invented the Fresnel lens?")
    logs = api.get("/api/v1/chatlogs").json()["data"]
    assert len(logs) == 1
    log = logs[0]
    assert set(log) >= {
        "chatID",
        "chatTitle",
        "createdAt",
        "recordedAt",
        "conversationText",
        "model",
        "agents",
    }
    assert log["conversationText"].startswith("User: Who invented the Fresnel lens?\n\nAssistant: ")
    assert log["agents"] == ["Atlas"] and log["model"] == "extractive"
    assert api.get("/api/v1/chatlogs", {"startUnixTime": 4102444800}).json()["data"] == []
    assert other_api.get("/api/v1/chatlogs").json()["data"] == []
    assert_error(api.get("/api/v1/chatlogs", {"limit": 0}), 400, "validation_error")
