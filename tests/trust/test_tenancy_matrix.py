"""The tenancy matrix, generated from the OpenAPI document (issue 12, item 1).

For every documented operation with a path parameter, on every surface (native /api/v1, TypingMind /api/v1 and
/api/v2, OpenIndex /api/…, Trigglio /api/v1/chatbots and /api/integrations), the path is filled with real objects
of a first workspace and requested:
- with a second workspace's key: 404 in that surface's error shape, and nothing changes (row counts of the main
  tables, and every column of the first workspace's rows, before and after);
- with a key of the first workspace restricted to another mind: 404 on every route that names a mind or an object
  of a mind (conversation, message, source, file, collection attached to it only);
- with a key of the first workspace lacking the operation's scope (read from the view's `required_scopes`): 403
  `insufficient_scope` in the surface's shape, for every operation of the document.
Lists without a path parameter must not show the other workspace's objects.

A new route is covered automatically: the matrix fails if its path parameter has no object to name, or if its
request body has no entry in BODIES.
"""

import json
import re
from urllib.parse import urlencode

import pytest
from django.apps import apps
from django.db import transaction
from django.test import override_settings
from django.urls import resolve
from django.utils import timezone

from apikeys.models import ALL_SCOPES
from compat.openindex.base import OpenIndexApiView
from compat.typingmind.base import AGENT_ACCESS_DENIED, TypingMindApiView
from conversations.chat import chat_complete
from conversations.openai_apis import OpenAiApiView
from knowledge.extractors.base import Extracted, Segment
from knowledge.indexing import source_index
from knowledge.models import Source
from knowledge.source_states import source_claim
from minds.models import Mind
from tests.corpus_minds import ready_source
from tests.helpers import KeyedClient, assert_error, make_key, make_workspace
from tests.mcpserver import McpTestServer

# A real MCP server (the SDK's) for the routes of a mind's MCP servers: started once, on first use by a World.
MCP_SERVER = McpTestServer()

pytestmark = pytest.mark.django_db

METHODS = ("get", "post", "put", "patch", "delete")

# A minimal valid body per operation that takes one, so a 404 is about tenancy, not validation order. "upload" is a
# multipart file. An operation with a request body and no entry here fails the matrix.
UPLOAD = "upload"
BODIES: dict[str, object] = {
    "trigglio_chatbot_search": {"query": "lighthouse"},
    "trigglio_chatbot_sources_create": {"type": "text", "name": "Note", "content": "A new fact."},
    "collections_update": {"name": "Renamed"},
    "collection_knowledge_create": {"type": "text", "name": "Note", "content": "A new fact."},
    "collection_knowledge_upload": UPLOAD,
    "collection_search": {"query": "lighthouse"},
    "messages_feedback": {"rating": "up"},
    "groups_update": {"title": "Renamed"},
    "members_update": {"tags": ["changed"]},
    "minds_update": {"name": "Renamed"},
    "minds_chat": {"message": "Who built it?"},
    "mind_collections_set": {"collectionIds": []},
    "knowledge_create": {"type": "text", "name": "Note", "content": "A new fact."},
    "knowledge_upload": UPLOAD,
    "minds_publish": {"isPublished": True},
    "knowledge_search": {"query": "lighthouse"},
    "typingmind_v1_users_update": {"tags": ["changed"]},
    "typingmind_agent_chat": {"messages": [{"role": "user", "content": "Who built it?"}]},
    "typingmind_v2_groups_update": {"title": "Renamed"},
    "typingmind_v2_users_update": {"groups": []},
    "tools_create": {"kind": "search_knowledge", "name": "matrix_tool"},
    "tools_update": {"enabled": True},
    "mcp_servers_create": {"name": "second", "url": MCP_SERVER.url},
    "mcp_servers_update": {"enabled": True},
    "context_endpoint_set": {"urlTemplate": MCP_SERVER.url + "/context?c={conversationId}"},
}

