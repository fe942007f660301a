"""Trigglio's aliases over the native API: the legacy key check, and the chatbots (minds) with their sources and
search, with Trigglio's chatbot vocabulary (text|url|file, pending|processing|ready|error)."""

import pytest

from accounts.models import Group
from apikeys.models import ApiKey
from knowledge.models import Source
from minds.models import Mind
from tests.corpus_minds import ready_source
from tests.helpers import KeyedClient, assert_error, make_key
from tests.realfiles import fixture, two_column_pdf
from tests.test_search import LIGHTHOUSES, VOLCANOES

pytestmark = pytest.mark.django_db

CHATBOT_FIELDS = {"id", "name", "slug", "descriptor", "createdAt", "sourceCount", "conversationCount"}


@pytest.fixture
def bot(workspace):
    return Mind.objects.create(
        workspace=workspace, name="Helpdesk", slug="helpdesk-bot", headline="Answers tickets"
    )


def sources(bot):
    return f"/api/v1/chatbots/{bot.id}/sources"


def make_source(bot, kind, status, name):
    return Source.objects.create(
        workspace_id=bot.workspace_id, mind=bot, type=kind, status=status, name=name, content=name
    )


# The legacy key check --------------------------------------------------------------------------------------------


def test_integrations_auth_verify_is_the_native_verify(workspace):
    key = make_key(workspace, scopes=["minds:read", "knowledge:search"])
    client = KeyedClient(key)
    alias = client.get("/api/integrations/webhooks/auth/verify")
    assert alias.status_code == 200, alias.json()
    assert alias.json() == client.get("/api/v1/auth/verify").json()
    assert alias.json()["workspace"] == {"id": workspace.id, "name": "Acme"}
    assert alias.json()["permissions"] == ["minds:read", "knowledge:search"]
    assert_error(KeyedClient(None).get("/api/integrations/webhooks/auth/verify"), 401, "missing_api_key")
    bad = KeyedClient("tr_live_" + "x" * 32).get("/api/integrations/webhooks/auth/verify")
    assert_error(bad, 401, "invalid_api_key")


# Chatbots ---------------------------------------------------------------------------------------------------------


def test_chatbots_are_the_minds_with_counts_and_pagination(api, workspace, bot):
    second = Mind.objects.create(workspace=workspace, name="Sales", slug="sales-bot")
    make_source(bot, "text", "ready", "faq")
    make_source(bot, "url", "failed", "page")
    body = api.get("/api/v1/chatbots", {"limit": 1, "page": 2}).json()
    assert body["status"] == "success" and set(body) == {"status", "chatbots", "pagination"}
    assert body["pagination"] == {"page": 2, "limit": 1, "total": 2, "totalPages": 2}
    assert [c["id"] for c in body["chatbots"]] == [bot.id]  # newest first: Sales, then Helpdesk
    chatbot = body["chatbots"][0]
    assert set(chatbot) == CHATBOT_FIELDS
    assert chatbot == {
        "id": bot.id,
        "name": "Helpdesk",
        "slug": "helpdesk-bot",
        "descriptor": "Answers tickets",
        "createdAt": bot.created_at.isoformat().replace("+00:00", "Z"),
        "sourceCount": 2,
        "conversationCount": 0,
    }
    assert [c["id"] for c in api.get("/api/v1/chatbots").json()["chatbots"]] == [second.id, bot.id]
    assert_error(api.get("/api/v1/chatbots", {"limit": 101}), 400, "validation_error")


def test_chatbots_respect_workspace_scope_and_groups(workspace, other_api, bot):
    staff = Group.objects.create(workspace=workspace, name="Staff")
    Mind.objects.create(
        workspace=workspace,
        name="Private",
        slug="private-bot",
        visibility="groups",
        allowed_group_ids=[staff.id],
    )
    outsider = KeyedClient(make_key(workspace, scopes=["minds:read"]))
    assert [c["id"] for c in outsider.get("/api/v1/chatbots").json()["chatbots"]] == [bot.id]
    assert other_api.get("/api/v1/chatbots").json()["chatbots"] == []
    assert_error(KeyedClient(None).get("/api/v1/chatbots"), 401, "missing_api_key")
    no_scope = KeyedClient(make_key(workspace, scopes=["minds:chat"]))
    assert_error(no_scope.get("/api/v1/chatbots"), 403, "insufficient_scope")


# Chatbot sources --------------------------------------------------------------------------------------------------


