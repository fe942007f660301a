"""The OpenAI-compatible surface driven by the official `openai` SDK against a live server, as a client would."""

import httpx
import openai
import pytest

from accounts.models import Group
from apikeys.models import ApiKey
from conversations.models import Conversation
from minds.models import Mind
from tests.corpus_minds import ready_source
from tests.fakellm import FakeLLM
from tests.helpers import make_key
from tests.test_search import LIGHTHOUSES, VOLCANOES

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def mind(workspace):
    mind = Mind.objects.create(workspace=workspace, name="Atlas", slug="atlas-openai")
    ready_source(mind, "Lighthouses", LIGHTHOUSES)
    ready_source(mind, "Volcanoes", VOLCANOES)
    return mind


@pytest.fixture
def client(live_server, workspace):
    return openai.OpenAI(
        base_url=f"{live_server.url}/api/v1",
        api_key=make_key(workspace, scopes=["minds:chat"]),
        max_retries=0,
    )


def test_models_lists_the_keys_minds(client, mind, workspace):
    Mind.objects.create(workspace=workspace, name="Second", slug="second-openai")
    assert sorted(m.id for m in client.models.list()) == ["atlas-openai", "second-openai"]


def test_completion_with_citations_in_the_extension_field(client, mind):
    completion = client.chat.completions.create(
        model="atlas-openai",
        messages=[{"role": "user", "content": "Who invented the Fresnel lens for lighthouses?"}],
    )
    message = completion.choices[0].message
    assert "Fresnel" in message.content and completion.choices[0].finish_reason == "stop"
    extra = completion.model_extra
    assert extra["citations"][0]["sourceName"] == "Lighthouses"
    assert message.model_extra["citations"] == extra["citations"]
    assert completion.usage.completion_tokens > 0 and completion.model == "atlas-openai"
    # The mind's id works as the model name too.
    assert client.chat.completions.create(
        model=mind.id, messages=[{"role": "user", "content": "Etna height?"}]
    ).choices


def test_streaming_chunks_end_with_citations_usage_and_done(client, mind, settings):
    with FakeLLM("Fresnel built it [1]. Bogus [4].") as fake:
        settings.OPENAI_BASE_URL = fake.base_url
        stream = client.chat.completions.create(
            model="atlas-openai",
            stream=True,
            messages=[
                {"role": "system", "content": "Answer like a ship's captain."},
                {"role": "user", "content": "Tell me about lighthouses"},
                {"role": "assistant", "content": "They guide ships."},
                {"role": "user", "content": "Who invented the lens?"},
            ],
        )
        chunks = list(stream)
        answer_request = [r for r in fake.requests if r.get("stream")][-1]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Fresnel built it [1]. Bogus."
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    final = chunks[-1]
    assert final.choices[0].finish_reason == "stop"
    assert [c["index"] for c in final.model_extra["citations"]] == [1] and final.usage.total_tokens > 0
    # The client's history reached the model, and its system message joined the mind's persona (after it).
    roles = [m["role"] for m in answer_request["messages"]]
    assert roles == ["system", "user", "assistant", "user"]
    system = answer_request["messages"][0]["content"]
    assert system.startswith("You are Atlas") and "Answer like a ship's captain." in system
    assert answer_request["temperature"] == 0.7  # the mind's, as the client sent none


def test_errors_raise_the_sdks_exceptions(client, live_server, mind, settings):
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="no-such-mind", messages=[{"role": "user", "content": "hi"}])
    assert missing.value.code == "model_not_found"
    bad_key = openai.OpenAI(
        base_url=f"{live_server.url}/api/v1", api_key="tr_live_" + "x" * 32, max_retries=0
    )
    with pytest.raises(openai.AuthenticationError):
        bad_key.models.list()
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model="atlas-openai", messages=[{"role": "assistant", "content": "no question"}]
        )
    with FakeLLM(fail_with=503) as fake:
        settings.OPENAI_BASE_URL = fake.base_url
        with pytest.raises(openai.InternalServerError) as upstream:
            client.chat.completions.create(
                model="atlas-openai", messages=[{"role": "user", "content": "lens?"}]
            )
    assert upstream.value.status_code == 502


def test_a_key_restricted_to_other_minds_cannot_use_this_one(live_server, workspace, mind):
    other = Mind.objects.create(workspace=workspace, name="Other", slug="other-openai")
    key = make_key(workspace, scopes=["minds:chat"], allowed_mind_ids=[other.id])
    restricted = openai.OpenAI(base_url=f"{live_server.url}/api/v1", api_key=key, max_retries=0)
    assert [m.id for m in restricted.models.list()] == ["other-openai"]
    with pytest.raises(openai.NotFoundError):
        restricted.chat.completions.create(model="atlas-openai", messages=[{"role": "user", "content": "hi"}])


