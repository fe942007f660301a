"""MCP sessions for synchronous callers (Django views, Celery tasks, gunicorn threads).

The MCP SDK is async (anyio); Minds is not. Each process runs ONE asyncio event loop in a daemon thread
(`mcp-sessions`), started on first use. Callers hand it coroutines with `asyncio.run_coroutine_threadsafe` and wait
for the result with a timeout, so any number of threads can call at once; the loop serialises nothing but its own
bookkeeping.

A session (streamable HTTP + `ClientSession`, initialised once) is kept per (conversation id, server id) and reused
across the tool calls of a turn and across turns, so a server that keeps per-session state sees one conversation as
one session. Each session is owned by one task of the loop, which enters the SDK's context managers and leaves them
when the session closes (anyio's cancel scopes must be entered and left by the same task); callers only send
requests through it. A session is closed (the server is sent its DELETE) when it has been idle longer than
`MCP_SESSION_IDLE_SECONDS`, when the server's URL or headers changed, when its connection died, or when the process
holds `MAX_SESSIONS` and needs room (least recently used first). A server that forgot the session (HTTP 404 on a
known session id: it restarted, or expired it) is reconnected once, and the call sent again: the server did not run
it.

After a fork (gunicorn's preload, Celery's prefork pool) the child must not touch the parent's loop, thread or
sockets: `os.register_at_fork` forgets them in the child, which starts its own loop on first use.

Connections go through `safe_http_client`: every TCP connect resolves the host, checks EVERY address with the same
rule as knowledge/safe_http.py (only public addresses, loopback only when `SSRF_ALLOW_LOOPBACK`), and connects to
an address it checked, so a DNS answer cannot change between the check and the connect. The SDK itself follows
redirects only within the endpoint's origin (same scheme, host and port); a followed redirect connects through the
same check. Bytes read on one connection are capped (`MAX_CONNECTION_BYTES`).
"""

import asyncio
import atexit
import concurrent.futures
import logging
import os
import socket
import ssl
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
import httpcore2
import httpx2
from django.conf import settings
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import Implementation

from knowledge.safe_http import address_refusal

logger = logging.getLogger(__name__)

T = TypeVar("T")

MAX_SESSIONS = 256  # per process; the least recently used idle one is closed to make room
MAX_CONNECTION_BYTES = 16 * 2**20  # read on one connection, over its whole life
EXIT_CLOSE_SECONDS = 3.0  # given to closing the sessions when the process exits
USER_AGENT = "MindsBot/1.0 (+mcp client)"
CLIENT_INFO = Implementation(name="minds", version="1.0")
CONNECT_TIMEOUT = 10.0
REAP_EVERY_SECONDS = 5.0  # at most; a quarter of the idle time when that is shorter