COUNTED_MODELS = [
    "accounts.Workspace",
    "accounts.Member",
    "accounts.Group",
    "accounts.AuditLog",
    "apikeys.ApiKey",
    "minds.Mind",
    "knowledge.Collection",
    "knowledge.Source",
    "knowledge.UploadedFile",
    "knowledge.Chunk",
    "knowledge.WebhookDelivery",
    "conversations.Conversation",
    "conversations.Message",
    "tools.Tool",
]
# Every column of these rows of the first workspace is compared before and after (stricter than `updated_at`,
# which a queryset `.update()` would not touch).
SNAPSHOT_MODELS = [
    "accounts.Workspace",
    "accounts.Member",
    "accounts.Group",
    "apikeys.ApiKey",
    "minds.Mind",
    "knowledge.Collection",
    "knowledge.Source",
    "knowledge.UploadedFile",
    "conversations.Conversation",
    "conversations.Message",
    "tools.Tool",
]


@pytest.fixture(scope="module")
def document(django_db_blocker):
    from django.test import Client

    with django_db_blocker.unblock():
        response = Client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    return json.loads(response.content)


def operations(document, *, with_path_parameter: bool | None = True):
    for path, entries in document["paths"].items():
        has_parameter = "{" in path
        if with_path_parameter is not None and has_parameter != with_path_parameter:
            continue
        for method in METHODS:
            if method in entries:
                yield path, method, {**entries[method], "x-path": path}


def url_path(operation: dict) -> str:
    return operation["x-path"]


class World:
    """Real objects of the first workspace, made through the API and the services, one per path parameter kind."""

    def __init__(self):
        self.workspace = make_workspace("Victim")
        self.owner = KeyedClient(make_key(self.workspace, scopes="all"))
        self.mind = self._created(self.owner.post("/api/v1/minds", {"name": "Victim mind"}), "mind")
        self.other_mind = self._created(self.owner.post("/api/v1/minds", {"name": "Second mind"}), "mind")
        base = f"/api/v1/minds/{self.mind}/knowledge"
        self.source = self._created(
            self.owner.post(
                base, {"type": "text", "name": "Facts", "content": "The lighthouse was built in 1820."}
            ),
            "source",
        )
        self.file = self._upload(f"{base}/upload")
        self.collection = self._created(
            self.owner.post("/api/v1/collections", {"name": "Docs"}), "collection"
        )
        cbase = f"/api/v1/collections/{self.collection}/knowledge"
        self.collection_source = self._created(
            self.owner.post(cbase, {"type": "text", "name": "Docs", "content": "The keeper lived there."}),
            "source",
        )
        self.collection_file = self._upload(f"{cbase}/upload")
        # Attached to the first mind only: a key restricted to the second mind must not reach it.
        attached = self.owner.put(
            f"/api/v1/minds/{self.mind}/collections", {"collectionIds": [self.collection]}
        )
        assert attached.status_code == 200, attached.json()
        turn = chat_complete(mind=Mind.objects.get(id=self.mind), message="When was it built?")
        self.conversation, self.message = turn.conversation_id, turn.message_id
        self.key = self._created(
            self.owner.post("/api/v1/api-keys", {"name": "Reader", "scopes": ["minds:read"]}), "apiKey"
        )
        self.member = self._created(
            self.owner.post("/api/v1/members", {"email": "ann@example.com"}), "member"
        )
        self.group = self._created(self.owner.post("/api/v1/groups", {"title": "Staff"}), "group")
        if MCP_SERVER._thread is None:
            MCP_SERVER.start()
        with override_settings(SSRF_ALLOW_LOOPBACK=True):  # the MCP server listens on 127.0.0.1
            self.mcp_server = self._created(
                self.owner.post(
                    f"/api/v1/minds/{self.mind}/mcp-servers", {"name": "remote", "url": MCP_SERVER.url}
                ),
                "mcpServer",
            )
        self.tool = self._created(
            self.owner.post(
                f"/api/v1/minds/{self.mind}/tools", {"kind": "search_knowledge", "enabled": True}
            ),
            "tool",
        )

    @staticmethod
    def _created(response, key: str) -> str:
        assert response.status_code == 201, (response.status_code, response.json())
        return str(response.json()[key]["id"])

    def _upload(self, url: str) -> str:
        response = self.owner.upload(url, "notes.txt", b"Plain notes about the lighthouse.\n", "text/plain")
        assert response.status_code == 201, response.json()
        self.file_urls = [*getattr(self, "file_urls", []), response.json()["fileUrl"]]
        return str(response.json()["fileId"])

    def value(self, path: str, parameter: str) -> str:
        in_collection = path.startswith("/api/v1/collections/")
        values = {
            "mind_id": self.mind,
            "agent_id": self.mind,
            "source_id": self.collection_source if in_collection else self.source,
            "file_id": self.collection_file if in_collection else self.file,
            "collection_id": self.collection,
            "conversation_id": self.conversation,
            "message_id": self.message,
            "key_id": self.key,
            "member_id": self.member,
            "user_id": self.member,
            "group_id": self.group,
            "tool_id": self.tool,
            "server_id": self.mcp_server,
        }
        assert parameter in values, f"{path}: no object for path parameter {{{parameter}}}; add one to World"
        return str(values[parameter])

    def url(self, path: str, parents: dict[str, str] | None = None) -> str:
        """`parents` overrides some parameters, e.g. the caller's own mind in front of this world's source."""
        parents = parents or {}
        return re.sub(
            r"\{(\w+)\}", lambda match: parents.get(match.group(1)) or self.value(path, match.group(1)), path
        )


