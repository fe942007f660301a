"""Conversations, feedback and chat logs: the edges the chat tests do not walk — cursors, scopes, keys restricted
to some minds, other workspaces, interrupted answers and the chat log filters."""

import importlib
from datetime import timedelta

import pytest
from django.apps import apps
from django.utils import timezone

from conversations.chat import Token, TurnResult, chat_complete, chat_stream
from conversations.models import Conversation, Message
from minds.models import Mind
from tests.corpus_minds import ready_source
from tests.fakellm import FakeLLM
from tests.helpers import KeyedClient, assert_error, make_key
from tests.test_search import LIGHTHOUSES
from tests.trust.test_concurrency import echo_question

pytestmark = pytest.mark.django_db


@pytest.fixture
def mind(workspace):
    mind = Mind.objects.create(workspace=workspace, name="Atlas", slug="atlas-conv")
    ready_source(mind, "Lighthouses", LIGHTHOUSES)
    return mind


@pytest.fixture
def second_mind(workspace):
    return Mind.objects.create(workspace=workspace, name="Other", slug="other-conv")


def ask(mind, message="Who invented the Fresnel lens?", **kwargs) -> TurnResult:
    return chat_complete(mind=mind, message=message, **kwargs)


def test_conversation_detail_has_ordered_messages_with_citations(api, mind):
    first = ask(mind)
    ask(mind, "How far can its light be seen?", conversation_id=first.conversation_id)
    conversation = api.get(f"/api/v1/conversations/{first.conversation_id}").json()["conversation"]
    assert conversation["mindId"] == mind.id and conversation["channel"] == "api"
    assert conversation["title"] == "Who invented the Fresnel lens?" and conversation["messageCount"] == 4
    roles = [m["role"] for m in conversation["messages"]]
    assert roles == ["user", "assistant", "user", "assistant"]
    answer = conversation["messages"][1]
    assert answer["id"] == first.message_id and answer["status"] == "complete"
    citation = answer["citations"][0]
    assert citation["sourceName"] == "Lighthouses" and citation["chunkId"] and citation["index"] >= 1
    assert f"[{citation['index']}]" in answer["content"]
    assert answer["feedback"] is None and answer["usage"]["completionTokens"] > 0


def test_interrupted_answer_is_listed_with_its_status(api, mind):
    events = chat_stream(mind=mind, message="Who invented the Fresnel lens?")
    conversation_id = next(events).conversation_id
    assert isinstance(next(events), Token)
    events.close()  # the client went away
    messages = api.get(f"/api/v1/conversations/{conversation_id}").json()["conversation"]["messages"]
    assert [(m["role"], m["status"]) for m in messages] == [
        ("user", "complete"),
        ("assistant", "interrupted"),
    ]
    assert messages[1]["content"]  # what was streamed before the disconnect is kept


def test_turns_answered_out_of_order_list_by_turn_and_each_history_pairs_question_and_answer(
    api, mind, settings
):
    with FakeLLM(echo_question) as fake:
        settings.OPENAI_BASE_URL = fake.base_url
        slow = chat_stream(mind=mind, message="Who invented the Fresnel lens?")
        conversation_id = next(slow).conversation_id  # turn 1 asked, its answer not begun
        ask(mind, "How far can its light be seen?", conversation_id=conversation_id)  # turn 2, answered first
        assert [type(e).__name__ for e in slow][-1] == "TurnDone"
        ask(mind, "Is it still used?", conversation_id=conversation_id)
        second, first, third = [r["messages"][1:-1] for r in fake.requests if r.get("stream")]
    messages = api.get(f"/api/v1/conversations/{conversation_id}").json()["conversation"]["messages"]
    assert [(m["turn"], m["role"], m["content"]) for m in messages] == [
        (1, "user", "Who invented the Fresnel lens?"),
        (1, "assistant", "Answer to Who invented the Fresnel lens?"),
        (2, "user", "How far can its light be seen?"),
        (2, "assistant", "Answer to How far can its light be seen?"),
        (3, "user", "Is it still used?"),
        (3, "assistant", "Answer to Is it still used?"),
    ]
    # Turn 2 was asked while turn 1 had no answer: its history leaves turn 1 out rather than show it unanswered.
    assert first == [] and second == []
    assert third == [{"role": m["role"], "content": m["content"]} for m in messages[:4]]