class McpError(Exception):
    """A failure to reach or use an MCP server, with a stable code and a message safe to show (never a header)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class AddressRefused(httpcore2.ConnectError):
    """The host resolved to an address the SSRF rule refuses."""


@dataclass(frozen=True)
class Endpoint:
    """Where and how to connect. `headers` carries secret values: never log or show it."""

    url: str
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)


# --- The SSRF-safe HTTP client ------------------------------------------------------------------------------


class _CappedStream(httpcore2.AsyncNetworkStream):
    def __init__(
        self, stream: httpcore2.AsyncNetworkStream, budget: list[int], refusals: "Refusals | None" = None
    ):
        self._stream = stream
        self._budget = budget  # shared with the TLS-wrapped stream of the same connection
        self._refusals = refusals

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        data = await self._stream.read(max_bytes, timeout)
        self._budget[0] -= len(data)
        if self._budget[0] < 0:
            # The SDK turns the broken stream into "stream ended without a response": noted, to say why.
            if self._refusals is not None:
                self._refusals.oversized = True
            raise httpcore2.ReadError("The MCP server sent more than the connection allows.")
        return data

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._stream.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(self, ssl_context, server_hostname=None, timeout=None) -> "_CappedStream":
        return _CappedStream(
            await self._stream.start_tls(ssl_context, server_hostname, timeout), self._budget, self._refusals
        )

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class SafeBackend(httpcore2.AsyncNetworkBackend):
    """anyio's sockets, connected only to addresses checked at connect time (the name is resolved here, once)."""

    def __init__(self, refusals: "Refusals | None" = None):
        self._backend = httpcore2.AnyIOBackend()
        self._refusals = refusals

    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        host = host.strip("[]")
        try:
            with anyio.fail_after(timeout or CONNECT_TIMEOUT):
                infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except TimeoutError as exc:
            raise httpcore2.ConnectTimeout(f"Resolving {host} timed out.") from exc
        except (OSError, UnicodeError) as exc:
            raise httpcore2.ConnectError(f"The host {host} could not be resolved.") from exc
        addresses: list[str] = []
        for info in infos:
            address = str(info[4][0])
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise httpcore2.ConnectError(f"The host {host} has no address.")
        for address in addresses:
            reason = address_refusal(address)
            if reason:
                raise AddressRefused(f"{host} resolves to {reason}; only public addresses can be reached.")
        last: Exception | None = None
        for address in addresses:
            try:
                stream = await self._backend.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore2.ConnectError, httpcore2.ConnectTimeout) as exc:
                last = exc
                continue
            return _CappedStream(stream, [MAX_CONNECTION_BYTES], self._refusals)
        assert last is not None
        raise last

    async def connect_unix_socket(self, path, timeout=None, socket_options=None):
        raise httpcore2.ConnectError("Unix sockets are not allowed.")

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


class Refusals:
    """What the server refused over HTTP, which the SDK turns into a JSON-RPC error without the status: a 404 on a
    request that carried our session id (per the specification the session is gone and the client must open a new
    one), and the last 401 or 403 (the credentials); and an answer cut at the connection's byte cap."""

    def __init__(self):
        self.session_lost = False
        self.auth_status: int | None = None
        self.oversized = False

    def error(self) -> "McpError | None":
        if self.oversized:
            return McpError(
                "mcp_response_too_large",
                f"The MCP server sent more than {MAX_CONNECTION_BYTES // 2**10:,} KB on one connection; its "
                "answer was not read.",
            )
        if self.auth_status is not None:
            return McpError(
                "mcp_unauthorized",
                f"The MCP server refused the credentials (HTTP {self.auth_status}); check its secret headers.",
            )
        return None


_tls_lock = threading.Lock()
_tls: ssl.SSLContext | None = None


def _tls_context() -> ssl.SSLContext:
    """One TLS context per process (default verification, no environment CA overrides): building one loads the CA
    bundle, tens of milliseconds each time."""
    global _tls
    with _tls_lock:
        if _tls is None:
            _tls = httpx2.create_ssl_context(trust_env=False)
        return _tls


def safe_http_client(
    headers: tuple[tuple[str, str], ...] = (), *, refusals: Refusals | None = None
) -> httpx2.AsyncClient:
    """An httpx2 client for the MCP SDK: no environment proxies, no redirects of its own, every connect checked;
    the server's refusals are noted in `refusals`."""

    async def watch(response: httpx2.Response) -> None:
        if refusals is None:
            return
        if response.status_code == 404 and "mcp-session-id" in response.request.headers:
            refusals.session_lost = True
        elif response.status_code in (401, 403):
            refusals.auth_status = response.status_code

    tls = _tls_context()
    transport = httpx2.AsyncHTTPTransport(verify=tls, trust_env=False)
    transport._pool = httpcore2.AsyncConnectionPool(ssl_context=tls, network_backend=SafeBackend(refusals))
    return httpx2.AsyncClient(
        transport=transport,
        headers={"User-Agent": USER_AGENT, **dict(headers)},
        timeout=httpx2.Timeout(30.0, connect=CONNECT_TIMEOUT, read=300.0),
        follow_redirects=False,
        trust_env=False,
        event_hooks={"response": [watch]},
    )


