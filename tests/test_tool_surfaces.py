"""Tools in chat on every surface: TypingMind's agent chat returns the tool messages before the answer and takes
them back as history, the OpenAI-compatible API runs the mind's tools server-side and hands the client's own tools
back as `tool_calls` (stream and non-stream, read by the official SDK), OpenIndex and the native chat switch tools
per chat with `tools: [{id, checked}]` and stream the tool lines."""

import json
import re

import openai
import pytest

from minds.models import Mind
from tests.corpus_minds import ready_source
from tests.fakellm import tool_call, tool_calls
from tests.fakesite import FakeSite
from tests.helpers import KeyedClient, make_key
from tests.test_search import LIGHTHOUSES
from tests.test_tool_loop import assert_openai_pairs, order_tool
from tests.test_typingmind_agents import tm_client

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city, from the client's own service.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.fixture
def mind(workspace):
    mind = Mind.objects.create(workspace=workspace, name="Atlas", slug="atlas-tool-surfaces")
    ready_source(mind, "Lighthouses", LIGHTHOUSES)
    return mind


@pytest.fixture
def site(settings):
    settings.SSRF_ALLOW_LOOPBACK = True
    with FakeSite() as site:
        site.route("/orders/A-1", '{"order": "A-1", "status": "shipped"}', content_type="application/json")
        yield site


def cite_the_tool(body: dict) -> str:
    tool = next(m for m in reversed(body["messages"]) if m["role"] == "tool")["content"]
    number = re.search(r"\[(\d+)\] \(result of the tool", tool).group(1)
    return f"It has shipped [{number}]."


# --- TypingMind ---


@pytest.mark.django_db
def test_typingmind_agent_chat_returns_the_tool_messages_then_the_answer_and_takes_them_back(
    workspace, mind, site, llm
):
    order_tool(mind, site)
    fake = llm(script=[tool_call("lookup_order", {"orderId": "A-1"}, id="call_tm1"), cite_the_tool, "Bye."])
    tm = tm_client(workspace)
    asked = [{"role": "user", "content": "Where is my order A-1?"}]
    response = tm.post(f"/api/v2/agents/{mind.id}/chat", {"messages": asked})
    assert response.status_code == 200, response.json()
    messages = response.json()["messages"]
    assert [m["role"] for m in messages] == ["assistant", "tool", "assistant"]
    call, result, final = messages
    assert call["content"] is None and call["tool_calls"] == [
        {
            "id": "call_tm1",
            "type": "function",
            "function": {"name": "lookup_order", "arguments": '{"orderId": "A-1"}'},
        }
    ]
    assert set(result) == {"role", "tool_call_id", "name", "content"}
    assert result["tool_call_id"] == "call_tm1" and result["name"] == "lookup_order"
    assert "shipped" in result["content"]
    assert set(final) == {"role", "content", "citations"}
    # The result was numbered after the turn's passages and is cited as the tool's.
    number = re.search(r"\[(\d+)\] \(result of the tool", result["content"]).group(1)
    assert final["content"] == f"It has shipped [{number}]."
    assert final["citations"][0]["sourceType"] == "tool" and final["citations"][0]["index"] == int(number)
    # TypingMind appends the returned messages and asks again: the tool steps are history, in pairs.
    again = [*asked, *messages, {"role": "user", "content": "Thanks, that is all."}]
    assert tm.post(f"/api/v2/agents/{mind.id}/chat", {"messages": again}).status_code == 200
    history = fake.chat_requests[-1]["messages"]
    assert [m["role"] for m in history] == ["system", "user", "assistant", "tool", "assistant", "user"]
    assert history[3]["tool_call_id"] == "call_tm1" and "shipped" in history[3]["content"]
    assert_openai_pairs(history)
    # A tool result whose call is missing (a client that cut its history) is dropped, not sent broken.
    broken = [asked[0], messages[1], messages[2], {"role": "user", "content": "And now?"}]
    assert tm.post(f"/api/v2/agents/{mind.id}/chat", {"messages": broken}).status_code == 200
    assert [m["role"] for m in fake.chat_requests[-1]["messages"]] == ["system", "user", "assistant", "user"]


# --- OpenAI-compatible ---


@pytest.fixture
def sdk(live_server, workspace):
    return openai.OpenAI(
        base_url=f"{live_server.url}/api/v1",
        api_key=make_key(workspace, scopes=["minds:chat"]),
        max_retries=0,
    )


