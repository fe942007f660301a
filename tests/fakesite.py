"""A local HTTP server standing in for remote sites (web pages, feeds, audio, webhook receivers, LLM providers).

    with FakeSite() as site:
        site.route("/page", b"<html>…</html>", content_type="text/html")
        site.route("/moved", status=302, headers={"Location": "/page"})
        site.route("/hook", handler=lambda request: (500, {}, b"try again"))   # dynamic answers
        url = site.url("/page")
        …
        site.requests  # every request received: Request(method, path, headers, body)

The real client code (httpx, the openai SDK, feedparser…) talks to it over a real socket.
"""

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Request:
    method: str
    path: str
    headers: dict
    body: bytes


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    content_type: str = "text/plain"
    headers: dict = field(default_factory=dict)
    handler: Callable[[Request], tuple[int, dict, bytes]] | None = None


class FakeSite:
    def __init__(self, host: str = "127.0.0.1"):
        self.routes: dict[str, Route] = {}
        self.requests: list[Request] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output clean
                pass

            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                request = Request(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length) if length else b"",
                )
                site.requests.append(request)
                route = site.routes.get(self.path) or site.routes.get(self.path.split("?", 1)[0])
                if route is None:
                    status, headers, body = 404, {"Content-Type": "text/plain"}, b"not found"
                elif route.handler is not None:
                    status, headers, body = route.handler(request)
                else:
                    status, headers, body = (
                        route.status,
                        {"Content-Type": route.content_type, **route.headers},
                        route.body,
                    )
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    if not any(name.lower() == "content-length" for name in headers):
                        self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = do_HEAD = do_PUT = _serve

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.host = host
        self.port = self.server.server_address[1]

    def route(self, path: str, body: bytes | str = b"", **kwargs) -> "FakeSite":
        self.routes[path] = Route(body=body.encode() if isinstance(body, str) else body, **kwargs)
        return self

    def url(self, path: str = "/") -> str:
        return f"http://{self.host}:{self.port}{path}"

    def __enter__(self) -> "FakeSite":
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