def test_a_failed_turn_is_left_out_of_the_next_turns_history(mind, settings):
    with FakeLLM(fail_with=500) as fake:
        settings.OPENAI_BASE_URL = fake.base_url
        failed = list(chat_stream(mind=mind, message="Who invented the Fresnel lens?"))
    conversation_id = failed[0].conversation_id
    with FakeLLM(echo_question) as fake:
        settings.OPENAI_BASE_URL = fake.base_url
        ask(mind, "Who invented the Fresnel lens?", conversation_id=conversation_id)
        ask(mind, "How far can its light be seen?", conversation_id=conversation_id)
        history = [r["messages"][1:-1] for r in fake.requests if r.get("stream")]
    assert history[0] == []
    assert history[1] == [
        {"role": "user", "content": "Who invented the Fresnel lens?"},
        {"role": "assistant", "content": "Answer to Who invented the Fresnel lens?"},
    ]
    turns = Message.objects.filter(conversation_id=conversation_id).values_list("turn", "role")
    assert list(turns) == [(1, "user"), (2, "user"), (2, "assistant"), (3, "user"), (3, "assistant")]


def test_backfill_numbers_the_questions_in_order_and_gives_each_answer_the_question_before_it(mind):
    backfill_turns = importlib.import_module("conversations.migrations.0003_message_turn").backfill_turns
    now = timezone.now()

    def conversation_of(*rows: tuple[str, str], turn_count: int = 0) -> Conversation:
        conversation = Conversation.objects.create(
            workspace_id=mind.workspace_id, mind=mind, turn_count=turn_count
        )
        for n, (role, content) in enumerate(rows):
            # Turns as the rows stood before the migration: none right (every one is recomputed).
            message = Message.objects.create(
                conversation=conversation, role=role, content=content, turn=100 + n
            )
            Message.objects.filter(id=message.id).update(created_at=now + timedelta(seconds=n))
        return conversation

    # Concurrent turns stored before turns existed: q2's and q3's answers came back in the other order.
    interleaved = conversation_of(
        ("user", "q1"),
        ("assistant", "a1"),
        ("user", "q2"),
        ("user", "q3"),
        ("assistant", "a3"),
        ("assistant", "a2"),
    )
    orphan = conversation_of(("assistant", "a0"), ("user", "q1"))
    empty = conversation_of(turn_count=5)

    def rows(conversation):
        messages = Message.objects.filter(conversation=conversation).order_by("created_at")
        return list(messages.values_list("content", "turn", "reply_to__content"))

    for _ in range(2):  # running it again changes nothing
        backfill_turns(apps, None)
        assert rows(interleaved) == [
            ("q1", 1, None),
            ("a1", 1, "q1"),
            ("q2", 2, None),
            ("q3", 3, None),
            ("a3", 3, "q3"),
            ("a2", 3, "q3"),
        ]
        assert rows(orphan) == [("a0", 0, None), ("q1", 1, None)]
        counts = dict(Conversation.objects.values_list("id", "turn_count"))
        assert (counts[interleaved.id], counts[orphan.id], counts[empty.id]) == (3, 1, 0)


def test_conversation_list_validation(api, mind, second_mind):
    ask(mind)
    url = f"/api/v1/minds/{mind.id}/conversations"
    assert_error(api.get(url, {"limit": 0}), 400, "validation_error")
    assert_error(api.get(url, {"limit": 101}), 400, "validation_error")
    assert_error(api.get(url, {"startAfter": "conv_unknown"}), 404, "not_found")
    # A cursor from another mind's list is not a cursor of this one.
    other = ask(second_mind, "Anything?").conversation_id
    assert_error(api.get(url, {"startAfter": other}), 404, "not_found")
    assert api.get(f"/api/v1/minds/{second_mind.id}/conversations").json()["conversations"][0]["id"] == other
    assert_error(api.get("/api/v1/minds/mind_unknown/conversations"), 404, "not_found")


def test_feedback_rules(api, other_api, workspace, mind):
    result = ask(mind)
    conversation_id, answer_id = result.conversation_id, result.message_id
    question_id = Message.objects.get(conversation_id=conversation_id, role="user").id
    url = f"/api/v1/conversations/{conversation_id}/messages/{answer_id}/feedback"

    assert api.post(url, {"rating": "up"}).json()["message"]["feedback"] == {"rating": "up", "comment": ""}
    changed = api.post(url, {"rating": "down", "comment": "wrong year"}).json()["message"]["feedback"]
    assert changed == {"rating": "down", "comment": "wrong year"}

    assert_error(
        api.post(
            f"/api/v1/conversations/{conversation_id}/messages/{question_id}/feedback", {"rating": "up"}
        ),
        400,
        "validation_error",
    )
    assert_error(
        api.post(f"/api/v1/conversations/{conversation_id}/messages/msg_unknown/feedback", {"rating": "up"}),
        404,
        "not_found",
    )
    # A message id of another conversation under this conversation's path is not found.
    elsewhere = ask(mind, "Lighthouse lenses?").message_id
    assert_error(
        api.post(f"/api/v1/conversations/{conversation_id}/messages/{elsewhere}/feedback", {"rating": "up"}),
        404,
        "not_found",
    )
    assert_error(api.post(url, {"rating": "up", "stars": 5}), 400, "validation_error")
    assert_error(api.post(url, {"rating": "up", "comment": "x" * 2001}), 400, "validation_error")
    assert_error(api.post(url, {}), 400, "validation_error")
    assert_error(other_api.post(url, {"rating": "up"}), 404, "not_found")
    reader = KeyedClient(make_key(workspace, scopes=["conversations:read"]))
    assert_error(reader.post(url, {"rating": "up"}), 403, "insufficient_scope")
    # Nothing above changed the stored feedback.
    answer = Message.objects.get(id=answer_id)
    assert (answer.feedback_rating, answer.feedback_comment) == ("down", "wrong year")