def view_class(url: str):
    match = resolve(url)
    return getattr(match.func, "cls", None) or match.func.view_class


def send(client: KeyedClient, method: str, url: str, operation: dict):
    body = BODIES.get(operation["operationId"])
    if "{" in url_path(operation) and "requestBody" in operation and operation["operationId"] not in BODIES:
        pytest.fail(f"{operation['operationId']}: a request body is documented; add a minimal one to BODIES")
    if body == UPLOAD:
        return client.upload(url, "other.txt", b"Another tenant's notes.\n", "text/plain")
    if method in ("get", "delete"):
        return getattr(client, method)(url)
    return getattr(client, method)(url, body if body is not None else {})


def surface_error(view, response, status: int, code: str) -> str | None:
    """The problem with `response` as this surface's error with this status and code, or None."""
    try:
        body = response.json()
    except ValueError:
        return f"{response.status_code} not JSON"
    if response.status_code != status:
        return f"{response.status_code} {body}"
    if issubclass(view, TypingMindApiView):
        ok = isinstance(body.get("userMessage"), str) and set(body) <= {"userMessage", "details"}
    elif issubclass(view, OpenIndexApiView):
        ok = body.get("ok") is False and isinstance(body.get("error"), str) and set(body) == {"ok", "error"}
    elif issubclass(view, OpenAiApiView):
        ok = body.get("error", {}).get("code") == code
    else:
        try:
            assert_error(response, status, code)
            ok = True
        except AssertionError:
            ok = False
    if ok and code == "insufficient_scope" and issubclass(view, (TypingMindApiView, OpenIndexApiView)):
        # These shapes carry no code: the message must still say which scope is missing.
        ok = "scope" in json.dumps(body).lower()
    return None if ok else f"not the surface's {status} {code}: {body}"


def counts() -> dict[str, int]:
    return {label: apps.get_model(label).objects.count() for label in COUNTED_MODELS}


def snapshot(workspace) -> dict[str, list[dict]]:
    rows = {}
    for label in SNAPSHOT_MODELS:
        model = apps.get_model(label)
        if label == "accounts.Workspace":
            queryset = model.objects.filter(pk=workspace.pk)
        elif label == "conversations.Message":
            queryset = model.objects.filter(conversation__workspace=workspace)
        else:
            queryset = model.objects.filter(workspace=workspace)
        # A key of this workspace making the requests stamps its own use; nothing else may move.
        fields = [field.attname for field in model._meta.concrete_fields if field.attname != "last_used_at"]
        rows[label] = list(queryset.order_by("pk").values(*fields))
    return rows