def weather_follow_up(question: dict, choice) -> list[dict]:
    """The client's next request: its question, the assistant's tool calls it was handed, and its weather result."""
    return [
        question,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [c.model_dump() for c in choice.message.tool_calls],
        },
        {"role": "tool", "tool_call_id": "call_weather", "content": '{"sky": "sunny"}'},
    ]


@pytest.mark.django_db(transaction=True)
def test_openai_the_minds_tools_run_server_side_and_the_clients_tool_ends_the_turn(sdk, mind, site, llm):
    order_tool(mind, site)
    fake = llm(
        script=[
            tool_call("lookup_order", {"orderId": "A-1"}),
            tool_call("get_weather", {"city": "Lyon"}, id="call_weather"),
            "Shipped, and sunny in Lyon.",
        ]
    )
    question = {"role": "user", "content": "Where is order A-1, and what is the weather in Lyon?"}
    completion = sdk.chat.completions.create(model=mind.slug, messages=[question], tools=[WEATHER])
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    # Only the client's tool is handed back; the mind's own ran inside the turn.
    assert [(c.id, c.function.name) for c in choice.message.tool_calls] == [("call_weather", "get_weather")]
    assert json.loads(choice.message.tool_calls[0].function.arguments) == {"city": "Lyon"}
    assert [r.path for r in site.requests] == ["/orders/A-1"]
    own_steps = completion.model_extra["tool_messages"]  # extension: what ran server-side
    assert [m["role"] for m in own_steps] == ["assistant", "tool"] and own_steps[1]["name"] == "lookup_order"
    offered = sorted(t["function"]["name"] for t in fake.chat_requests[0]["tools"])
    assert offered == ["get_weather", "lookup_order"]
    # The client runs its tool and continues the turn with the result.
    follow_up = weather_follow_up(question, choice)
    final = sdk.chat.completions.create(model=mind.slug, messages=follow_up, tools=[WEATHER])
    assert final.choices[0].finish_reason == "stop"
    assert final.choices[0].message.content == "Shipped, and sunny in Lyon."
    sent = fake.chat_requests[-1]["messages"]
    assert [m["role"] for m in sent[-3:]] == ["user", "assistant", "tool"]
    assert sent[-1] == {"role": "tool", "tool_call_id": "call_weather", "content": '{"sky": "sunny"}'}
    assert_openai_pairs(sent)


@pytest.mark.django_db(transaction=True)
def test_openai_one_round_calling_both_runs_the_minds_tool_and_hands_back_the_clients(sdk, mind, site, llm):
    order_tool(mind, site)
    fake = llm(
        script=[
            tool_calls(
                tool_call("lookup_order", {"orderId": "A-1"}, id="call_order"),
                tool_call("get_weather", {"city": "Lyon"}, id="call_weather"),
            )
        ]
    )
    question = {"role": "user", "content": "Where is order A-1, and what is the weather in Lyon?"}
    completion = sdk.chat.completions.create(model=mind.slug, messages=[question], tools=[WEATHER])
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert [(c.id, c.function.name) for c in choice.message.tool_calls] == [("call_weather", "get_weather")]
    # The mind's call of the same round ran server-side, and is listed with its result.
    assert [r.path for r in site.requests] == ["/orders/A-1"]
    own_steps = completion.model_extra["tool_messages"]
    assert [m["role"] for m in own_steps] == ["assistant", "tool"]
    assert [c["id"] for c in own_steps[0]["tool_calls"]] == ["call_order"]
    assert own_steps[1]["tool_call_id"] == "call_order" and "shipped" in own_steps[1]["content"]
    # The client's result continues the turn; what the model is sent pairs every call with its result.
    fake.script.append("Shipped, and sunny in Lyon.")
    follow_up = weather_follow_up(question, choice)
    final = sdk.chat.completions.create(model=mind.slug, messages=follow_up, tools=[WEATHER])
    assert final.choices[0].message.content == "Shipped, and sunny in Lyon."
    assert_openai_pairs(fake.chat_requests[-1]["messages"])


