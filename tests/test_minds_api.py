"""The minds endpoints: every field and limit, scoping, slugs, publish, delete cascade."""

import io

import pytest
from django.core.management import CommandError, call_command

from conversations.models import Conversation
from knowledge.models import Collection, Source
from minds.models import Mind
from tests.helpers import KeyedClient, assert_error, make_key

pytestmark = pytest.mark.django_db

FULL = {
    "name": "Ada Lovelace",
    "headline": "First programmer",
    "bio": "Wrote the first algorithm.",
    "avatarUrl": "https://example.com/ada.png",
    "systemPrompt": "You are Ada.",
    "welcomeMessage": "Hello!",
    "suggestedQuestions": ["What is the Analytical Engine?", "Who was Babbage?"],
    "expertiseAreas": ["mathematics", "computing"],
    "showSources": True,
    "collectEmailBeforeChat": False,
    "temperature": 0.4,
    "model": "gpt-4o-mini",
    "language": "en",
    "theme": {
        "primaryColor": "#112233",
        "backgroundColor": "#ffffff",
        "fontFamily": "Georgia",
        "mode": "dark",
    },
    "socialLinks": {"twitter": "https://twitter.com/ada", "website": "https://ada.example"},
    "voiceEnabled": True,
    "voiceId": "nova",
    "voiceSpeed": 1.25,
}


def test_create_with_every_field_and_get_detail(api):
    response = api.post("/api/v1/minds", FULL)
    assert response.status_code == 201, response.json()
    mind = response.json()["mind"]
    for field, value in FULL.items():
        assert mind[field] == value, field
    assert (
        mind["id"].startswith("mind_")
        and mind["slug"].startswith("ada-lovelace-")
        and len(mind["slug"]) == len("ada-lovelace-") + 6
    )
    detail = api.get(f"/api/v1/minds/{mind['id']}").json()["mind"]
    assert detail["sourceStats"] == {
        "total": 0,
        "ready": 0,
        "pending": 0,
        "processing": 0,
        "transcribing": 0,
        "failed": 0,
    }
    assert detail["recentConversationCount"] == 0 and detail["sourceLimit"] > 0
    assert api.get(f"/api/v1/minds/{mind['slug']}").json()["mind"]["id"] == mind["id"]  # by slug too


@pytest.mark.parametrize(
    "field,value",
    [
        ("name", "x" * 101),
        ("name", ""),
        ("suggestedQuestions", ["a", "b", "c", "d", "e"]),
        ("expertiseAreas", [f"e{i}" for i in range(11)]),
        ("temperature", 2.1),
        ("temperature", -0.1),
        ("voiceId", "robot"),
        ("voiceSpeed", 0.2),
        ("voiceSpeed", 4.5),
        ("theme", {"primaryColor": "red;}</style>"}),
        ("theme", {"mode": "neon"}),
        ("theme", {"unknown": 1}),
        ("socialLinks", {"twitter": "javascript:alert(1)"}),
        ("socialLinks", {"myspace": "https://myspace.com/x"}),
        ("slug", "Not A Slug!"),
        ("avatarUrl", "javascript:alert(1)"),
        ("colour", "blue"),
    ],
)
def test_create_rejects_each_invalid_field(api, field, value):
    body = {"name": "Valid", field: value} if field != "name" else {"name": value}
    result = assert_error(api.post("/api/v1/minds", body), 400, "validation_error")
    assert result["details"]["fields"]
    assert Mind.objects.count() == 0


def test_slugs_are_unique_and_validated(api):
    assert api.post("/api/v1/minds", {"name": "A", "slug": "my-mind"}).status_code == 201
    assert_error(api.post("/api/v1/minds", {"name": "B", "slug": "my-mind"}), 400, "validation_error")


def _says_nothing_of(response, workspace) -> None:
    text = response.content.decode()
    assert workspace.id not in text and workspace.name not in text


