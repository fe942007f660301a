"""Contract: the requests a Trigglio client sends — the Minds API reference's examples verbatim (seeds/002, and the
key check of reference/seed-apis.md §A.1), with `cm_abc123` replaced by a real mind's id — replayed with
`Authorization: Bearer tr_live_…` over HTTP against a live server, checking the documented response shapes."""

import httpx
import pytest

from knowledge import tasks
from minds.models import Mind
from tests.helpers import make_key
from tests.realfiles import two_column_pdf

pytestmark = pytest.mark.django_db(transaction=True)

# seeds/002: the keys of a list item, the usage and pagination objects, the detail's extras.
LIST_ITEM_KEYS = {
    "id",
    "name",
    "slug",
    "headline",
    "bio",
    "avatarUrl",
    "isPublished",
    "createdAt",
    "updatedAt",
    "knowledgeSourceCount",
    "conversationCount",
}
USAGE_KEYS = {"mindsUsed", "mindsLimit", "sourcesUsed", "sourcesLimit"}
PAGINATION_KEYS = {"page", "limit", "total", "totalPages"}
SOURCE_STATS_KEYS = {"total", "ready", "pending", "processing", "failed"}


@pytest.fixture(autouse=True)
def nothing_queued(monkeypatch):
    """This test commits, so created sources would be queued, and a worker started by an earlier test of the
    session would take them: the HTTP contract is checked on sources that stay pending (processing is the
    end-to-end tests' concern)."""
    queued: list[str] = []
    monkeypatch.setattr(tasks.source_process, "delay", queued.append)
    return queued


@pytest.fixture
def key(workspace):
    return make_key(workspace, scopes="all")


@pytest.fixture
def trigglio(live_server, key):
    """An HTTP client configured as Trigglio documents: the key as a Bearer token."""
    with httpx.Client(
        base_url=f"{live_server.url}/api", headers={"Authorization": f"Bearer {key}"}, timeout=60
    ) as client:
        yield client


@pytest.fixture
def mind(trigglio):
    # "Create Mind" with the documented body fields.
    created = trigglio.post(
        "/v1/minds",
        json={
            "name": "Product Expert",
            "headline": "Your AI product specialist",
            "systemPrompt": "You are a product expert.",
            "welcomeMessage": "Ask me about the product.",
            "suggestedQuestions": ["What does it cost?"],
            "expertiseAreas": ["pricing", "features"],
        },
    )
    assert created.status_code == 201
    return created.json()["mind"]


def test_the_key_check_at_the_integrations_path(live_server, trigglio, workspace):
    response = trigglio.get("/integrations/webhooks/auth/verify")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "success" and body["workspace"] == {"id": workspace.id, "name": workspace.name}
    assert "minds:read" in body["permissions"] and "minds:write" in body["permissions"]
    assert body == trigglio.get("/v1/auth/verify").json()
    anonymous = httpx.get(f"{live_server.url}/api/integrations/webhooks/auth/verify")
    assert anonymous.status_code == 401
    assert anonymous.json()["status"] == "error" and anonymous.json()["code"] == "missing_api_key"


def test_list_minds_as_the_curl_example(trigglio, mind, workspace):
    Mind.objects.create(workspace=workspace, name="Support", slug="support-contract")
    # curl -X GET "https://trigglio.com/api/v1/minds?page=1&limit=10" -H "Authorization: Bearer tr_live_…"
    response = trigglio.get("/v1/minds?page=1&limit=10")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "success" and {"minds", "usage", "pagination"} <= set(body)
    assert body["pagination"] == {"page": 1, "limit": 10, "total": 2, "totalPages": 1}
    # Trigglio's documented keys; the native API adds storageUsed/storageLimit beside them.
    assert USAGE_KEYS <= set(body["usage"]) and body["usage"]["mindsUsed"] == 2
    listed = {m["id"]: m for m in body["minds"]}[mind["id"]]
    assert LIST_ITEM_KEYS <= set(listed)
    assert listed["slug"].startswith("product-expert-") and len(listed["slug"]) == len("product-expert-") + 6
    assert listed["headline"] == "Your AI product specialist"
    assert listed["bio"] is None and listed["avatarUrl"] is None and listed["isPublished"] is False
    assert listed["createdAt"].endswith("Z") and listed["knowledgeSourceCount"] == 0