@pytest.mark.django_db(transaction=True)
def test_openai_stream_hands_the_clients_tool_calls_back_as_deltas(sdk, mind, llm):
    llm(script=[tool_call("get_weather", {"city": "Oslo"}, id="call_oslo")])
    stream = sdk.chat.completions.create(
        model=mind.slug,
        messages=[{"role": "user", "content": "Weather in Oslo?"}],
        tools=[WEATHER],
        tool_choice="auto",
        stream=True,
    )
    calls: dict[int, dict] = {}
    finish = None
    for chunk in stream:
        for choice in chunk.choices:
            for delta in choice.delta.tool_calls or []:
                call = calls.setdefault(delta.index, {"id": None, "name": "", "arguments": ""})
                call["id"] = delta.id or call["id"]
                if delta.function and delta.function.name:
                    call["name"] += delta.function.name
                if delta.function and delta.function.arguments:
                    call["arguments"] += delta.function.arguments
            finish = choice.finish_reason or finish
    assert finish == "tool_calls"
    assert calls == {0: {"id": "call_oslo", "name": "get_weather", "arguments": '{"city": "Oslo"}'}}


@pytest.mark.django_db(transaction=True)
def test_openai_tool_choice_none_and_bad_tools(sdk, mind, llm):
    fake = llm("No tools needed.")
    completion = sdk.chat.completions.create(
        model=mind.slug, messages=[{"role": "user", "content": "Hello?"}], tools=[WEATHER], tool_choice="none"
    )
    assert completion.choices[0].finish_reason == "stop" and "tools" not in fake.chat_requests[-1]
    with pytest.raises(openai.BadRequestError):
        sdk.chat.completions.create(
            model=mind.slug, messages=[{"role": "user", "content": "Hi"}], tools=[{"type": "function"}]
        )
    with pytest.raises(openai.BadRequestError):  # a tool result must name its call
        sdk.chat.completions.create(
            model=mind.slug,
            messages=[{"role": "user", "content": "Hi"}, {"role": "tool", "content": "x"}],
        )


# --- OpenIndex and the native chat ---


@pytest.mark.django_db
def test_openindex_switches_tools_per_chat_and_streams_tool_lines(api, mind, site, llm):
    tool = order_tool(mind, site)
    fake = llm(script=[tool_call("lookup_order", {"orderId": "A-1"}), "Shipped.", "Off."])
    response = api.post("/api/chat", {"agentId": mind.id, "message": "Order A-1?", "streaming": True})
    lines = [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]
    kinds = [line["type"] for line in lines]
    assert kinds[:3] == ["start", "tool_call", "tool_result"] and kinds[-1] == "done"
    assert lines[1]["name"] == "lookup_order" and "shipped" in lines[2]["content"]
    assert lines[-1]["message"] == "Shipped."
    chat_id = lines[0]["chatId"]
    off = api.post(
        "/api/chat",
        {
            "chatId": chat_id,
            "agentId": mind.id,
            "message": "Again?",
            "tools": [{"id": tool.id, "checked": False}],
        },
    )
    assert off.status_code == 200 and off.json()["message"] == "Off."
    assert "tools" not in fake.chat_requests[-1]
    chats = api.get("/api/chat", {"agent_id": mind.id}).json()["chats"]
    current = next(c for c in chats if c["id"] == chat_id)["current"]
    assert [m["role"] for m in current] == ["user", "assistant", "tool", "assistant", "user", "assistant"]
    assert (
        current[1]["toolCalls"][0]["function"]["name"] == "lookup_order"
        and current[2]["name"] == "lookup_order"
    )


@pytest.mark.django_db
def test_native_chat_tools_checked_and_validation(api, mind, site, llm, workspace):
    tool = order_tool(mind, site, enabled=False)
    fake = llm(script=[tool_call("lookup_order", {"orderId": "A-1"}), "Shipped."])
    body = api.post(
        f"/api/v1/minds/{mind.id}/chat",
        {"message": "Order A-1?", "tools": [{"id": tool.id, "checked": True}]},
    ).json()
    assert body["message"]["content"] == "Shipped." and [r.path for r in site.requests] == ["/orders/A-1"]
    assert fake.chat_requests[0]["tools"][0]["function"]["name"] == "lookup_order"
    bad = api.post(f"/api/v1/minds/{mind.id}/chat", {"message": "x", "tools": [{"id": tool.id}]})
    assert bad.status_code == 400 and bad.json()["code"] == "validation_error"
    # Another workspace's key cannot reach this mind's tools at all (the mind is not found).
    other = KeyedClient(make_key(workspace.__class__.objects.create(name="Elsewhere")))
    assert other.post(f"/api/v1/minds/{mind.id}/chat", {"message": "x"}).status_code == 404