@pytest.fixture
def world(settings):
    # The owner's MCP server routes reach the local MCP server (MCP_SERVER).
    settings.SSRF_ALLOW_LOOPBACK = True
    return World()


def test_every_path_parameter_operation_is_in_the_matrix(document, world):
    """The generation itself: every surface is present, so an empty or partial walk cannot pass, and a path
    parameter nobody gave an object to fails instead of being skipped."""
    with pytest.raises(AssertionError, match="no object for path parameter"):
        world.url("/api/v1/widgets/{widget_id}")
    paths = {path for path, _, _ in operations(document)}
    assert len(list(operations(document))) >= 49
    for prefix in (
        "/api/v1/minds/",
        "/api/v1/collections/",
        "/api/v1/chatbots/",
        "/api/v1/users/",
        "/api/v2/",
    ):
        assert any(path.startswith(prefix) for path in paths), prefix
    # Bodies listed for operations that no longer exist would hide a renamed operation without a case.
    documented = {operation["operationId"] for _, _, operation in operations(document)}
    assert set(BODIES) <= documented, sorted(set(BODIES) - documented)


def test_another_workspace_gets_404_and_changes_nothing(document, world):
    intruder = KeyedClient(make_key(make_workspace("Intruder"), scopes="all"))
    before_counts, before_rows = counts(), snapshot(world.workspace)
    problems = []
    for path, method, operation in operations(document):
        url = world.url(path)
        problem = surface_error(view_class(url), send(intruder, method, url, operation), 404, "not_found")
        if problem:
            problems.append(f"{method.upper()} {path}: {problem}")
    assert not problems, "\n".join(problems)
    assert counts() == before_counts
    after_rows = snapshot(world.workspace)
    changed = [label for label in SNAPSHOT_MODELS if after_rows[label] != before_rows[label]]
    assert not changed, changed


def test_the_owner_reaches_every_route_of_the_matrix(document, world):
    """The control: the same requests with the first workspace's key succeed, so the 404s above are about tenancy
    and not about a wrong id or body. Each runs in a savepoint rolled back after it, so a deletion or a duplicate
    cannot change what the next one finds."""
    problems = []
    for path, method, operation in operations(document):
        with transaction.atomic():
            response = send(world.owner, method, world.url(path), operation)
            transaction.set_rollback(True)
        if response.status_code >= 300:
            problems.append(f"{method.upper()} {path}: {response.status_code} {response.content[:300]!r}")
    assert not problems, "\n".join(problems)


# What a key restricted to the second mind may still reach: workspace-level objects that name no mind.
WORKSPACE_LEVEL = {"member_id", "user_id", "group_id"}


def test_a_key_restricted_to_another_mind_cannot_reach_the_first(document, world):
    restricted = KeyedClient(make_key(world.workspace, scopes="all", allowed_mind_ids=[world.other_mind]))
    before_counts, before_rows = counts(), snapshot(world.workspace)
    problems, covered = [], 0
    for path, method, operation in operations(document):
        parameters = set(re.findall(r"\{(\w+)\}", path))
        if parameters <= WORKSPACE_LEVEL:
            continue
        covered += 1
        url = world.url(path)
        problem = surface_error(view_class(url), send(restricted, method, url, operation), 404, "not_found")
        if problem:
            problems.append(f"{method.upper()} {path}: {problem}")
    assert not problems, "\n".join(problems)
    assert covered >= 35
    assert counts() == before_counts
    assert snapshot(world.workspace) == before_rows


def test_a_key_lacking_the_scope_gets_403_insufficient_scope(document, world):
    problems, covered = [], 0
    keys: dict[str, KeyedClient] = {}
    for path, method, operation in operations(document, with_path_parameter=None):
        url = world.url(path)
        view = view_class(url)
        scope = view.required_scopes[method.upper()]
        if scope == "any":
            continue
        assert scope in ALL_SCOPES, (path, scope)
        if scope not in keys:
            keys[scope] = KeyedClient(make_key(world.workspace, scopes=[s for s in ALL_SCOPES if s != scope]))
        covered += 1
        problem = surface_error(view, send(keys[scope], method, url, operation), 403, "insufficient_scope")
        if problem:
            problems.append(f"{method.upper()} {path} (needs {scope}): {problem}")
    assert not problems, "\n".join(problems)
    assert covered >= 70