# --- Errors ---------------------------------------------------------------------------------------------------


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        found: list[BaseException] = []
        for inner in exc.exceptions:
            found.extend(_leaves(inner))
        return found
    return [exc]


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def describe(exc: BaseException) -> McpError:
    """The failure as an McpError: refused address, unreachable, timeout, protocol error."""
    if isinstance(exc, McpError):
        return exc
    leaves = _leaves(exc)
    for leaf in leaves:
        for link in _chain(leaf):
            if isinstance(link, AddressRefused):
                return McpError("mcp_url_not_allowed", str(link))
    for leaf in leaves:
        for link in _chain(leaf):
            if isinstance(link, McpError):
                return link
            if isinstance(link, (httpx2.TimeoutException, httpcore2.TimeoutException, TimeoutError)):
                return McpError("mcp_timeout", "The MCP server did not answer in time.")
            if isinstance(link, (httpx2.ConnectError, httpcore2.ConnectError)):
                return McpError("mcp_unreachable", "The MCP server could not be reached (connection failed).")
            if isinstance(link, httpx2.HTTPStatusError):
                return McpError(
                    "mcp_unreachable", f"The MCP server answered HTTP {link.response.status_code}."
                )
            if isinstance(link, (httpx2.TransportError, httpcore2.NetworkError, httpcore2.ProtocolError)):
                return McpError("mcp_unreachable", "The connection to the MCP server broke.")
            if isinstance(link, MCPError):
                return McpError("mcp_protocol_error", f"The MCP server answered: {link.message[:300]}")
    return McpError("mcp_protocol_error", f"The MCP exchange failed ({leaves[0].__class__.__name__}).")


# --- Sessions -------------------------------------------------------------------------------------------------


class _Session:
    """One open MCP session, owned by its task `_own` (which enters and leaves the SDK's contexts)."""

    def __init__(self, key: tuple, endpoint: Endpoint):
        loop = asyncio.get_running_loop()
        self.key = key
        self.endpoint = endpoint
        self.last_used = time.monotonic()
        self.in_flight = 0
        self.dead = False
        self.refusals = Refusals()
        self.ready: asyncio.Future = loop.create_future()
        self.ready.add_done_callback(lambda f: f.cancelled() or f.exception())  # never "never retrieved"
        self._closing = asyncio.Event()
        self.task = loop.create_task(self._own(), name=f"mcp-session-{key[1]}")

    async def _own(self) -> None:
        try:
            async with safe_http_client(self.endpoint.headers, refusals=self.refusals) as http:
                async with streamable_http_client(self.endpoint.url, http_client=http) as (read, write):
                    async with ClientSession(read, write, client_info=CLIENT_INFO) as session:
                        await session.initialize()
                        if not self.ready.done():
                            self.ready.set_result(session)
                        await self._closing.wait()
        except BaseException as exc:
            if not self.ready.done():
                self.ready.set_exception(self.refusals.error() or describe(exc))
            elif not self._closing.is_set():
                logger.info("MCP session %s ended: %s", self.key[1], describe(exc).message)
        finally:
            self.dead = True
            if not self.ready.done():
                self.ready.set_exception(McpError("mcp_unreachable", "The MCP session closed."))

    def close(self) -> None:
        self.dead = True
        self._closing.set()
        if not self.ready.done():
            self.task.cancel()


