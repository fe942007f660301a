"""Faults (issue 12, item 4): the database lost under requests and mid-stream, and an LLM that stalls mid-answer.

The shared PostgreSQL is never stopped: Django's connection goes through a TCP forwarder in the test (DbProxy),
which the test cuts (every open connection dropped, new ones closed on accept) and restores. While it is cut the
API answers 503 `service_unavailable` with `Retry-After`, and a chat stream ends with an `error` event; once it is
back the next request reconnects by itself.
"""

import json
import socket
import threading
import time

import pytest
from django.db import connections
from django.test import Client

from config.api.exception_handler import DATABASE_DOWN_MESSAGE
from conversations.models import Message
from minds.models import Mind
from tests.corpus_minds import ready_source
from tests.fakellm import FakeLLM
from tests.helpers import KeyedClient, make_key
from tests.test_public_page import VISITOR, make_mind, post_chat
from tests.test_search import LIGHTHOUSES


class DbProxy:
    """Forwards 127.0.0.1:<port> to the database; `cut()` drops every connection and refuses new ones until
    `restore()`."""

    def __init__(self, host: str, port: int):
        self.target = (host, port)
        self.up = True
        self.hanging = False
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            if not self.up:
                client.close()
                continue
            if self.hanging:  # accept, then never answer
                with self.lock:
                    self.sockets.append(client)
                continue
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        self.up = False
        with self.lock:
            for s in self.sockets:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
            self.sockets.clear()

    def hang(self) -> None:
        self.cut()
        self.up, self.hanging = True, True

    def restore(self) -> None:
        self.up, self.hanging = True, False

    def close(self) -> None:
        self.cut()
        self.listener.close()


@pytest.fixture
def db_proxy(transactional_db):
    """Django's default connection through a DbProxy (no wrapping transaction, so reconnecting is possible)."""
    connection = connections["default"]
    saved = connection.settings_dict["HOST"], connection.settings_dict["PORT"]
    saved_options = dict(connection.settings_dict.get("OPTIONS", {}))
    proxy = DbProxy(saved[0] or "127.0.0.1", int(saved[1] or 5432))
    connection.close()
    connection.settings_dict["HOST"], connection.settings_dict["PORT"] = "127.0.0.1", proxy.port
    try:
        yield proxy
    finally:
        connection.close()
        connection.settings_dict["HOST"], connection.settings_dict["PORT"] = saved
        connection.settings_dict["OPTIONS"] = saved_options
        proxy.close()


@pytest.fixture
def mind(transactional_db, workspace):
    mind = Mind.objects.create(workspace=workspace, name="Atlas", slug="atlas-faults")
    ready_source(mind, "Lighthouses", LIGHTHOUSES)
    return mind


@pytest.fixture
def api(workspace):
    # raise_request_exception=False: the response a real client would get, even when a view raised.
    return KeyedClient(
        make_key(workspace, scopes=["minds:read", "minds:chat"]), raise_request_exception=False
    )


def assert_unavailable(response) -> None:
    assert response.status_code == 503, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["status"] == "error" and body["code"] == "service_unavailable"
    assert int(response["Retry-After"]) >= 1


def sse_events(chunks) -> list[tuple[str, dict]]:
    events = []
    for block in b"".join(chunks).decode().strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_database_gone_is_a_503_with_retry_after_and_recovers_by_itself(db_proxy, api, mind, workspace):
    assert api.get(f"/api/v1/minds/{mind.id}").status_code == 200
    db_proxy.cut()
    assert_unavailable(api.get(f"/api/v1/minds/{mind.id}"))
    assert_unavailable(api.post(f"/api/v1/minds/{mind.id}/chat", {"message": "Who made the lens?"}))
    assert_unavailable(api.get("/api/v1/minds"))
    db_proxy.restore()
    again = api.get(f"/api/v1/minds/{mind.id}")
    assert again.status_code == 200 and str(mind.id) in again.content.decode()


def test_a_database_that_never_answers_is_a_503_within_the_connect_timeout(db_proxy, api, mind):
    connection = connections["default"]
    connection.settings_dict["OPTIONS"]["connect_timeout"] = 2  # libpq's minimum
    assert api.get(f"/api/v1/minds/{mind.id}").status_code == 200
    db_proxy.hang()
    connection.close()  # the next request must connect: to a server that accepts and never answers
    started = time.monotonic()
    assert_unavailable(api.get(f"/api/v1/minds/{mind.id}"))
    assert time.monotonic() - started < 30  # bounded by connect_timeout, not the TCP timeout
    db_proxy.restore()
    assert api.get(f"/api/v1/minds/{mind.id}").status_code == 200


def test_public_chat_json_is_a_503_too_when_the_database_is_gone(db_proxy, workspace):
    make_mind(workspace)
    client = Client(raise_request_exception=False)
    db_proxy.cut()
    assert_unavailable(post_chat(client, "keeper", {"message": "Who invented the Fresnel lens?"}))
    db_proxy.restore()
    assert post_chat(client, "keeper", {"message": "Who invented the Fresnel lens?"}).status_code == 200


def test_sse_stream_ends_with_an_error_event_when_the_database_dies_mid_answer(db_proxy, api, mind):
    response = api.post(f"/api/v1/minds/{mind.id}/chat", {"message": "Who made the lens?", "stream": True})
    chunks = iter(response.streaming_content)
    first = next(chunks)  # the question is saved and announced
    db_proxy.cut()
    events = sse_events([first, *chunks])
    assert events[0][0] == "conversation"
    assert events[-1] == ("error", {"code": "service_unavailable", "message": events[-1][1]["message"]})
    db_proxy.restore()
    conversation_id = events[0][1]["conversationId"]
    assert Message.objects.filter(conversation_id=conversation_id, role="user").count() == 1