def ready_collection_source(world: World, text: str) -> None:
    """A ready source of the first workspace's collection, indexed by the real indexing code."""
    source = Source.objects.create(
        workspace=world.workspace,
        collection_id=world.collection,
        type="text",
        name="Logbooks",
        content=text,
        queued_at=timezone.now(),
    )
    claim = source_claim(source.id)
    assert source_index(
        claim=claim, source=source, extracted=Extracted(segments=[Segment(text)], title="Logbooks")
    )


def list_urls(world: World, path: str, operation: dict) -> list[str]:
    """The path with its required query parameters filled with a word the first workspace's knowledge holds, and
    once more with every filter that names an object set to the first workspace's object: a filter must not widen a
    list beyond the key's reach."""
    query = [p for p in operation.get("parameters", []) if p["in"] == "query"]
    required = {p["name"]: "Zebulon" for p in query if p.get("required")}
    by_filter = {
        "agent_id": world.mind,
        "collection_id": world.collection,
        "groupId": world.group,
        "actorId": world.member,
        "userID": world.member,
        "email": "ann@example.com",
    }
    filters = {}
    for parameter in query:
        name = parameter["name"]
        if name in by_filter:
            filters[name] = by_filter[name]
        else:
            assert not name.lower().endswith("id") and name != "email", f"{path}: no object for filter {name}"
    urls = [path + ("?" + urlencode(required) if required else "")]
    if filters:
        urls.append(path + "?" + urlencode({**required, **filters}))
    return urls


def test_lists_do_not_show_another_workspace_or_another_mind(document, world):
    """Every GET without a path parameter (lists, search, chat logs, audit logs) answered to a second workspace's
    key, and to a key restricted to the second mind, names none of the first mind's objects."""
    ready_source(
        Mind.objects.get(id=world.mind), "Keepers", ["Zebulon Marsh kept the light for forty winters."]
    )
    ready_collection_source(world, "Zebulon Ashby catalogued the keepers' logbooks.")
    workspace_objects = [
        world.workspace.id,
        world.workspace.webhook_secret,
        world.key,
        world.member,
        world.group,
    ]
    mind_objects = [
        world.mind,
        world.source,
        world.file,
        world.collection,
        world.collection_source,
        world.collection_file,
        world.conversation,
        world.message,
        "Zebulon Marsh",
        "Zebulon Ashby",
    ]
    intruder = KeyedClient(make_key(make_workspace("Intruder"), scopes="all"))
    restricted = KeyedClient(make_key(world.workspace, scopes="all", allowed_mind_ids=[world.other_mind]))
    leaks, listed = [], 0
    for path, method, operation in operations(document, with_path_parameter=False):
        if method != "get":
            continue
        listed += 1
        for url in list_urls(world, path, operation):
            for who, client, secret in (
                ("other workspace", intruder, workspace_objects + mind_objects),
                ("restricted key", restricted, mind_objects),
            ):
                response = client.get(url)
                assert response.status_code < 500, (url, response.status_code)
                shown = [value for value in secret if str(value) in response.content.decode()]
                if shown:
                    leaks.append(f"GET {url} to the {who}: {response.status_code} shows {shown}")
    # The control: the owner's own lists do show these objects, so the absence above means something.
    owner_minds = world.owner.get("/api/v1/minds").content.decode()
    assert world.mind in owner_minds and world.other_mind in owner_minds
    found = world.owner.post(f"/api/v1/minds/{world.mind}/search", {"query": "Who kept the light? Zebulon"})
    assert "Zebulon Marsh" in found.content.decode(), found.json()
    found = world.owner.post(
        f"/api/v1/collections/{world.collection}/search",
        {"query": "Zebulon Ashby catalogued the logbooks", "threshold": 0},
    )
    assert "Zebulon Ashby" in found.content.decode(), found.json()
    assert not leaks, "\n".join(leaks)
    assert listed >= 20


