"""The native collections API without a worker: collections, their knowledge, uploads, attaching them to minds;
exact shapes, validation, scopes, other workspaces, mind-restricted keys, audit, and the OpenAPI document."""

import json

import pytest
from django.core.files.storage import default_storage
from django.test import Client, TestCase

from accounts.models import AuditLog, Group
from apikeys.models import ApiKey
from knowledge.errors import DuplicateSource
from knowledge.models import Chunk, Collection, Source, UploadedFile
from minds.models import Mind
from tests.helpers import KeyedClient, assert_error, make_key
from tests.test_collection_search import ready_collection_source
from tests.test_openapi import check

pytestmark = pytest.mark.django_db

COLLECTION_KEYS = {
    "id",
    "name",
    "slug",
    "description",
    "image",
    "privacy",
    "mindIds",
    "knowledgeSourceCount",
    "createdAt",
    "updatedAt",
}
DETAIL_KEYS = COLLECTION_KEYS | {"sourceLimit", "sourceStats"}


@pytest.fixture
def mind(workspace):
    return Mind.objects.create(workspace=workspace, name="Ada", slug="ada-collections")


@pytest.fixture
def collection(workspace):
    return Collection.objects.create(workspace=workspace, name="Handbook", slug="handbook")


def knowledge(collection):
    return f"/api/v1/collections/{collection.id}/knowledge"