def test_two_workspaces_may_each_have_an_unpublished_slug(api, other_api, other_workspace):
    theirs = other_api.post("/api/v1/minds", {"name": "Theirs", "slug": "support"})
    ours = api.post("/api/v1/minds", {"name": "Ours", "slug": "support"})
    assert theirs.status_code == ours.status_code == 201
    # Each key's slug lookup finds its own workspace's mind.
    assert api.get("/api/v1/minds/support").json()["mind"]["id"] == ours.json()["mind"]["id"]
    assert other_api.get("/api/v1/minds/support").json()["mind"]["id"] == theirs.json()["mind"]["id"]
    # Renaming onto a slug used only in another workspace is allowed too.
    other = api.post("/api/v1/minds", {"name": "Second"}).json()["mind"]
    renamed = api.patch(f"/api/v1/minds/{other['id']}", {"slug": "support-desk"})
    assert renamed.status_code == 200 and renamed.json()["mind"]["slug"] == "support-desk"
    _says_nothing_of(ours, other_workspace)


def test_publishing_a_slug_another_workspace_has_published_gives_400(api, other_api, other_workspace):
    theirs = other_api.post("/api/v1/minds", {"name": "Theirs", "slug": "support"}).json()["mind"]
    ours = api.post("/api/v1/minds", {"name": "Ours", "slug": "support"}).json()["mind"]
    assert other_api.post(f"/api/v1/minds/{theirs['id']}/publish", {"isPublished": True}).status_code == 200

    refused = api.post(f"/api/v1/minds/{ours['id']}/publish", {"isPublished": True})
    assert_error(refused, 400, "validation_error")
    assert "/m/support" in refused.json()["message"]
    _says_nothing_of(refused, other_workspace)
    assert Mind.objects.get(id=ours["id"]).is_published is False
    # The same through an update and through creating a published mind.
    patched = api.patch(f"/api/v1/minds/{ours['id']}", {"isPublished": True})
    assert_error(patched, 400, "validation_error")
    created = api.post("/api/v1/minds", {"name": "Third", "slug": "support-2", "isPublished": True})
    assert created.status_code == 201
    renamed = api.patch(f"/api/v1/minds/{created.json()['mind']['id']}", {"slug": "support"})
    assert_error(renamed, 400, "validation_error")
    _says_nothing_of(renamed, other_workspace)

    # Once theirs is unpublished, the public address is free for ours.
    assert other_api.post(f"/api/v1/minds/{theirs['id']}/publish", {"isPublished": False}).status_code == 200
    assert api.post(f"/api/v1/minds/{ours['id']}/publish", {"isPublished": True}).status_code == 200
    assert Mind.objects.get(id=ours["id"]).is_published is True


def test_list_with_pagination_counts_and_usage(api, workspace):
    for i in range(3):
        api.post("/api/v1/minds", {"name": f"Mind {i}"})
    mind = Mind.objects.first()
    Source.objects.create(workspace=workspace, mind=mind, type="text", name="s", content="c")
    Conversation.objects.create(workspace=workspace, mind=mind)
    body = api.get("/api/v1/minds", {"limit": 2}).json()
    assert body["pagination"] == {"page": 1, "limit": 2, "total": 3, "totalPages": 2}
    assert body["usage"]["mindsUsed"] == 3 and body["usage"]["sourcesUsed"] == 1
    assert {"mindsLimit", "sourcesLimit"} <= set(body["usage"])
    counted = {m["id"]: m for m in api.get("/api/v1/minds").json()["minds"]}[mind.id]
    assert counted["knowledgeSourceCount"] == 1 and counted["conversationCount"] == 1
    assert_error(api.get("/api/v1/minds", {"limit": 101}), 400, "validation_error")
    assert_error(api.get("/api/v1/minds", {"page": 0}), 400, "validation_error")


def test_minds_limit(api, workspace):
    workspace.minds_limit = 1
    workspace.save()
    assert api.post("/api/v1/minds", {"name": "One"}).status_code == 201
    assert_error(api.post("/api/v1/minds", {"name": "Two"}), 400, "limit_exceeded")