def test_bodies_naming_another_workspaces_objects_reach_nothing(world):
    """Ids in request bodies and fields (a model, an agent, a chat, a group, a file URL) are tenancy checks too: the
    second workspace, acting on its own objects, names the first workspace's and gets a 4xx, and nothing of the
    first workspace changes or becomes linked to the second's."""
    intruder_workspace = make_workspace("Intruder")
    intruder = KeyedClient(make_key(intruder_workspace, scopes="all"))
    own_mind = intruder.post("/api/v1/minds", {"name": "Own"}).json()["mind"]["id"]
    own_collection = intruder.post("/api/v1/collections", {"name": "Own docs"}).json()["collection"]["id"]
    own_member = intruder.post("/api/v1/members", {"email": "eve@example.com"}).json()["member"]["id"]
    own_group = intruder.post("/api/v1/groups", {"title": "Own staff"}).json()["group"]["id"]
    mind_file_url, collection_file_url = world.file_urls
    hello = [{"role": "user", "content": "Hello"}]
    cases = [
        ("post", "/api/v1/chat/completions", {"model": world.mind, "messages": hello}, 404),
        ("post", "/api/chat", {"agentId": world.mind, "message": "Hello"}, 404),
        ("post", "/api/chat", {"collectionId": world.collection, "message": "Hello"}, 404),
        ("post", "/api/chat", {"chatId": world.conversation, "message": "Hello"}, 404),
        ("post", "/api/agents", {"id": world.mind, "name": "Taken over"}, 404),
        ("post", "/api/agents", {"name": "Reader", "collections": [world.collection]}, 400),
        ("post", "/api/collections", {"id": world.collection, "name": "Taken over"}, 404),
        (
            "post",
            f"/api/v1/minds/{own_mind}/chat",
            {"message": "Hello", "conversationId": world.conversation},
            404,
        ),
        ("put", f"/api/v1/minds/{own_mind}/collections", {"collectionIds": [world.collection]}, 400),
        (
            "patch",
            f"/api/v1/minds/{own_mind}",
            {"visibility": "groups", "allowedGroupIds": [world.group]},
            400,
        ),
        ("patch", f"/api/v1/members/{own_member}", {"groupIds": [world.group]}, 400),
        ("patch", f"/api/v1/groups/{own_group}", {"memberIds": [world.member]}, 400),
        ("post", "/api/v1/groups", {"title": "Borrowed", "memberIds": [world.member]}, 400),
        ("patch", f"/api/v2/users/{own_member}", {"groups": [world.group]}, 400),
        (
            "post",
            "/api/v1/api-keys",
            {"name": "Borrowed", "scopes": ["minds:read"], "mindIds": [world.mind]},
            400,
        ),
        ("post", f"/api/v1/minds/{own_mind}/knowledge", {"type": "document", "fileUrl": mind_file_url}, 400),
        (
            "post",
            f"/api/v1/minds/{own_mind}/knowledge",
            {"type": "document", "fileUrl": collection_file_url},
            400,
        ),
        (
            "post",
            f"/api/v1/collections/{own_collection}/knowledge",
            {"type": "document", "fileUrl": mind_file_url},
            400,
        ),
        ("post", f"/api/v1/chatbots/{own_mind}/sources", {"type": "file", "fileUrl": mind_file_url}, 400),
    ]
    before_counts, before_rows = counts(), snapshot(world.workspace)
    problems = []
    # 404 where the id is the target (it does not exist for this key), 400 where it is a field of a valid request.
    for method, url, body, status in cases:
        response = getattr(intruder, method)(url, body)
        if response.status_code != status:
            problems.append(
                f"{method.upper()} {url} {body}: {response.status_code} {response.content[:300]!r}"
            )
    assert not problems, "\n".join(problems)
    assert counts() == before_counts
    assert snapshot(world.workspace) == before_rows
    victim_ids = {world.mind, world.collection, world.conversation, world.group, world.member, world.file}
    linked = [
        f"{label}: {value}"
        for label, rows in snapshot(intruder_workspace).items()
        for row in rows
        for value in victim_ids
        if value in json.dumps(row, default=str)
    ]
    assert not linked, linked