def test_delete_needs_write_scope_and_the_right_workspace(api, other_api, workspace, mind):
    conversation_id = ask(mind).conversation_id
    reader = KeyedClient(make_key(workspace, scopes=["conversations:read"]))
    assert reader.get(f"/api/v1/conversations/{conversation_id}").status_code == 200
    assert_error(reader.delete(f"/api/v1/conversations/{conversation_id}"), 403, "insufficient_scope")
    assert_error(other_api.delete(f"/api/v1/conversations/{conversation_id}"), 404, "not_found")
    assert Message.objects.filter(conversation_id=conversation_id).count() == 2
    chat_only = KeyedClient(make_key(workspace, scopes=["minds:chat"]))
    assert_error(chat_only.get(f"/api/v1/conversations/{conversation_id}"), 403, "insufficient_scope")
    assert_error(chat_only.get("/api/v1/chatlogs"), 403, "insufficient_scope")
    assert api.delete(f"/api/v1/conversations/{conversation_id}").json()["deleted"] is True
    assert not Message.objects.filter(conversation_id=conversation_id).exists()
    assert_error(api.delete(f"/api/v1/conversations/{conversation_id}"), 404, "not_found")


def test_key_restricted_to_one_mind_sees_only_its_conversations(workspace, mind, second_mind):
    mine = ask(mind).conversation_id
    theirs = ask(second_mind, "Anything?").conversation_id
    restricted = KeyedClient(make_key(workspace, scopes="all", allowed_mind_ids=[mind.id]))
    assert restricted.get(f"/api/v1/conversations/{mine}").status_code == 200
    assert_error(restricted.get(f"/api/v1/conversations/{theirs}"), 404, "not_found")
    assert_error(restricted.delete(f"/api/v1/conversations/{theirs}"), 404, "not_found")
    assert_error(restricted.get(f"/api/v1/minds/{second_mind.id}/conversations"), 404, "not_found")
    assert [log["chatID"] for log in restricted.get("/api/v1/chatlogs").json()["data"]] == [mine]
    assert Conversation.objects.filter(id=theirs).exists()


def test_chatlogs_paging_time_window_and_user_filter(api, workspace, mind):
    api_chats = [ask(mind, f"Question {i} about lighthouses").conversation_id for i in range(2)]
    # Through the API the conversation belongs to the key's member.
    api_chats.append(
        api.post(f"/api/v1/minds/{mind.id}/chat", {"message": "Keeper?"}).json()["conversationId"]
    )
    member_id = Conversation.objects.get(id=api_chats[2]).member_id
    public = ask(mind, "A visitor asks", channel="public", visitor_id="visitor-123").conversation_id

    logs = api.get("/api/v1/chatlogs").json()["data"]
    assert [log["chatID"] for log in logs] == [public, *api_chats[::-1]]  # newest first
    assert logs[0]["channel"] == "public" and logs[0]["userID"] == "visitor-123"

    first_page = api.get("/api/v1/chatlogs", {"limit": 2}).json()["data"]
    second_page = api.get("/api/v1/chatlogs", {"limit": 2, "offset": 2}).json()["data"]
    assert [log["chatID"] for log in first_page + second_page] == [log["chatID"] for log in logs]

    by_visitor = api.get("/api/v1/chatlogs", {"userID": "visitor-123"}).json()["data"]
    assert [log["chatID"] for log in by_visitor] == [public]
    by_member = api.get("/api/v1/chatlogs", {"userID": member_id}).json()["data"]
    assert [log["chatID"] for log in by_member] == [api_chats[2]] and by_member[0]["userID"] == member_id
    assert api.get("/api/v1/chatlogs", {"userID": "nobody"}).json()["data"] == []

    assert api.get("/api/v1/chatlogs", {"endUnixTime": 946684800}).json()["data"] == []  # before 2000
    assert len(api.get("/api/v1/chatlogs", {"startUnixTime": 946684800}).json()["data"]) == 4
    assert_error(api.get("/api/v1/chatlogs", {"offset": -1}), 400, "validation_error")
    assert_error(api.get("/api/v1/chatlogs", {"limit": 501}), 400, "validation_error")
    assert_error(api.get("/api/v1/chatlogs", {"startUnixTime": "yesterday"}), 400, "validation_error")