def test_chatbot_sources_map_types_and_statuses(api, bot):
    made = {
        "text": make_source(bot, "text", "ready", "text"),
        "url": make_source(bot, "url", "processing", "url"),
        "youtube": make_source(bot, "youtube", "transcribing", "youtube"),
        "document": make_source(bot, "document", "failed", "document"),
        "podcast": make_source(bot, "podcast", "pending", "podcast"),
    }
    listed = {s["name"]: s for s in api.get(sources(bot)).json()["sources"]}
    assert {name: (s["type"], s["status"]) for name, s in listed.items()} == {
        "text": ("text", "ready"),
        "url": ("url", "processing"),
        "youtube": ("url", "processing"),
        "document": ("file", "error"),
        "podcast": ("file", "pending"),
    }
    assert (
        listed["youtube"]["sourceType"] == "youtube"
        and listed["youtube"]["processingStatus"] == "transcribing"
    )
    assert listed["text"]["chatbotId"] == bot.id and listed["text"]["id"] == made["text"].id

    def names(**query):
        return sorted(s["name"] for s in api.get(sources(bot), query).json()["sources"])

    assert names(status="processing") == ["url", "youtube"]
    assert names(status="error") == ["document"]
    assert names(status="ready") == ["text"]
    assert names(type="url") == ["url", "youtube"]
    assert names(type="file") == ["document", "podcast"]
    assert names(type="file", status="pending") == ["podcast"]
    page = api.get(sources(bot), {"limit": 2, "page": 3}).json()
    assert (
        page["pagination"] == {"page": 3, "limit": 2, "total": 5, "totalPages": 3}
        and len(page["sources"]) == 1
    )
    for bad in ({"status": "failed"}, {"type": "document"}, {"limit": 0}):
        assert_error(api.get(sources(bot), bad), 400, "validation_error")


def test_chatbot_sources_are_added_as_the_minds_own(api, bot):
    text = api.post(sources(bot), {"type": "text", "name": "Refunds", "content": "Refunds take five days."})
    assert text.status_code == 201, text.json()
    assert text["Retry-After"] == "5"
    created = text.json()["source"]
    assert (created["type"], created["status"], created["name"]) == ("text", "pending", "Refunds")
    page = api.post(sources(bot), {"type": "url", "url": "https://example.com/help"}).json()["source"]
    assert (page["type"], page["sourceType"], page["url"]) == ("url", "url", "https://example.com/help")
    video = api.post(sources(bot), {"type": "url", "url": "https://youtu.be/dQw4w9WgXcQ"}).json()["source"]
    assert (video["type"], video["sourceType"]) == ("url", "youtube")
    assert sorted(Source.objects.filter(mind=bot).values_list("type", flat=True)) == [
        "text",
        "url",
        "youtube",
    ]
    native = api.get(f"/api/v1/minds/{bot.id}/knowledge/{created['id']}").json()["source"]
    assert native["mindId"] == bot.id and native["type"] == "text" and native["name"] == "Refunds"


def test_chatbot_file_sources_take_an_uploaded_document_or_audio(api, bot):
    pdf = api.upload(f"/api/v1/minds/{bot.id}/knowledge/upload", "guide.pdf", two_column_pdf()).json()
    document = api.post(sources(bot), {"type": "file", "fileUrl": pdf["fileUrl"], "fileName": "Guide"})
    assert document.status_code == 201, document.json()
    assert (document.json()["source"]["type"], document.json()["source"]["sourceType"]) == (
        "file",
        "document",
    )
    assert document.json()["source"]["fileUrl"] == pdf["fileUrl"]
    wav = fixture("audio/sense_and_sensibility_01_austen_64kb-0870.wav").read_bytes()
    audio = api.upload(f"/api/v1/minds/{bot.id}/knowledge/upload", "reading.wav", wav).json()
    podcast = api.post(sources(bot), {"type": "file", "fileUrl": audio["fileUrl"]})
    assert podcast.status_code == 201, podcast.json()
    assert (podcast.json()["source"]["type"], podcast.json()["source"]["sourceType"]) == ("file", "podcast")
    body = assert_error(
        api.post(sources(bot), {"type": "file", "fileUrl": "https://evil.example/x.pdf"}),
        400,
        "validation_error",
    )
    assert "fileUrl" in body["details"]["fields"]


def test_chatbot_duplicate_source_is_400(api, bot):
    assert api.post(sources(bot), {"type": "text", "content": "Same words"}).status_code == 201
    body = assert_error(
        api.post(sources(bot), {"type": "text", "content": "Same  words"}), 400, "duplicate_source"
    )
    assert body["details"]["existingSourceId"].startswith("src_")
    assert Source.objects.filter(mind=bot).count() == 1