def test_an_own_parent_does_not_open_another_minds_children(document, world):
    """A path that starts with the caller's own mind, collection or conversation and ends with the first mind's
    source, file or message: the child must belong to the parent, for another workspace's key and for a key of the
    same workspace restricted to the second mind."""
    intruder_workspace = make_workspace("Intruder")
    intruder = KeyedClient(make_key(intruder_workspace, scopes="all"))
    own_mind = intruder.post("/api/v1/minds", {"name": "Own"}).json()["mind"]["id"]
    own_collection = intruder.post("/api/v1/collections", {"name": "Own docs"}).json()["collection"]["id"]
    own_turn = chat_complete(mind=Mind.objects.get(id=own_mind), message="Hello?")
    second_turn = chat_complete(mind=Mind.objects.get(id=world.other_mind), message="Hello?")
    second_collection = world.owner.post("/api/v1/collections", {"name": "Second docs"}).json()["collection"][
        "id"
    ]
    attached = world.owner.put(
        f"/api/v1/minds/{world.other_mind}/collections", {"collectionIds": [second_collection]}
    )
    assert attached.status_code == 200, attached.json()
    restricted = KeyedClient(make_key(world.workspace, scopes="all", allowed_mind_ids=[world.other_mind]))
    callers = [
        (
            "other workspace",
            intruder,
            {
                "mind_id": own_mind,
                "collection_id": own_collection,
                "conversation_id": own_turn.conversation_id,
            },
        ),
        (
            "restricted key",
            restricted,
            {
                "mind_id": world.other_mind,
                "collection_id": second_collection,
                "conversation_id": second_turn.conversation_id,
            },
        ),
    ]
    before_counts, before_rows = counts(), snapshot(world.workspace)
    problems, covered = [], 0
    for path, method, operation in operations(document):
        parameters = re.findall(r"\{(\w+)\}", path)
        if len(parameters) < 2:
            continue
        covered += 1
        for who, client, parents in callers:
            url = world.url(path, {parameters[0]: parents[parameters[0]]})
            problem = surface_error(view_class(url), send(client, method, url, operation), 404, "not_found")
            if problem:
                problems.append(f"{method.upper()} {url} ({who}): {problem}")
    assert not problems, "\n".join(problems)
    assert covered >= 9
    assert counts() == before_counts
    assert snapshot(world.workspace) == before_rows


def test_a_group_only_mind_is_closed_to_keys_outside_its_groups(document, world):
    """Every route naming a group-only mind is 403 `mind_access_denied` (TypingMind's own sentence) for a key of the
    workspace outside the mind's groups; its conversations and messages do not exist for that key (404)."""
    closed = world.owner.patch(
        f"/api/v1/minds/{world.mind}", {"visibility": "groups", "allowedGroupIds": [world.group]}
    )
    assert closed.status_code == 200, closed.json()
    outsider = KeyedClient(make_key(world.workspace, scopes="all"))
    before_counts, before_rows = counts(), snapshot(world.workspace)
    problems, covered = [], 0
    for path, method, operation in operations(document):
        parameters = set(re.findall(r"\{(\w+)\}", path))
        if parameters & {"conversation_id", "message_id"}:
            status, code = 404, "not_found"
        elif parameters & {"mind_id", "agent_id"}:
            status, code = 403, "mind_access_denied"
        else:
            continue
        covered += 1
        url = world.url(path)
        view = view_class(url)
        response = send(outsider, method, url, operation)
        problem = surface_error(view, response, status, code)
        if not problem and status == 403 and issubclass(view, TypingMindApiView):
            problem = None if response.json()["userMessage"] == AGENT_ACCESS_DENIED else response.json()
        if problem:
            problems.append(f"{method.upper()} {path}: {problem}")
    assert not problems, "\n".join(problems)
    assert covered >= 23
    assert counts() == before_counts
    assert snapshot(world.workspace) == before_rows
