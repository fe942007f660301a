"""The OpenAI-compatible surface driven by the official `openai` SDK against a live server, as a client would."""

import httpx
import openai
import pytest

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
                {"role": "system", "content": "ignored: the mind has its own persona"},
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
    # The client's history reached the model; its system message did not replace the mind's persona.
    roles = [m["role"] for m in answer_request["messages"]]
    assert roles == ["system", "user", "assistant", "user"]
    assert "ignored" not in answer_request["messages"][0]["content"]


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