def test_create_get_list_and_update_a_collection_with_exact_shapes(api, mind):
    created = api.post(
        "/api/v1/collections",
        {
            "name": "Product docs",
            "description": "Everything support needs.",
            "image": "https://cdn.example.com/docs.png",
            "privacy": "public",
        },
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert set(body) == {"status", "collection"} and body["status"] == "success"
    collection = body["collection"]
    assert set(collection) == DETAIL_KEYS
    assert collection["id"].startswith("col_") and collection["slug"] == "product-docs"
    assert collection["privacy"] == "public" and collection["image"] == "https://cdn.example.com/docs.png"
    assert collection["mindIds"] == [] and collection["knowledgeSourceCount"] == 0
    assert collection["sourceStats"] == {
        "total": 0,
        "ready": 0,
        "pending": 0,
        "processing": 0,
        "transcribing": 0,
        "failed": 0,
    }
    assert collection["sourceLimit"] == mind.workspace.effective_source_limit_per_mind
    assert collection["createdAt"].endswith("Z")

    second = api.post("/api/v1/collections", {"name": "Product docs"}).json()["collection"]
    assert second["slug"] == "product-docs-2" and second["privacy"] == "private" and second["image"] is None

    api.put(f"/api/v1/minds/{mind.id}/collections", {"collectionIds": [collection["id"]]})
    api.post(knowledge(Collection.objects.get(id=collection["id"])), {"type": "text", "content": "A fact."})
    detail = api.get(f"/api/v1/collections/{collection['id']}").json()["collection"]
    assert detail["mindIds"] == [mind.id] and detail["knowledgeSourceCount"] == 1
    assert detail["sourceStats"]["total"] == 1 and detail["sourceStats"]["pending"] == 1
    assert api.get("/api/v1/collections/product-docs").json()["collection"]["id"] == collection["id"]

    listed = api.get("/api/v1/collections", {"limit": 1}).json()
    assert listed["pagination"] == {"page": 1, "limit": 1, "total": 2, "totalPages": 2}
    assert [set(c) for c in listed["collections"]] == [COLLECTION_KEYS]
    assert listed["collections"][0]["id"] == second["id"]  # newest first

    patched = api.patch(f"/api/v1/collections/{collection['id']}", {"description": "", "privacy": "private"})
    assert patched.status_code == 200, patched.json()
    after = patched.json()["collection"]
    assert after["description"] == "" and after["privacy"] == "private" and after["name"] == "Product docs"
    assert after["slug"] == "product-docs"


def test_bad_collection_input_is_a_precise_400_and_creates_nothing(api, collection):
    for bad in (
        {},
        {"name": "   "},
        {"name": "x" * 101},
        {"name": "Docs", "privacy": "secret"},
        {"name": "Docs", "image": "javascript:alert(1)"},
        {"name": "Docs", "colour": "red"},
    ):
        body = assert_error(api.post("/api/v1/collections", bad), 400, "validation_error")
        assert body["details"]["fields"], bad
    assert_error(api.patch(f"/api/v1/collections/{collection.id}", {"name": ""}), 400, "validation_error")
    assert_error(api.patch(f"/api/v1/collections/{collection.id}", {"mindIds": []}), 400, "validation_error")
    assert list(Collection.objects.values_list("name", flat=True)) == ["Handbook"]
    assert_error(api.get("/api/v1/collections/col_missing"), 404, "not_found")


def test_collection_knowledge_has_the_mind_knowledge_bodies_filters_and_answers(api, collection):
    created = api.post(
        knowledge(collection), {"type": "text", "name": "Notes", "content": "Cranes lift ships."}
    )
    assert created.status_code == 201, created.json()
    assert created["Retry-After"] == "5"
    source = created.json()["source"]
    assert source["collectionId"] == collection.id and source["mindId"] is None
    assert source["status"] == "pending" and source["name"] == "Notes" and source["type"] == "text"
    api.post(knowledge(collection), {"type": "url", "url": "https://example.com/cranes"})
    Source.objects.filter(type="url").update(status="failed", error_code="fetch_failed")

    page = api.get(knowledge(collection), {"limit": 1}).json()
    assert page["pagination"] == {"page": 1, "limit": 1, "total": 2, "totalPages": 2}
    assert [s["type"] for s in api.get(knowledge(collection), {"type": "url"}).json()["sources"]] == ["url"]
    assert [s["status"] for s in api.get(knowledge(collection), {"status": "failed"}).json()["sources"]] == [
        "failed"
    ]
    assert_error(api.get(knowledge(collection), {"status": "done"}), 400, "validation_error")
    assert_error(api.post(knowledge(collection), {"type": "text", "content": "  "}), 400, "validation_error")
    assert_error(
        api.post(knowledge(collection), {"type": "url", "url": "http://169.254.169.254/"}),
        400,
        "url_not_allowed",
    )
    duplicate = api.post(knowledge(collection), {"type": "text", "content": "Cranes   lift ships."})
    assert_error(duplicate, DuplicateSource.status_code, "duplicate_source")

    detail = api.get(f"{knowledge(collection)}/{source['id']}")
    assert detail.status_code == 200 and detail["Retry-After"] == "5"
    assert detail.json()["source"]["id"] == source["id"]

    Source.objects.filter(id=source["id"]).update(status="processing")
    assert_error(api.post(f"{knowledge(collection)}/{source['id']}/reprocess"), 409, "source_busy")
    Source.objects.filter(id=source["id"]).update(status="failed", error_code="x", attempts=3)
    again = api.post(f"{knowledge(collection)}/{source['id']}/reprocess").json()["source"]
    assert again["status"] == "pending" and again["attempts"] == 0 and again["errorCode"] is None

    with TestCase.captureOnCommitCallbacks(execute=False):
        deleted = api.delete(f"{knowledge(collection)}/{source['id']}")
    assert deleted.json() == {"status": "success", "deleted": True, "id": source["id"]}
    assert_error(api.get(f"{knowledge(collection)}/{source['id']}"), 404, "not_found")


def test_the_same_content_in_a_mind_and_a_collection_is_not_a_duplicate(api, mind, collection):
    text = {"type": "text", "content": "The same paragraph in two places."}
    assert api.post(knowledge(collection), text).status_code == 201
    assert api.post(f"/api/v1/minds/{mind.id}/knowledge", text).status_code == 201


def test_a_collection_holds_at_most_the_workspaces_per_owner_source_limit(api, collection, workspace):
    workspace.source_limit_per_mind = 1
    workspace.save()
    assert api.post(knowledge(collection), {"type": "text", "content": "one"}).status_code == 201
    body = assert_error(
        api.post(knowledge(collection), {"type": "text", "content": "two"}), 400, "limit_exceeded"
    )
    assert "collection" in body["message"] and body["details"] == {"limit": "sourceLimit", "value": 1}


def test_an_upload_file_url_points_at_its_collection_and_only_works_there(api, mind, collection):
    uploaded = api.upload(
        f"{knowledge(collection)}/upload", "notes.txt", b"Harbour notes for the crane crew."
    )
    assert uploaded.status_code == 201, uploaded.json()
    data = uploaded.json()
    assert set(data) == {
        "status",
        "fileId",
        "fileUrl",
        "fileName",
        "mimeType",
        "fileSize",
        "category",
        "deduplicated",
        "durationSeconds",
    }
    assert data["fileUrl"].endswith(f"/api/v1/collections/{collection.id}/knowledge/files/{data['fileId']}")
    download = api.get(f"{knowledge(collection)}/files/{data['fileId']}")
    assert (
        download.status_code == 200
        and b"".join(download.streaming_content) == b"Harbour notes for the crane crew."
    )

    source = api.post(knowledge(collection), {"type": "document", "fileUrl": data["fileUrl"]})
    assert source.status_code == 201, source.json()
    assert source.json()["source"]["fileUrl"] == data["fileUrl"]
    assert_error(
        api.post(f"/api/v1/minds/{mind.id}/knowledge", {"type": "document", "fileUrl": data["fileUrl"]}),
        400,
        "validation_error",
    )
    mind_upload = api.upload(
        f"/api/v1/minds/{mind.id}/knowledge/upload", "m.txt", b"Only for the mind."
    ).json()
    assert f"/minds/{mind.id}/" in mind_upload["fileUrl"]
    body = assert_error(
        api.post(knowledge(collection), {"type": "document", "fileUrl": mind_upload["fileUrl"]}),
        400,
        "validation_error",
    )
    assert "collection" in body["message"]
    assert_error(api.get(f"{knowledge(collection)}/files/{mind_upload['fileId']}"), 404, "not_found")
    assert_error(
        api.upload(f"{knowledge(collection)}/upload", "x.exe", b"MZ\x90\x00binary"),
        415,
        "unsupported_file_type",
    )


def test_deleting_a_collection_removes_its_knowledge_and_detaches_it_from_minds(api, mind, collection):
    data = api.upload(f"{knowledge(collection)}/upload", "a.txt", b"Delete me with my collection.").json()
    api.post(knowledge(collection), {"type": "document", "fileUrl": data["fileUrl"]})
    ready_collection_source(collection, "Facts", ["Cranes lift containers onto the quay."])
    mind.collections.add(collection)
    stored = UploadedFile.objects.get(id=data["fileId"]).file.name
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = api.delete(f"/api/v1/collections/{collection.id}")
    assert response.json() == {"status": "success", "deleted": True, "id": collection.id}
    assert not Collection.objects.exists() and not Source.objects.exists() and not Chunk.objects.exists()
    assert not UploadedFile.objects.exists() and not default_storage.exists(stored)
    assert Mind.objects.filter(id=mind.id).exists() and not mind.collections.exists()
    assert_error(api.get(f"/api/v1/collections/{collection.id}"), 404, "not_found")


def test_attaching_collections_to_a_mind(api, mind, collection, workspace, other_workspace):
    path = f"/api/v1/minds/{mind.id}/collections"
    empty = api.get(path)
    assert empty.json() == {"status": "success", "collectionIds": [], "collections": []}
    other = Collection.objects.create(workspace=workspace, name="Archive", slug="archive")
    response = api.put(path, {"collectionIds": [collection.id, other.id, collection.id]})
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["collectionIds"] == [other.id, collection.id]  # by name
    assert [set(c) for c in body["collections"]] == [COLLECTION_KEYS, COLLECTION_KEYS]
    assert body["collections"][1]["mindIds"] == [mind.id]
    assert api.get(path).json()["collectionIds"] == [other.id, collection.id]
    assert set(mind.collections.values_list("id", flat=True)) == {collection.id, other.id}

    foreign = Collection.objects.create(workspace=other_workspace, name="Theirs", slug="theirs")
    body = assert_error(api.put(path, {"collectionIds": [foreign.id]}), 400, "validation_error")
    assert body["details"]["fields"]["collectionIds"] == [f"Unknown collection: {foreign.id}"]
    assert_error(api.put(path, {"collectionIds": "col_x"}), 400, "validation_error")
    assert_error(api.put(path, {}), 400, "validation_error")
    assert set(mind.collections.values_list("id", flat=True)) == {collection.id, other.id}

    assert api.put(path, {"collectionIds": []}).json()["collectionIds"] == []
    assert not mind.collections.exists()
    assert_error(api.get("/api/v1/minds/mind_missing/collections"), 404, "not_found")


def test_scopes_on_every_collection_endpoint(workspace, mind, collection):
    reader = KeyedClient(make_key(workspace, scopes=["minds:read"]))
    source = ready_collection_source(collection, "Facts", ["Cranes lift containers onto the quay."])
    assert reader.get("/api/v1/collections").status_code == 200
    assert reader.get(f"/api/v1/collections/{collection.id}").status_code == 200
    assert reader.get(knowledge(collection)).status_code == 200
    assert reader.get(f"{knowledge(collection)}/{source.id}").status_code == 200
    assert reader.get(f"/api/v1/minds/{mind.id}/collections").status_code == 200
    refused = [
        reader.post("/api/v1/collections", {"name": "New"}),
        reader.patch(f"/api/v1/collections/{collection.id}", {"name": "Renamed"}),
        reader.delete(f"/api/v1/collections/{collection.id}"),
        reader.post(knowledge(collection), {"type": "text", "content": "More."}),
        reader.upload(f"{knowledge(collection)}/upload", "a.txt", b"Some text."),
        reader.delete(f"{knowledge(collection)}/{source.id}"),
        reader.post(f"{knowledge(collection)}/{source.id}/reprocess"),
        reader.put(f"/api/v1/minds/{mind.id}/collections", {"collectionIds": [collection.id]}),
        reader.post(f"/api/v1/collections/{collection.id}/search", {"query": "cranes"}),
    ]
    for response in refused:
        assert_error(response, 403, "insufficient_scope")
    searcher = KeyedClient(make_key(workspace, scopes=["knowledge:search"]))
    assert (
        searcher.post(f"/api/v1/collections/{collection.id}/search", {"query": "cranes"}).status_code == 200
    )
    assert_error(searcher.get("/api/v1/collections"), 403, "insufficient_scope")
    anonymous = KeyedClient(None)
    assert_error(anonymous.get("/api/v1/collections"), 401, "missing_api_key")
    assert_error(anonymous.get(f"/api/v1/collections/{collection.id}"), 401, "missing_api_key")
    assert_error(KeyedClient("tr_live_" + "x" * 32).get(knowledge(collection)), 401, "invalid_api_key")
    collection.refresh_from_db()
    assert collection.name == "Handbook" and Source.objects.count() == 1 and not mind.collections.exists()


def test_another_workspace_gets_404_everywhere_and_changes_nothing(other_api, mind, collection):
    source = ready_collection_source(collection, "Facts", ["Cranes lift containers onto the quay."])
    upload = UploadedFile.objects.create(
        workspace=collection.workspace,
        collection=collection,
        file="uploads/x.txt",
        file_name="x.txt",
        mime_type="text/plain",
        file_size=1,
        category="document",
        sha256="0" * 64,
    )
    base = f"/api/v1/collections/{collection.id}"
    for response in (
        other_api.get(base),
        other_api.get("/api/v1/collections/handbook"),
        other_api.patch(base, {"name": "Mine"}),
        other_api.delete(base),
        other_api.get(knowledge(collection)),
        other_api.post(knowledge(collection), {"type": "text", "content": "Intrusion."}),
        other_api.upload(f"{knowledge(collection)}/upload", "a.txt", b"Intrusion."),
        other_api.get(f"{knowledge(collection)}/files/{upload.id}"),
        other_api.get(f"{knowledge(collection)}/{source.id}"),
        other_api.delete(f"{knowledge(collection)}/{source.id}"),
        other_api.post(f"{knowledge(collection)}/{source.id}/reprocess"),
        other_api.post(f"{base}/search", {"query": "cranes"}),
        other_api.get(f"/api/v1/minds/{mind.id}/collections"),
        other_api.put(f"/api/v1/minds/{mind.id}/collections", {"collectionIds": []}),
    ):
        assert_error(response, 404, "not_found")
    assert other_api.get("/api/v1/collections").json()["collections"] == []
    collection.refresh_from_db()
    source.refresh_from_db()
    assert collection.name == "Handbook" and source.status == "ready" and Source.objects.count() == 1
    assert UploadedFile.objects.count() == 1


def test_a_mind_restricted_key_reaches_only_collections_of_its_minds(workspace, collection):
    own = Mind.objects.create(workspace=workspace, name="Own", slug="own-restricted")
    elsewhere = Mind.objects.create(workspace=workspace, name="Elsewhere", slug="elsewhere-restricted")
    unattached = Collection.objects.create(workspace=workspace, name="Unattached", slug="unattached")
    shared_elsewhere = Collection.objects.create(workspace=workspace, name="Elsewhere's", slug="elsewheres")
    collection.minds.add(own, elsewhere)
    shared_elsewhere.minds.add(elsewhere)
    restricted = KeyedClient(make_key(workspace, scopes="all", allowed_mind_ids=[own.id]))

    listed = restricted.get("/api/v1/collections").json()["collections"]
    assert [c["id"] for c in listed] == [collection.id]
    assert listed[0]["mindIds"] == [own.id]  # the other mind is beyond the key's reach
    for hidden in (unattached, shared_elsewhere):
        assert_error(restricted.get(f"/api/v1/collections/{hidden.id}"), 404, "not_found")
        assert_error(restricted.post(knowledge(hidden), {"type": "text", "content": "x"}), 404, "not_found")
        assert_error(
            restricted.post(f"/api/v1/collections/{hidden.id}/search", {"query": "x"}), 404, "not_found"
        )
    assert restricted.get(f"/api/v1/collections/{collection.id}").status_code == 200
    assert restricted.post(knowledge(collection), {"type": "text", "content": "Allowed."}).status_code == 201

    body = assert_error(
        restricted.post("/api/v1/collections", {"name": "Mine"}), 403, "key_restricted_to_minds"
    )
    assert "restricted" in body["message"]
    assert_error(restricted.delete(f"/api/v1/collections/{collection.id}"), 403, "key_restricted_to_minds")
    assert Collection.objects.count() == 3

    path = f"/api/v1/minds/{own.id}/collections"
    body = assert_error(
        restricted.put(path, {"collectionIds": [collection.id, unattached.id]}), 400, "validation_error"
    )
    assert body["details"]["fields"]["collectionIds"] == [f"Unknown collection: {unattached.id}"]
    assert list(own.collections.values_list("id", flat=True)) == [collection.id]
    assert_error(restricted.get(f"/api/v1/minds/{elsewhere.id}/collections"), 404, "not_found")
    assert restricted.put(path, {"collectionIds": []}).json()["collectionIds"] == []
    assert restricted.get("/api/v1/collections").json()["collections"] == []


def test_the_collections_of_a_group_only_mind_follow_its_group_rule(workspace, collection):
    staff = Group.objects.create(workspace=workspace, name="Staff")
    locked = Mind.objects.create(
        workspace=workspace,
        name="Locked",
        slug="locked-groups",
        visibility="groups",
        allowed_group_ids=[staff.id],
    )
    outsider = KeyedClient(make_key(workspace, scopes="all"))
    path = f"/api/v1/minds/{locked.id}/collections"
    assert_error(outsider.get(path), 403, "mind_access_denied")
    assert_error(outsider.put(path, {"collectionIds": [collection.id]}), 403, "mind_access_denied")
    assert not locked.collections.exists()
    member_key = make_key(workspace, scopes="all")
    ApiKey.objects.get(last4=member_key[-4:]).member.groups.add(staff)
    assert KeyedClient(member_key).put(path, {"collectionIds": [collection.id]}).status_code == 200


def test_every_collection_change_is_audited_with_the_key_as_actor(api, mind):
    key_id = api.get("/api/v1/auth/verify").json()["keyId"]
    collection_id = api.post("/api/v1/collections", {"name": "Audited"}).json()["collection"]["id"]
    api.patch(f"/api/v1/collections/{collection_id}", {"privacy": "public"})
    source_id = api.post(
        f"/api/v1/collections/{collection_id}/knowledge", {"type": "text", "content": "Audit me."}
    ).json()["source"]["id"]
    api.put(f"/api/v1/minds/{mind.id}/collections", {"collectionIds": [collection_id]})
    api.delete(f"/api/v1/collections/{collection_id}")
    entries = list(
        AuditLog.objects.exclude(entity="api_key")
        .order_by("id")
        .values_list("entity", "entity_id", "action", "actor_key_id")
    )
    assert entries == [
        ("collection", collection_id, "create", key_id),
        ("collection", collection_id, "update", key_id),
        ("source", source_id, "create", key_id),
        ("mind", mind.id, "update", key_id),
        ("collection", collection_id, "delete", key_id),
    ]
    update = AuditLog.objects.get(entity="collection", action="update")
    assert update.changes == {"privacy": {"from": "private", "to": "public"}}
    source_entry = AuditLog.objects.get(entity="source")
    assert source_entry.changes["collectionId"] == collection_id and source_entry.changes["mindId"] is None


@pytest.fixture(scope="module")
def document(django_db_blocker):
    with django_db_blocker.unblock():
        response = Client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    return json.loads(response.content)


def test_real_collection_responses_match_the_openapi_document(document, api, mind):
    created = api.post("/api/v1/collections", {"name": "Schema"})
    check(document, created, "/api/v1/collections", "post")
    collection_id = created.json()["collection"]["id"]
    collection = Collection.objects.get(id=collection_id)
    check(document, api.get("/api/v1/collections"), "/api/v1/collections", "get")
    detail = "/api/v1/collections/{collection_id}"
    check(document, api.get(f"/api/v1/collections/{collection_id}"), detail, "get")
    check(document, api.patch(f"/api/v1/collections/{collection_id}", {"description": "d"}), detail, "patch")
    listing = "/api/v1/collections/{collection_id}/knowledge"
    source = api.post(knowledge(collection), {"type": "text", "content": "Schemas tell the truth."})
    check(document, source, listing, "post")
    check(document, api.get(knowledge(collection)), listing, "get")
    source_id = source.json()["source"]["id"]
    check(
        document,
        api.get(f"{knowledge(collection)}/{source_id}"),
        "/api/v1/collections/{collection_id}/knowledge/{source_id}",
        "get",
    )
    check(
        document,
        api.upload(f"{knowledge(collection)}/upload", "a.txt", b"Some text."),
        "/api/v1/collections/{collection_id}/knowledge/upload",
        "post",
    )
    ready_collection_source(collection, "Facts", ["The Fresnel lens was invented in 1822 for lighthouses."])
    check(
        document,
        api.post(f"/api/v1/collections/{collection_id}/search", {"query": "Fresnel lens", "threshold": 0}),
        "/api/v1/collections/{collection_id}/search",
        "post",
    )
    attach = "/api/v1/minds/{mind_id}/collections"
    check(
        document,
        api.put(f"/api/v1/minds/{mind.id}/collections", {"collectionIds": [collection_id]}),
        attach,
        "put",
    )
    check(document, api.get(f"/api/v1/minds/{mind.id}/collections"), attach, "get")
    check(document, api.get(f"/api/v1/minds/{mind.id}/knowledge"), "/api/v1/minds/{mind_id}/knowledge", "get")
    check(document, api.get("/api/v1/collections/col_missing"), detail, "get")
    check(document, api.delete(f"/api/v1/collections/{collection_id}"), detail, "delete")