@pytest.mark.parametrize(
    "body",
    [
        {"type": "text"},
        {"type": "text", "content": "  "},
        {"type": "url"},
        {"type": "file"},
        {"type": "document", "fileUrl": "x"},
        {"type": "text", "content": "ok", "url": "https://example.com"},
        {"type": "url", "url": "http://127.0.0.1/admin"},
        {"type": "text", "content": "ok", "colour": "blue"},
    ],
)
def test_chatbot_bad_sources_are_400_and_add_nothing(api, bot, body):
    response = api.post(sources(bot), body)
    assert response.status_code == 400, response.json()
    assert response.json()["code"] in ("validation_error", "url_not_allowed")
    assert not Source.objects.exists()


def test_chatbot_sources_check_scope_workspace_and_groups(workspace, other_api, bot):
    make_source(bot, "text", "ready", "secret")
    for method, body in (("get", None), ("post", {"type": "text", "content": "Planted"})):
        args = (sources(bot),) if body is None else (sources(bot), body)
        assert_error(getattr(other_api, method)(*args), 404, "not_found")
        assert_error(getattr(KeyedClient(None), method)(*args), 401, "missing_api_key")
    read_only = KeyedClient(make_key(workspace, scopes=["minds:read"]))
    assert read_only.get(sources(bot)).status_code == 200
    assert_error(read_only.post(sources(bot), {"type": "text", "content": "x"}), 403, "insufficient_scope")
    staff = Group.objects.create(workspace=workspace, name="Staff")
    bot.visibility, bot.allowed_group_ids = "groups", [staff.id]
    bot.save()
    outsider = KeyedClient(make_key(workspace, scopes="all"))
    assert_error(outsider.get(sources(bot)), 403, "mind_access_denied")
    assert_error(outsider.post(sources(bot), {"type": "text", "content": "x"}), 403, "mind_access_denied")
    assert list(Source.objects.values_list("name", flat=True)) == ["secret"]


# Chatbot search ---------------------------------------------------------------------------------------------------


def test_chatbot_search_is_the_mind_search_with_vector_by_default(api, bot):
    ready_source(bot, "Lighthouses", LIGHTHOUSES)
    ready_source(bot, "Volcanoes", VOLCANOES)
    response = api.post(f"/api/v1/chatbots/{bot.id}/search", {"query": "Who invented the Fresnel lens?"})
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["mode"] == "vector" and set(body) == {"status", "results", "mode"}
    top = body["results"][0]
    assert set(top) == {"id", "content", "score", "sourceId", "sourceName", "metadata"}
    assert top["sourceName"] == "Lighthouses" and 0 <= top["score"] <= 1
    native = api.post(
        f"/api/v1/minds/{bot.id}/search", {"query": "Who invented the Fresnel lens?", "mode": "vector"}
    )
    assert [r["id"] for r in native.json()["results"]] == [r["id"] for r in body["results"]]
    hybrid = api.post(
        f"/api/v1/chatbots/{bot.slug}/search", {"query": "Etna height", "mode": "hybrid", "limit": 1}
    )
    assert hybrid.json()["mode"] == "hybrid" and hybrid.json()["results"][0]["sourceName"] == "Volcanoes"
    for bad in (
        {},
        {"query": ""},
        {"query": "x" * 1001},
        {"query": "x", "limit": 21},
        {"query": "x", "mode": "fuzzy"},
    ):
        assert_error(api.post(f"/api/v1/chatbots/{bot.id}/search", bad), 400, "validation_error")


def test_chatbot_search_checks_scope_workspace_and_groups(workspace, other_api, bot):
    ready_source(bot, "Lighthouses", LIGHTHOUSES)
    path = f"/api/v1/chatbots/{bot.id}/search"
    assert_error(other_api.post(path, {"query": "Fresnel"}), 404, "not_found")
    no_scope = KeyedClient(make_key(workspace, scopes=["minds:read"]))
    assert_error(no_scope.post(path, {"query": "Fresnel"}), 403, "insufficient_scope")
    staff = Group.objects.create(workspace=workspace, name="Staff")
    bot.visibility, bot.allowed_group_ids = "groups", [staff.id]
    bot.save()
    key = make_key(workspace, scopes=["knowledge:search"])
    outsider = KeyedClient(key)
    denied = outsider.post(path, {"query": "Fresnel"})
    assert_error(denied, 403, "mind_access_denied")
    assert "Fresnel" not in denied.content.decode()
    ApiKey.objects.get(last4=key[-4:]).member.groups.add(staff)
    assert outsider.post(path, {"query": "Fresnel"}).json()["results"][0]["sourceName"] == "Lighthouses"