def test_activated_character_id_wins_over_the_clients_model_name(live_server, workspace, mind):
    # A real TypingMind request: its own model name beside the character it means.
    key = make_key(workspace, scopes=["minds:chat"])
    response = httpx.post(
        f"{live_server.url}/api/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={
            "model": "gpt-4",
            "activatedCharacterID": mind.id,
            "messages": [{"role": "user", "content": "Who invented the Fresnel lens?"}],
        },
        timeout=60,
    )
    assert response.status_code == 200, response.json()
    assert (
        response.json()["model"] == mind.slug
        and "Fresnel" in response.json()["choices"][0]["message"]["content"]
    )


def _post(live_server, key, body):
    return httpx.post(
        f"{live_server.url}/api/v1/chat/completions",
        headers={"X-API-KEY": key},
        json=body,
        timeout=60,
    )


def test_system_and_developer_messages_and_temperature_shape_the_llm_request(
    live_server, workspace, mind, settings
):
    key = make_key(workspace, scopes=["minds:chat"])
    with FakeLLM("Fresnel [1].") as fake:
        settings.OPENAI_BASE_URL = fake.base_url
        response = _post(
            live_server,
            key,
            {
                "model": "gpt-4",
                "activatedCharacterID": mind.slug,
                "temperature": 0.2,
                "messages": [
                    {"role": "system", "content": "Reply in one sentence."},
                    {"role": "developer", "content": [{"type": "text", "text": "Mention the year."}]},
                    {"role": "user", "content": "Who invented the Fresnel lens?"},
                ],
            },
        )
        answer_request = [r for r in fake.requests if r.get("stream")][-1]
    assert response.status_code == 200, response.json()
    assert response.json()["choices"][0]["message"]["content"] == "Fresnel [1]."
    system = answer_request["messages"][0]["content"]
    assert "Reply in one sentence.\n\nMention the year." in system
    assert system.index("You are Atlas") < system.index("Reply in one sentence.")
    assert [m["role"] for m in answer_request["messages"]] == ["system", "user"]
    assert answer_request["temperature"] == 0.2


def test_a_claude_style_prompt_is_accepted_when_messages_are_absent(live_server, workspace, mind, settings):
    key = make_key(workspace, scopes=["minds:chat"])
    prompt = (
        "Be brief.\n\nHuman: Tell me about lighthouses\n\nAssistant: They guide ships."
        "\n\nHuman: Who invented the lens?\n\nAssistant:"
    )
    with FakeLLM("Augustin Fresnel [1].") as fake:
        settings.OPENAI_BASE_URL = fake.base_url
        response = _post(
            live_server, key, {"model": "claude-2", "activatedCharacterID": mind.id, "prompt": prompt}
        )
        answer_request = [r for r in fake.requests if r.get("stream")][-1]
    assert response.status_code == 200, response.json()
    assert response.json()["choices"][0]["message"]["content"] == "Augustin Fresnel [1]."
    sent = answer_request["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]
    assert "Be brief." in sent[0]["content"]
    assert sent[1]["content"] == "Tell me about lighthouses" and sent[2]["content"] == "They guide ships."
    assert sent[3]["content"].endswith("Question: Who invented the lens?")
    # Offline (no LLM), a bare prompt without markers is one question, answered extractively with citations.
    settings.OPENAI_BASE_URL = None
    offline = _post(live_server, key, {"model": mind.slug, "prompt": "Who invented the Fresnel lens?"})
    assert offline.status_code == 200, offline.json()
    assert offline.json()["citations"][0]["sourceName"] == "Lighthouses"


def test_a_body_without_messages_or_prompt_or_with_bad_ones_is_400(live_server, workspace, mind):
    key = make_key(workspace, scopes=["minds:chat"])
    bodies = [
        {"model": mind.slug},
        {"model": mind.slug, "prompt": "\n\nHuman: hi\n\nAssistant: hello"},
        {"model": mind.slug, "prompt": "   "},
        {"model": mind.slug, "prompt": "x" * 100_001},
        {"model": mind.slug, "messages": [{"role": "user", "content": "hi"}], "temperature": 2.5},
        {"model": mind.slug, "messages": [{"role": "user", "content": "x" * 4001}]},
    ]
    for body in bodies:
        response = _post(live_server, key, body)
        assert response.status_code == 400, (body, response.json())
        assert response.json()["error"]["type"] == "invalid_request_error"
    assert not Conversation.objects.exists()


def test_group_only_character_is_refused_to_an_outsider(live_server, workspace, mind):
    staff = Group.objects.create(workspace=workspace, name="Staff")
    mind.visibility, mind.allowed_group_ids = "groups", [staff.id]
    mind.save()
    key = make_key(workspace, scopes=["minds:chat"])
    body = {
        "model": "gpt-4",
        "activatedCharacterID": mind.id,
        "messages": [{"role": "user", "content": "hi"}],
    }
    response = _post(live_server, key, body)
    assert response.status_code == 403 and response.json()["error"]["code"] == "mind_access_denied"
    ApiKey.objects.get(last4=key[-4:]).member.groups.add(staff)
    assert _post(live_server, key, body).status_code == 200