class _Runtime:
    """The process's event loop thread and its sessions (touched only from the loop)."""

    def __init__(self):
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.sessions: dict[tuple, _Session] = {}
        self.thread = threading.Thread(target=self._run, name="mcp-sessions", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.create_task(self._reap_forever())
        self.loop.run_forever()

    async def _reap_forever(self) -> None:
        while True:
            idle = float(settings.MCP_SESSION_IDLE_SECONDS)
            await asyncio.sleep(max(0.05, min(REAP_EVERY_SECONDS, idle / 4)))
            try:
                self.reap(idle)
            except Exception:  # pragma: no cover - bookkeeping must never stop the loop
                logger.exception("MCP session reaper failed")

    def reap(self, idle: float) -> None:
        now = time.monotonic()
        for session in list(self.sessions.values()):
            if session.dead or (session.in_flight == 0 and now - session.last_used > idle):
                self.drop(session)

    def drop(self, session: _Session) -> None:
        if self.sessions.get(session.key) is session:
            del self.sessions[session.key]
        session.close()

    async def close_all(self, timeout: float) -> None:
        """Every session closed, each telling its server (the transport's DELETE), within `timeout`."""
        sessions = list(self.sessions.values())
        for session in sessions:
            self.drop(session)
        if sessions:
            await asyncio.wait([session.task for session in sessions], timeout=timeout)

    def _make_room(self) -> None:
        while len(self.sessions) >= MAX_SESSIONS:
            idle = [s for s in self.sessions.values() if s.in_flight == 0] or list(self.sessions.values())
            self.drop(min(idle, key=lambda s: s.last_used))

    async def session_for(
        self, key: tuple, endpoint: Endpoint, timeout: float
    ) -> tuple[_Session, ClientSession]:
        session = self.sessions.get(key)
        if session is not None and (session.dead or session.endpoint != endpoint):
            self.drop(session)
            session = None
        if session is None:
            self._make_room()
            session = _Session(key, endpoint)
            self.sessions[key] = session
        session.last_used = time.monotonic()
        try:
            client = await asyncio.wait_for(asyncio.shield(session.ready), timeout)
        except TimeoutError as exc:
            self.drop(session)
            raise McpError("mcp_timeout", "The MCP server did not open a session in time.") from exc
        except BaseException:
            self.drop(session)
            raise
        return session, client


_lock = threading.Lock()
_runtime: _Runtime | None = None


def _current() -> _Runtime:
    global _runtime
    runtime = _runtime
    if runtime is not None and runtime.pid == os.getpid() and runtime.thread.is_alive():
        return runtime
    with _lock:
        if _runtime is None or _runtime.pid != os.getpid() or not _runtime.thread.is_alive():
            _runtime = _Runtime()
        return _runtime


def _forget_after_fork() -> None:
    """In a forked child the loop thread does not exist; its loop and sockets belong to the parent."""
    global _lock, _runtime
    _lock = threading.Lock()
    _runtime = None


os.register_at_fork(after_in_child=_forget_after_fork)


def close_at_exit(timeout: float = EXIT_CLOSE_SECONDS) -> None:
    """At the process's exit, the open sessions are closed, so servers need not wait for their idle timeout."""
    runtime = _runtime
    if runtime is None or runtime.pid != os.getpid() or not runtime.thread.is_alive():
        return
    future = asyncio.run_coroutine_threadsafe(runtime.close_all(timeout), runtime.loop)
    try:
        future.result(timeout + 0.5)
    except Exception:  # exiting anyway: a server that does not answer keeps its session until its own timeout
        logger.info("MCP sessions not all closed at exit", exc_info=True)


atexit.register(close_at_exit)


def run(make: Callable[[_Runtime], Awaitable[T]], *, timeout: float) -> T:
    """Runs `make(runtime)` on the process's loop and waits at most `timeout` (plus a second's grace for the
    coroutine's own timeout to fire first and say what timed out)."""
    runtime = _current()
    future = asyncio.run_coroutine_threadsafe(make(runtime), runtime.loop)
    try:
        return future.result(timeout + 1.0)
    except concurrent.futures.TimeoutError as exc:
        future.cancel()
        raise McpError("mcp_timeout", "The MCP server did not answer in time.") from exc


# --- What callers use -----------------------------------------------------------------------------------------


async def _with_session(
    runtime: _Runtime,
    key: tuple,
    endpoint: Endpoint,
    action: Callable[[ClientSession, float], Awaitable[T]],
    timeout: float,
) -> T:
    deadline = time.monotonic() + timeout
    for attempt in (1, 2):
        left = deadline - time.monotonic()
        if left <= 0:
            raise McpError("mcp_timeout", "The MCP server did not answer in time.")
        session, client = await runtime.session_for(key, endpoint, left)
        session.in_flight += 1
        try:
            left = max(0.01, deadline - time.monotonic())
            return await asyncio.wait_for(action(client, left), left)
        except TimeoutError as exc:
            raise McpError("mcp_timeout", "The MCP server did not answer in time.") from exc
        except MCPError as exc:
            if attempt == 1 and session.refusals.session_lost:
                logger.info("MCP server %s forgot session; reconnecting", key[1])
                runtime.drop(session)
                continue
            refused = session.refusals.error()
            if refused is not None:
                runtime.drop(session)
                raise refused from exc
            raise
        except (asyncio.CancelledError, McpError):
            raise
        except BaseException as exc:
            runtime.drop(session)
            raise describe(exc) from exc
        finally:
            session.in_flight -= 1
            session.last_used = time.monotonic()
            if session.dead:
                runtime.drop(session)
    raise AssertionError("unreachable")  # pragma: no cover


def call_in_session(
    key: tuple[str, str],
    endpoint: Endpoint,
    action: Callable[[ClientSession, float], Awaitable[T]],
    *,
    timeout: float,
) -> T:
    """Runs `action(client_session, seconds_left)` in the kept session `key` (opened if needed), within
    `timeout`. Raises McpError (unreachable, refused, timeout) or the SDK's MCPError (the server's own error)."""
    return run(lambda runtime: _with_session(runtime, key, endpoint, action, timeout), timeout=timeout)


async def _once(endpoint: Endpoint, action: Callable[[ClientSession], Awaitable[T]], timeout: float) -> T:
    refusals = Refusals()
    try:
        with anyio.fail_after(timeout):
            async with safe_http_client(endpoint.headers, refusals=refusals) as http:
                async with streamable_http_client(endpoint.url, http_client=http) as (read, write):
                    async with ClientSession(read, write, client_info=CLIENT_INFO) as session:
                        await session.initialize()
                        return await action(session)
    except TimeoutError as exc:
        raise McpError("mcp_timeout", "The MCP server did not answer in time.") from exc
    except McpError:
        raise
    except BaseException as exc:
        if isinstance(exc, asyncio.CancelledError):
            raise
        raise (refusals.error() or describe(exc)) from exc


def call_once(endpoint: Endpoint, action: Callable[[ClientSession], Awaitable[T]], *, timeout: float) -> T:
    """A session of its own for one exchange (listing a server's tools), closed after it."""
    return run(lambda _runtime: _once(endpoint, action, timeout), timeout=timeout)


def open_sessions() -> list[tuple]:
    """The keys of this process's open sessions (for tests and the admin's curiosity)."""
    runtime = _runtime
    if runtime is None or runtime.pid != os.getpid():
        return []
    return run(lambda r: _keys(r), timeout=5)


async def _keys(runtime: _Runtime) -> list[tuple]:
    return [key for key, session in runtime.sessions.items() if not session.dead]


def close_all() -> None:
    """Closes every session of this process (tests; a worker shutting down)."""
    runtime = _runtime
    if runtime is None or runtime.pid != os.getpid():
        return
    run(lambda r: _close_all(r), timeout=10)


async def _close_all(runtime: _Runtime) -> None:
    sessions = list(runtime.sessions.values())
    for session in sessions:
        runtime.drop(session)
    for session in sessions:
        try:
            await asyncio.wait_for(asyncio.shield(session.task), 5)
        except BaseException:
            pass