def test_get_edit_patch_round_trip(trigglio, mind):
    fetched = trigglio.get(f"/v1/minds/{mind['id']}")
    assert fetched.status_code == 200
    detail = fetched.json()["mind"]
    assert {"knowledgeSourceCount", "conversationCount", "recentConversationCount", "sourceLimit"} <= set(
        detail
    )
    assert SOURCE_STATS_KEYS <= set(detail["sourceStats"])
    # The client edits what it fetched and sends the whole object back, nulls and read-only fields included.
    edited = {
        **detail,
        "bio": "Knows every plan and feature.",
        "isPublished": True,
        "showSources": False,
        "collectEmailBeforeChat": True,
        "temperature": 0.3,
        "theme": {
            "primaryColor": "#0f766e",
            "backgroundColor": "#ffffff",
            "fontFamily": "Inter",
            "mode": "dark",
        },
        "socialLinks": {"website": "https://example.com"},
        "voiceEnabled": True,
        "voiceId": "nova",
        "voiceSpeed": 1.5,
    }
    patched = trigglio.patch(f"/v1/minds/{mind['id']}", json=edited)
    assert patched.status_code == 200, patched.json()
    after = patched.json()["mind"]
    for field in ("bio", "isPublished", "showSources", "collectEmailBeforeChat", "temperature", "theme"):
        assert after[field] == edited[field], field
    assert after["socialLinks"] == {"website": "https://example.com"} and after["voiceId"] == "nova"
    assert after["id"] == detail["id"] and after["createdAt"] == detail["createdAt"]
    assert after["publicUrl"].endswith("/m/" + after["slug"])
    # theme and socialLinks are `object|null`: null resets them.
    reset = trigglio.patch(f"/v1/minds/{mind['id']}", json={"theme": None, "socialLinks": None, "bio": None})
    assert reset.status_code == 200
    assert reset.json()["mind"]["theme"]["mode"] == "light" and reset.json()["mind"]["socialLinks"] == {}
    assert reset.json()["mind"]["bio"] is None
    refused = trigglio.patch(f"/v1/minds/{mind['id']}", json={"notAField": 1})
    assert refused.status_code == 400 and refused.json()["code"] == "validation_error"


def test_publish_and_delete_as_documented(trigglio, mind):
    published = trigglio.post(f"/v1/minds/{mind['id']}/publish", json={"isPublished": True})
    assert published.status_code == 200
    body = published.json()
    assert body["status"] == "success" and body["mind"]["isPublished"] is True
    assert {"id", "slug", "isPublished", "publicUrl"} <= set(body["mind"])
    assert body["mind"]["publicUrl"].endswith(f"/m/{mind['slug']}") and "warning" in body
    deleted = trigglio.delete(f"/v1/minds/{mind['id']}")
    assert deleted.json() == {"status": "success", "deleted": True, "id": mind["id"]}


def test_upload_then_document_source_and_duplicates_are_400(trigglio, mind):
    base = f"/v1/minds/{mind['id']}/knowledge"
    # curl -X POST ".../knowledge/upload" -H "Authorization: Bearer …" -F "file=@/path/to/document.pdf"
    uploaded = trigglio.post(
        f"{base}/upload", files={"file": ("document.pdf", two_column_pdf(), "application/pdf")}
    )
    assert uploaded.status_code == 201
    upload = uploaded.json()
    assert {"status", "fileUrl", "fileName", "mimeType", "fileSize", "category"} <= set(upload)
    assert (upload["fileName"], upload["mimeType"], upload["category"]) == (
        "document.pdf",
        "application/pdf",
        "document",
    )
    document = {
        "name": "Guide",
        "type": "document",
        "fileUrl": upload["fileUrl"],
        "fileName": upload["fileName"],
        "mimeType": upload["mimeType"],
        "fileSize": upload["fileSize"],
    }
    created = trigglio.post(base, json=document)
    assert created.status_code == 201 and created.json()["source"]["status"] == "pending"
    assert {"id", "name", "status"} <= set(created.json()["source"])
    page = {"name": "Pricing page", "type": "url", "url": "https://example.com/pricing"}
    assert trigglio.post(base, json=page).status_code == 201
    for duplicate in (document, page):
        again = trigglio.post(base, json=duplicate)
        assert again.status_code == 400
        body = again.json()
        assert body["status"] == "error" and body["code"] == "duplicate_source" and body["message"]
    listed = trigglio.get(base, params={"page": 1, "limit": 20, "status": "pending"}).json()
    assert listed["pagination"]["total"] == 2 and {s["type"] for s in listed["sources"]} == {
        "document",
        "url",
    }
    polled = trigglio.get(f"{base}/{created.json()['source']['id']}")
    assert polled.status_code == 200
    assert polled.headers["Retry-After"] == "5"


def test_chatbots_alias_lists_the_minds(trigglio, mind):
    body = trigglio.get("/v1/chatbots", params={"page": 1, "limit": 20}).json()
    assert body["status"] == "success" and set(body["pagination"]) == PAGINATION_KEYS
    (chatbot,) = body["chatbots"]
    assert set(chatbot) == {
        "id",
        "name",
        "slug",
        "descriptor",
        "createdAt",
        "sourceCount",
        "conversationCount",
    }
    assert (chatbot["id"], chatbot["descriptor"]) == (mind["id"], "Your AI product specialist")
    added = trigglio.post(
        f"/v1/chatbots/{mind['id']}/sources", json={"type": "text", "content": "Plans start at $9."}
    )
    assert added.status_code == 201 and added.json()["source"]["type"] == "text"
    sources = trigglio.get(f"/v1/chatbots/{mind['id']}/sources", params={"status": "pending", "type": "text"})
    assert [s["id"] for s in sources.json()["sources"]] == [added.json()["source"]["id"]]