def test_patch_is_partial(api):
    mind = api.post("/api/v1/minds", FULL).json()["mind"]
    patched = api.patch(f"/api/v1/minds/{mind['id']}", {"headline": "Countess", "theme": {"mode": "light"}})
    assert patched.status_code == 200, patched.json()
    after = patched.json()["mind"]
    assert (
        after["headline"] == "Countess" and after["bio"] == FULL["bio"] and after["theme"]["mode"] == "light"
    )
    assert_error(api.patch(f"/api/v1/minds/{mind['id']}", {"temperature": 3}), 400, "validation_error")


def test_delete_cascades(api, workspace):
    mind_id = api.post("/api/v1/minds", {"name": "Gone"}).json()["mind"]["id"]
    mind = Mind.objects.get(id=mind_id)
    Source.objects.create(workspace=workspace, mind=mind, type="text", name="s", content="c")
    Conversation.objects.create(workspace=workspace, mind=mind)
    assert api.delete(f"/api/v1/minds/{mind_id}").json() == {
        "status": "success",
        "deleted": True,
        "id": mind_id,
    }
    assert not Source.objects.exists() and not Conversation.objects.exists()
    assert_error(api.get(f"/api/v1/minds/{mind_id}"), 404, "not_found")


def test_publish_warns_without_ready_sources(api, workspace):
    mind_id = api.post("/api/v1/minds", {"name": "Pub"}).json()["mind"]["id"]
    body = api.post(f"/api/v1/minds/{mind_id}/publish", {"isPublished": True}).json()
    assert (
        body["mind"]["isPublished"]
        and body["publicUrl"].endswith("/m/" + body["mind"]["slug"])
        and body["warning"]
    )
    Source.objects.create(
        workspace=workspace, mind_id=mind_id, type="text", name="s", content="c", status="ready"
    )
    assert "warning" not in api.post(f"/api/v1/minds/{mind_id}/publish", {}).json()
    unpublished = api.post(f"/api/v1/minds/{mind_id}/publish", {"isPublished": False}).json()
    assert unpublished["mind"]["isPublished"] is False and unpublished["publicUrl"] is None


def test_seed_demo_creates_a_published_demo_mind_once():
    call_command("seed_demo", stdout=io.StringIO())
    call_command("seed_demo", stdout=io.StringIO())
    demo = Mind.objects.get(slug="demo-mind")
    assert demo.is_published and demo.published_at and demo.suggested_questions
    assert Mind.objects.filter(workspace=demo.workspace).count() == 1


def test_every_endpoint_checks_key_scope_and_workspace(api, other_api, workspace):
    mind_id = api.post("/api/v1/minds", {"name": "Private"}).json()["mind"]["id"]
    calls = [
        ("get", f"/api/v1/minds/{mind_id}", None, "minds:read"),
        ("patch", f"/api/v1/minds/{mind_id}", {"name": "x"}, "minds:write"),
        ("delete", f"/api/v1/minds/{mind_id}", None, "minds:write"),
        ("post", f"/api/v1/minds/{mind_id}/publish", {}, "minds:write"),
    ]
    no_scope = KeyedClient(make_key(workspace, scopes=["conversations:read"]))
    for method, path, body, scope in calls:
        args = (path, body) if body is not None else (path,)
        assert_error(getattr(KeyedClient(None), method)(*args), 401, "missing_api_key")
        denied = assert_error(getattr(no_scope, method)(*args), 403, "insufficient_scope")
        assert scope in denied["message"]
        assert_error(getattr(other_api, method)(*args), 404, "not_found")
    assert_error(no_scope.get("/api/v1/minds"), 403, "insufficient_scope")
    assert_error(no_scope.post("/api/v1/minds", {"name": "x"}), 403, "insufficient_scope")
    assert other_api.get("/api/v1/minds").json()["minds"] == []
    elsewhere = Mind.objects.create(workspace=workspace, name="Elsewhere", slug="elsewhere-scope")
    restricted = KeyedClient(make_key(workspace, scopes="all", allowed_mind_ids=[elsewhere.id]))
    assert_error(restricted.get(f"/api/v1/minds/{mind_id}"), 404, "not_found")
    assert [m["id"] for m in restricted.get("/api/v1/minds").json()["minds"]] == [elsewhere.id]