def test_openai_stream_ends_with_an_error_chunk_and_done_when_the_database_dies(db_proxy, api, mind):
    response = api.post(
        "/api/v1/chat/completions",
        {"model": mind.slug, "stream": True, "messages": [{"role": "user", "content": "Who made the lens?"}]},
    )
    assert response.status_code == 200
    chunks = iter(response.streaming_content)
    first = next(chunks)
    db_proxy.cut()
    lines = [line for line in b"".join([first, *chunks]).decode().split("\n\n") if line]
    assert lines[-1] == "data: [DONE]"
    error = json.loads(lines[-2].removeprefix("data: "))
    assert error["error"]["code"] == "service_unavailable"
    db_proxy.restore()


@pytest.mark.parametrize("fmt", ["sse", "jsonl"])
def test_a_stalled_llm_ends_the_stream_with_an_error_and_keeps_the_partial_answer(api, mind, settings, fmt):
    with FakeLLM("Augustin Fresnel made the lighthouse lens [1].", stall_after=3) as fake:
        settings.OPENAI_BASE_URL = fake.base_url
        settings.LLM_STREAM_STALL_SECONDS = 3  # roomy: the first chunks must come in time on a busy machine
        body = {"message": "Who made the lens?", "stream": True, "format": fmt}
        raw = b"".join(api.post(f"/api/v1/minds/{mind.id}/chat", body).streaming_content).decode()
    if fmt == "sse":
        events = sse_events([raw.encode()])
    else:
        events = [(line["event"], line) for line in map(json.loads, raw.splitlines())]
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "conversation" and kinds[-1] == "error" and "token" in kinds
    assert events[-1][1]["code"] == "llm_unavailable"
    streamed = "".join(data["content"] for kind, data in events if kind == "token")
    answer = Message.objects.get(conversation_id=events[0][1]["conversationId"], role="assistant")
    assert answer.status == Message.Status.INTERRUPTED
    assert answer.content == streamed.strip()
    assert len(streamed.strip()) >= 10  # the three 5-character chunks sent before the stall
    assert "Augustin Fresnel made the lighthouse lens".startswith(answer.content)


def test_public_chat_stream_ends_with_an_error_event_when_the_database_dies_mid_answer(db_proxy, workspace):
    make_mind(workspace)
    client = Client(raise_request_exception=False)
    response = client.post(
        "/m/keeper/chat",
        json.dumps({"message": "Who invented the Fresnel lens?"}),
        content_type="application/json",
        HTTP_X_MINDS_VISITOR=VISITOR,
    )
    # The answer has begun, so the status (200) can no longer change: only an event can tell the failure.
    assert response.status_code == 200 and response.streaming
    chunks = iter(response.streaming_content)
    first = next(chunks)
    db_proxy.cut()
    events = sse_events([first, *chunks])
    assert events[0][0] == "conversation" and "token" in [kind for kind, _ in events]
    assert events[-1][0] == "error" and events[-1][1]["code"] == "service_unavailable"
    db_proxy.restore()


def test_openindex_stream_ends_with_an_error_line_when_the_database_dies_mid_answer(db_proxy, api, mind):
    response = api.post("/api/chat", {"agentId": mind.id, "message": "Who made the lens?", "streaming": True})
    assert response.status_code == 200 and response["Content-Type"].startswith("application/x-ndjson")
    chunks = iter(response.streaming_content)
    first = next(chunks)  # the question is saved and the chat announced
    db_proxy.cut()
    raw = b"".join([first, *chunks]).decode()
    assert raw.endswith("\n")
    lines = [json.loads(line) for line in raw.splitlines()]  # every line whole JSON, none cut
    assert lines[0]["type"] == "start"
    # OpenIndex's {ok, error} shape, saying what failed (not "Error running the language model.").
    assert lines[-1] == {"type": "error", "ok": False, "error": DATABASE_DOWN_MESSAGE}
    db_proxy.restore()
    assert Message.objects.filter(conversation_id=lines[0]["chatId"], role="user").count() == 1


def test_a_deadlock_is_a_503_that_says_to_retry_not_that_the_database_is_gone(transactional_db, workspace):
    """Two transactions lock two rows in opposite orders; PostgreSQL aborts one (SQLSTATE 40P01)."""
    import threading

    from django.db import OperationalError, connection, transaction

    from config.api.exception_handler import CONFLICT_MESSAGE, api_exception_handler
    from minds.models import Mind

    first = Mind.objects.create(workspace=workspace, name="One", slug="one-deadlock")
    second = Mind.objects.create(workspace=workspace, name="Two", slug="two-deadlock")
    both_locked_one = threading.Barrier(2, timeout=60)
    errors: list[BaseException] = []

    def lock(a, b):
        try:
            with transaction.atomic():
                Mind.objects.select_for_update().get(id=a.id)
                both_locked_one.wait()
                Mind.objects.select_for_update().get(id=b.id)
        except OperationalError as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=lock, args=pair) for pair in ((first, second), (second, first))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(errors) == 1, errors
    response = api_exception_handler(errors[0], {})
    assert response.status_code == 503 and response["Retry-After"]
    assert response.data["code"] == "service_unavailable" and response.data["message"] == CONFLICT_MESSAGE
