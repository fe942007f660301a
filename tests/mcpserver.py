"""A real MCP server for tests: the official SDK's MCPServer (FastMCP in SDK 1.x) over streamable HTTP, served by
uvicorn on a free loopback port in a daemon thread.

    with McpTestServer() as server:
        server.url                      # http://127.0.0.1:<port>/mcp
        server.requests                 # every HTTP request received: McpRequest(method, path, headers)
        server.initializations()        # how many sessions were opened (initialize requests)
        server.add_echo_variant(...)    # change the tool set (for refresh tests)
        server.restart()                # same port, all sessions forgotten (the client must reconnect)
        server.stop()                   # down: connections are refused

`McpTestServer(require_headers={"Authorization": "Bearer t"})` answers 401 to requests without them.

Tools: echo(text), add(a, b), fail(message) (a tool error result), slow(seconds), big(size), whoami() (which
request headers the server saw, by name).
"""

import asyncio
import socket
import threading
import time
from dataclasses import dataclass

import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings


@dataclass
class McpRequest:
    method: str
    path: str
    headers: dict
    body: bytes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def build_server() -> MCPServer:
    mcp = MCPServer("test-tools", log_level="WARNING")

    @mcp.tool(description="Echo the text back.")
    def echo(text: str) -> str:
        return f"echo: {text}"

    @mcp.tool(description="Add two integers.")
    def add(a: int, b: int) -> int:
        return a + b

    @mcp.tool(description="Always fails with the given message.")
    def fail(message: str) -> str:
        raise ToolError(message)

    @mcp.tool(description="Sleeps, then answers.")
    async def slow(seconds: float) -> str:
        await asyncio.sleep(seconds)
        return "finally"

    @mcp.tool(description="A long answer of `size` characters.")
    def big(size: int) -> str:
        return "x" * size

    @mcp.tool(description="The names of the request headers the server saw.")
    def whoami(ctx: Context) -> str:
        headers = ctx.headers or {}
        return ",".join(sorted(k.lower() for k in headers))

    return mcp


class McpTestServer:
    def __init__(self, port: int | None = None, *, require_headers: dict | None = None):
        self.port = port or free_port()
        # Requests without these headers (lower-case names) are answered 401, as a server that checks a token.
        self.require_headers = {k.lower(): v for k, v in (require_headers or {}).items()}
        self.requests: list[McpRequest] = []
        self.mcp = build_server()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def initializations(self) -> int:
        return sum(1 for r in self.requests if r.method == "POST" and b'"initialize"' in r.body)

    def deletes(self) -> int:
        return sum(1 for r in self.requests if r.method == "DELETE")

    def _app(self):
        app = self.mcp.streamable_http_app(
            transport_security=TransportSecuritySettings(
                enable_dns_rebinding_protection=True,
                allowed_hosts=[f"127.0.0.1:{self.port}", "127.0.0.1:*"],
                allowed_origins=[],
            )
        )
        recorded = self.requests
        required = self.require_headers

        async def refuse(send):
            await send(
                {
                    "type": "http.response.start",
                    "status": 401,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": b'{"error": "unauthorized"}'})

        async def recording(scope, receive, send):
            if scope["type"] != "http":
                return await app(scope, receive, send)
            sent = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
            if any(sent.get(name) != value for name, value in required.items()):
                recorded.append(McpRequest(scope["method"], scope["path"], sent, b""))
                return await refuse(send)
            chunks: list[bytes] = []

            async def tapped_receive():
                message = await receive()
                if message.get("type") == "http.request":
                    chunks.append(message.get("body", b""))
                    if not message.get("more_body"):
                        recorded.append(
                            McpRequest(
                                scope["method"],
                                scope["path"],
                                {k.decode().lower(): v.decode() for k, v in scope["headers"]},
                                b"".join(chunks),
                            )
                        )
                return message

            if scope["method"] in ("GET", "DELETE"):
                recorded.append(
                    McpRequest(
                        scope["method"],
                        scope["path"],
                        {k.decode().lower(): v.decode() for k, v in scope["headers"]},
                        b"",
                    )
                )
                return await app(scope, receive, send)
            return await app(scope, tapped_receive, send)

        return recording

    def start(self) -> "McpTestServer":
        config = uvicorn.Config(
            self._app(),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="on",
            loop="asyncio",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True, name=f"mcp-test-{self.port}")
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test MCP server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._server = None
        self._thread = None

    def restart(self) -> None:
        """Down and up again on the same port with a new server: every session it knew is gone."""
        self.stop()
        self.mcp = build_server()
        self.start()

    def __enter__(self) -> "McpTestServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