# One path per app that inherits minds.apis_base.MindScopedApiView.
MIND_SCOPED_CALLS = [
    ("get", "/api/v1/minds/{}"),
    ("get", "/api/v1/minds/{}/knowledge"),
    ("post", "/api/v1/minds/{}/search"),
    ("post", "/api/v1/minds/{}/chat"),
    ("get", "/api/v1/minds/{}/conversations"),
]


def test_a_request_refused_for_its_key_scope_method_or_rate_learns_nothing_about_the_mind(
    workspace, other_workspace, settings
):
    hidden = Mind.objects.create(workspace=other_workspace, name="Hidden", slug="hidden-order")
    no_scope = KeyedClient(make_key(workspace, scopes=["users:manage"]))
    for mind_id in (hidden.id, "mind_unknown"):
        for method, path in MIND_SCOPED_CALLS:
            assert_error(getattr(KeyedClient(None), method)(path.format(mind_id)), 401, "missing_api_key")
            assert_error(getattr(no_scope, method)(path.format(mind_id)), 403, "insufficient_scope")
    api = KeyedClient(make_key(workspace, scopes="all"))
    assert_error(api.delete(f"/api/v1/minds/{hidden.id}/publish"), 405, "method_not_allowed")
    settings.RATE_LIMIT_PER_MINUTE = 1
    for _attempt in range(2):  # a one-minute window may roll over mid-test; then the count starts again
        client = KeyedClient(make_key(workspace, scopes="all"))
        first = client.get(f"/api/v1/minds/{hidden.id}")
        limited = client.get(f"/api/v1/minds/{hidden.id}")
        if first["X-RateLimit-Reset"] == limited["X-RateLimit-Reset"]:
            break
    assert_error(first, 404, "not_found")
    assert_error(limited, 429, "rate_limited")


def test_get_edit_patch_round_trip_ignores_read_only_fields(api, workspace):
    created = api.post("/api/v1/minds", {"name": "Round Trip"}).json()["mind"]
    Source.objects.create(workspace=workspace, mind_id=created["id"], type="text", name="s", content="c")
    fetched = api.get(f"/api/v1/minds/{created['id']}").json()["mind"]
    assert fetched["bio"] is None and fetched["avatarUrl"] is None and fetched["model"] is None
    assert fetched["knowledgeSourceCount"] == 1 and fetched["collectionIds"] == []
    edited = {**fetched, "headline": "Edited on the way back", "topP": 0.9}
    patched = api.patch(f"/api/v1/minds/{created['id']}", edited)
    assert patched.status_code == 200, patched.json()
    after = patched.json()["mind"]
    assert after["headline"] == "Edited on the way back" and after["topP"] == 0.9
    assert after["id"] == created["id"] and after["createdAt"] == fetched["createdAt"]
    assert after["knowledgeSourceCount"] == 1 and after["sourceStats"]["total"] == 1
    unchanged = {k: v for k, v in after.items() if k not in ("headline", "topP", "updatedAt")}
    assert unchanged == {k: v for k, v in fetched.items() if k not in ("headline", "topP", "updatedAt")}
    mind = Mind.objects.get(id=created["id"])
    assert mind.headline == "Edited on the way back" and mind.top_p == 0.9 and mind.bio == ""


def test_patch_null_resets_theme_links_and_texts(api):
    mind = api.post("/api/v1/minds", FULL).json()["mind"]
    nulls = {"theme": None, "socialLinks": None, "bio": None, "headline": None, "avatarUrl": None}
    patched = api.patch(f"/api/v1/minds/{mind['id']}", nulls)
    assert patched.status_code == 200, patched.json()
    after = patched.json()["mind"]
    assert after["theme"] == {
        "primaryColor": "#4f46e5",
        "backgroundColor": "#ffffff",
        "fontFamily": "system-ui",
        "mode": "light",
    }
    assert after["socialLinks"] == {} and after["headline"] == ""
    assert after["bio"] is None and after["avatarUrl"] is None
    stored = Mind.objects.get(id=mind["id"])
    assert (stored.bio, stored.avatar_url, stored.headline, stored.social_links) == ("", "", "", {})
    assert after["name"] == FULL["name"] and after["systemPrompt"] == FULL["systemPrompt"]


def test_patch_still_refuses_unknown_fields_and_changes_nothing(api):
    mind = api.post("/api/v1/minds", {"name": "Strict"}).json()["mind"]
    body = assert_error(
        api.patch(f"/api/v1/minds/{mind['id']}", {"headline": "New", "colour": "blue"}),
        400,
        "validation_error",
    )
    assert body["details"]["fields"] == {"colour": ["Unknown field."]}
    assert Mind.objects.get(id=mind["id"]).headline == ""


def test_sampling_parameters_are_writable_validated_and_resettable(api):
    mind = api.post(
        "/api/v1/minds", {"name": "Sampler", "topP": 0.5, "frequencyPenalty": -1.5, "presencePenalty": 2}
    ).json()["mind"]
    assert (mind["topP"], mind["frequencyPenalty"], mind["presencePenalty"]) == (0.5, -1.5, 2)
    for field, value in (("topP", 1.1), ("topP", -0.1), ("frequencyPenalty", 2.5), ("presencePenalty", -3)):
        assert_error(api.patch(f"/api/v1/minds/{mind['id']}", {field: value}), 400, "validation_error")
    reset = api.patch(f"/api/v1/minds/{mind['id']}", {"topP": None, "presencePenalty": None}).json()["mind"]
    assert (reset["topP"], reset["frequencyPenalty"], reset["presencePenalty"]) == (None, -1.5, None)
    assert Mind.objects.get(id=mind["id"]).top_p is None


def test_collection_ids_are_shown_and_accepted_back_only_unchanged(api, workspace):
    mind = api.post("/api/v1/minds", {"name": "Reader"}).json()["mind"]
    manuals = Collection.objects.create(workspace=workspace, name="Manuals", slug="manuals")
    manuals.minds.add(mind["id"])
    fetched = api.get(f"/api/v1/minds/{mind['id']}").json()["mind"]
    assert fetched["collectionIds"] == [manuals.id]
    listed = {m["id"]: m for m in api.get("/api/v1/minds").json()["minds"]}
    assert listed[mind["id"]]["collectionIds"] == [manuals.id]
    assert api.patch(f"/api/v1/minds/{mind['id']}", {**fetched, "name": "Reader 2"}).status_code == 200
    body = assert_error(
        api.patch(f"/api/v1/minds/{mind['id']}", {"name": "Reader 3", "collectionIds": []}),
        400,
        "validation_error",
    )
    assert "PUT /api/v1/minds/{id}/collections" in body["details"]["fields"]["collectionIds"][0]
    assert Mind.objects.get(id=mind["id"]).name == "Reader 2"
    assert list(Mind.objects.get(id=mind["id"]).collections.values_list("id", flat=True)) == [manuals.id]


def test_operator_commands_refuse_a_slug_two_workspaces_use(api, other_api, tmp_path):
    for client in (api, other_api):
        assert client.post("/api/v1/minds", {"name": "Support", "slug": "support"}).status_code == 201
    for command in (("ask", "--mind", "support", "hello?"), ("ingest", "--mind", "support", str(tmp_path))):
        with pytest.raises(CommandError, match="Several workspaces have a mind with slug 'support'"):
            call_command(*command)
    # Its id names it.
    mind_id = Mind.objects.filter(slug="support").first().id
    with pytest.raises(CommandError, match="No files found"):
        call_command("ingest", "--mind", mind_id, str(tmp_path))
