"""An SSRF-safe HTTP client for everything the workers fetch on a user's behalf (pages, feeds, audio, webhooks).

- Only http(s), no credentials in the URL.
- The host is resolved once and EVERY address is checked: loopback, private, link-local (cloud metadata at
  169.254.169.254), CGNAT, multicast, reserved, unspecified, IPv6 unique-local, and IPv4 hidden inside IPv6
  (IPv4-mapped, 6to4, NAT64) are refused. Only globally routable addresses pass.
- The connection then goes to the checked address itself (the URL's host is replaced by the IP; the Host header
  and TLS SNI/certificate check keep the original name), so a DNS answer that changes between check and connect
  (DNS rebinding) cannot redirect the request inside.
- Redirects are followed by hand, each target checked again, at most 5.
- Bodies are streamed and capped in size; the whole exchange is capped in time: every socket read and write
  stops at the exchange's deadline (DeadlineBackend), so a server that trickles a byte now and then, which a
  per-read timeout never catches, cannot hold a worker past it.

`SSRF_ALLOW_LOOPBACK` (tests only, off by default) lets loopback addresses through so tests can serve pages locally.
"""

import functools
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlencode, urljoin, urlsplit, urlunsplit

import httpcore
import httpx
from django.conf import settings

from knowledge.errors import ExtractionError, TransientError, UrlNotAllowedError

MAX_REDIRECTS = 5
USER_AGENT = "MindsBot/1.0 (+knowledge ingestion)"
TRACKING_PARAMS = ("utm_", "fbclid", "gclid", "mc_cid", "mc_eid", "ref_src")
NAT64 = ipaddress.ip_network("64:ff9b::/96")
EXCERPT_BYTES = 2048  # of a webhook receiver's answer, kept with the attempt


@dataclass
class FetchResult:
    url: str
    status: int
    content_type: str = ""
    charset: str | None = None
    headers: dict = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True)
class Target:
    url: str
    host: str
    port: int
    ip: str


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped:
        return ip.ipv4_mapped
    if ip.sixtofour:
        return ip.sixtofour
    if ip.teredo:
        return ip.teredo[1]
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_refusal(address: str) -> str | None:
    """Why this address may not be fetched, or None when it is a public address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None:
            reason = address_refusal(str(inner))
            return f"{reason} (inside the IPv6 address {ip})" if reason else None
    if ip.is_loopback:
        return None if settings.SSRF_ALLOW_LOOPBACK else "a loopback address"
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_link_local:
        return "a link-local address (cloud metadata lives there)"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_private:
        return "a private network address"
    if ip.is_reserved:
        return "a reserved address"
    if not ip.is_global:
        return "an address that is not publicly routable"
    return None


def _resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise ExtractionError("fetch_failed", f"The host {host} could not be resolved.") from exc
    addresses = []
    for info in infos:
        address = info[4][0]
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise ExtractionError("fetch_failed", f"The host {host} has no address.")
    return addresses


# Names that always mean this machine or its network, whatever DNS answers (RFC 6761, RFC 8375, Debian's
# /etc/hosts aliases, mDNS): refused by name, so an unresolvable-now name cannot slip through at creation.
LOCAL_NAMES = ("localhost", "ip6-localhost", "ip6-loopback", "localhost.localdomain")
LOCAL_SUFFIXES = (".localhost", ".local", ".localdomain", ".internal", ".home.arpa")


def _ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _host_refusal(host: str) -> str | None:
    """Why a host may not be fetched, judged from its name alone (before any DNS)."""
    if "%" in host:
        return "IPv6 zone identifiers are not allowed."
    literal = _ip_literal(host)
    if literal is not None:
        reason = address_refusal(str(literal))
        return f"{host} is {reason}; only public addresses can be fetched." if reason else None
    if settings.SSRF_ALLOW_LOOPBACK:
        return None
    if host in LOCAL_NAMES or host.endswith(LOCAL_SUFFIXES) or "." not in host:
        return f"{host} names this machine or its local network; only public hosts can be fetched."
    return None


def _check(url: str, *, unresolvable_ok: bool = False) -> Target | None:
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - urlsplit only parses the port when asked; a bad one raises here
    except ValueError as exc:
        raise UrlNotAllowedError("This is not a valid URL (check its host and port).") from exc
    if parts.scheme not in ("http", "https"):
        raise UrlNotAllowedError(
            f"Only http and https URLs can be fetched, not {parts.scheme or 'this'}: {url[:200]}"
        )
    if parts.username or parts.password:
        raise UrlNotAllowedError("URLs with credentials are not allowed.")
    # A trailing dot is the same name to DNS ("localhost." is localhost); %-escapes are decoded as a resolver would.
    host = unquote(parts.hostname or "").rstrip(".")
    if not host:
        raise UrlNotAllowedError("The URL has no host.")
    refusal = _host_refusal(host)
    if refusal:
        raise UrlNotAllowedError(refusal)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = _resolve(host, port)
    except ExtractionError:
        if unresolvable_ok:
            return None
        raise
    for address in addresses:
        reason = address_refusal(address)
        if reason:
            raise UrlNotAllowedError(
                f"{host} resolves to {reason} ({address}); only public addresses can be fetched."
            )
    return Target(url=url.strip(), host=host, port=port, ip=addresses[0])


def validate_url(url: str) -> str:
    """Checks a URL a user gave (scheme, host, every resolved address); returns it or raises UrlNotAllowedError.

    A name that does not resolve right now is accepted: the fetch checks it again (and fails cleanly) later.
    """
    _check(url, unresolvable_ok=True)
    return url.strip()


def normalize_url(url: str) -> str:
    """The form used to detect the same page added twice: case, default port, fragment, tracking parameters."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port
    netloc = host if port in (None, 80 if scheme == "http" else 443) else f"{host}:{port}"
    if ":" in host and not host.startswith("["):
        netloc = f"[{host}]" + (f":{port}" if port not in (None, 80, 443) else "")
    query = sorted(
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not k.lower().startswith(TRACKING_PARAMS)
    )
    path = parts.path or "/"
    if len(path) > 1:
        path = path.rstrip("/") or "/"
    return urlunsplit((scheme, netloc, path, urlencode(query), ""))


def _pinned_request(client: httpx.Client, method: str, target: Target, **kwargs) -> httpx.Request:
    """A request to the checked IP that still presents the original host name (Host header, TLS SNI)."""
    parts = urlsplit(target.url)
    ip_host = f"[{target.ip}]" if ":" in target.ip else target.ip
    default_port = 443 if parts.scheme == "https" else 80
    netloc = ip_host if target.port == default_port else f"{ip_host}:{target.port}"
    pinned = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    host_header = target.host if target.port == default_port else f"{target.host}:{target.port}"
    headers = {"Host": host_header, "User-Agent": USER_AGENT, **kwargs.pop("headers", {})}
    return client.build_request(
        method, pinned, headers=headers, extensions={"sni_hostname": target.host}, **kwargs
    )


def _timeout(total: float) -> httpx.Timeout:
    return httpx.Timeout(total, connect=min(10.0, total))


def _time_left(deadline: float, timeout: float | None, error: type[Exception]) -> float:
    """The smaller of an operation's own timeout and the time left before the deadline; past it, `error`."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise error("The exchange's deadline passed.")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write waits at most until the deadline, whatever its own timeout."""

    def __init__(self, stream: httpcore.NetworkStream, deadline: float):
        self._stream = stream
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _time_left(self._deadline, timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _time_left(self._deadline, timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None) -> "_DeadlineStream":
        left = _time_left(self._deadline, timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, left), self._deadline)

    def get_extra_info(self, info: str):
        return self._stream.get_extra_info(info)


class DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's sockets, each bounded by one deadline (time.monotonic()) for the whole exchange."""

    def __init__(self, deadline: float):
        self._backend = httpcore.SyncBackend()
        self._deadline = deadline

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        left = _time_left(self._deadline, timeout, httpcore.ConnectTimeout)
        stream = self._backend.connect_tcp(host, port, left, local_address, socket_options)
        return _DeadlineStream(stream, self._deadline)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """The default TLS context (certificate and host name checks), built once per process: loading the CA bundle
    took about 160 ms a build on a loaded 2-core machine, paid by every fetch, webhook and tool call. A client context holds no connection state, so one is shared by every connection and thread."""
    return httpx.create_ssl_context(trust_env=False)


def _client(deadline: float, timeout: httpx.Timeout) -> httpx.Client:
    """An httpx client whose connections all stop at `deadline`. httpx has no total timeout and no way to pass a
    network backend, so its transport's connection pool is replaced by the same pool (default TLS verification)
    on the deadline-bound backend."""
    # The shared context given to the transport too, or its constructor loads the CA bundle again for nothing.
    transport = httpx.HTTPTransport(verify=_ssl_context(), trust_env=False)
    transport._pool = httpcore.ConnectionPool(
        ssl_context=_ssl_context(), network_backend=DeadlineBackend(deadline)
    )
    return httpx.Client(transport=transport, timeout=timeout, follow_redirects=False, trust_env=False)


def _classify_status(status: int, url: str) -> None:
    if status == 429 or status >= 500:
        raise TransientError(f"{url[:200]} answered HTTP {status}.")
    if status >= 400:
        raise ExtractionError("fetch_failed", f"{url[:200]} answered HTTP {status}.")


def _open(client: httpx.Client, url: str, deadline: float, accept: str | None) -> tuple[httpx.Response, str]:
    """Follows redirects by hand, checking each hop; returns the open (streaming) final response."""
    current = url
    for _hop in range(MAX_REDIRECTS + 1):
        target = _check(current)
        headers = {"Accept": accept} if accept else {}
        request = _pinned_request(client, "GET", target, headers=headers)
        try:
            response = client.send(request, stream=True)
        except httpx.TimeoutException as exc:
            raise TransientError(f"Timed out fetching {current[:200]}.") from exc
        except httpx.TransportError as exc:
            raise TransientError(f"Could not connect to {target.host}: {exc.__class__.__name__}.") from exc
        if response.status_code in (301, 302, 303, 307, 308) and "location" in response.headers:
            response.close()
            current = urljoin(current, response.headers["location"])
            if time.monotonic() > deadline:
                raise TransientError("Timed out following redirects.")
            continue
        return response, current
    raise ExtractionError("fetch_failed", f"Too many redirects (more than {MAX_REDIRECTS}) from {url[:200]}.")


def _read_capped(response: httpx.Response, max_bytes: int, deadline: float, sink=None) -> bytes:
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise ExtractionError(
            "file_too_large", f"The resource is larger than the {max_bytes // 2**20} MB allowed."
        )
    received = 0
    parts: list[bytes] = []
    try:
        for piece in response.iter_bytes(64 * 1024):
            received += len(piece)
            if received > max_bytes:
                raise ExtractionError(
                    "file_too_large", f"The resource is larger than the {max_bytes // 2**20} MB allowed."
                )
            if time.monotonic() > deadline:
                raise TransientError("The download took too long.")
            if sink is not None:
                sink.write(piece)
            else:
                parts.append(piece)
    except httpx.TimeoutException as exc:
        raise TransientError("Timed out while downloading.") from exc
    except httpx.TransportError as exc:
        raise TransientError(f"The connection broke while downloading ({exc.__class__.__name__}).") from exc
    return b"".join(parts)


def _result(response: httpx.Response, url: str, body: bytes) -> FetchResult:
    raw_type = response.headers.get("content-type", "")
    content_type = raw_type.split(";", 1)[0].strip().lower()
    charset = None
    for param in raw_type.split(";")[1:]:
        name, _, value = param.strip().partition("=")
        if name.lower() == "charset":
            charset = value.strip("\"' ") or None
    return FetchResult(url, response.status_code, content_type, charset, dict(response.headers), body)


def fetch(
    url: str, *, max_bytes: int, timeout: float | None = None, accept: str | None = None
) -> FetchResult:
    total = timeout or settings.FETCH_TIMEOUT_SECONDS
    deadline = time.monotonic() + total
    with _client(deadline, _timeout(total)) as client:
        response, final_url = _open(client, url, deadline, accept)
        try:
            _classify_status(response.status_code, final_url)
            body = _read_capped(response, max_bytes, deadline)
            return _result(response, final_url, body)
        finally:
            response.close()


def fetch_to_file(url: str, path: str, *, max_bytes: int, timeout: float | None = None) -> FetchResult:
    """Like fetch, but streams the body to `path` (for audio, which can be hundreds of MB)."""
    total = timeout or max(settings.FETCH_TIMEOUT_SECONDS, 600)
    deadline = time.monotonic() + total
    with _client(deadline, _timeout(settings.FETCH_TIMEOUT_SECONDS)) as client:
        response, final_url = _open(client, url, deadline, None)
        try:
            _classify_status(response.status_code, final_url)
            with open(path, "wb") as sink:
                _read_capped(response, max_bytes, deadline, sink=sink)
            return _result(response, final_url, b"")
        finally:
            response.close()


def post_json(url: str, body: bytes, headers: dict, timeout: float) -> tuple[int, str]:
    """POSTs a webhook: address checked and pinned like a fetch, no redirects followed. `timeout` bounds the whole
    exchange, the answer's body included, of which only the first bytes are read (the attempt's excerpt)."""
    target = _check(url)
    with _client(time.monotonic() + timeout, _timeout(timeout)) as client:
        request = _pinned_request(client, "POST", target, headers=headers, content=body)
        try:
            response = client.send(request, stream=True)
            try:
                excerpt = b""
                for piece in response.iter_bytes():
                    excerpt += piece
                    if len(excerpt) >= EXCERPT_BYTES:
                        break
            finally:
                response.close()
        except httpx.TimeoutException as exc:
            raise TransientError(f"The receiver timed out after {timeout:.0f} s.") from exc
        except httpx.TransportError as exc:
            raise TransientError(f"Could not connect to {target.host}: {exc.__class__.__name__}.") from exc
        return response.status_code, excerpt[:EXCERPT_BYTES].decode(errors="replace")[:500]


class ExchangeTimeout(TransientError):
    """`request` ran past its timeout (connecting, sending, or reading the answer)."""


@dataclass
class Exchange:
    """The answer to `request`: its status and headers, and the body's first `max_bytes` (`truncated` when the
    remote end had more)."""

    url: str
    status: int
    content_type: str = ""
    charset: str | None = None
    headers: dict = field(default_factory=dict)
    body: bytes = b""
    truncated: bool = False


def request(
    method: str,
    url: str,
    *,
    headers: dict | None = None,
    content: bytes | None = None,
    timeout: float,
    max_bytes: int,
    hop_check: Callable[[str], None] | None = None,
) -> Exchange:
    """One call on a user's behalf to a URL they configured (a mind's HTTP tools, its context endpoint).

    The address is checked and pinned like a fetch, and so is every redirect (at most MAX_REDIRECTS): 303, and
    301/302 after a POST, go on as a GET without the body, 307/308 keep both. `headers` go only to the URL's own
    origin: a redirect to another scheme, host or port drops them, since they may carry credentials. Any status is
    returned (the caller decides what a 404 means); the body is read up to `max_bytes` and the rest left unread.
    `hop_check(url)`, when given, is called for the URL and each redirect before it is requested and may raise
    UrlNotAllowedError (a caller's own rule, such as the hosts a tool may read). `timeout` bounds the whole exchange. Raises UrlNotAllowedError (refused address or scheme), ExchangeTimeout,
    TransientError (could not connect, connection broke) and ExtractionError (too many redirects).
    """
    deadline = time.monotonic() + timeout
    extra = dict(headers or {})
    origin = urlsplit(url.strip())[:2]
    current, verb, payload = url.strip(), method.upper(), content
    with _client(deadline, _timeout(timeout)) as client:
        for _hop in range(MAX_REDIRECTS + 1):
            if hop_check is not None:
                hop_check(current)
            target = _check(current)
            sent = extra if urlsplit(current)[:2] == origin else {}
            kwargs = {"content": payload} if payload is not None else {}
            pinned = _pinned_request(client, verb, target, headers=dict(sent), **kwargs)
            try:
                response = client.send(pinned, stream=True)
            except httpx.TimeoutException as exc:
                raise ExchangeTimeout(f"No answer within {timeout:g} s.") from exc
            except httpx.TransportError as exc:
                if time.monotonic() >= deadline:
                    raise ExchangeTimeout(f"No answer within {timeout:g} s.") from exc
                raise TransientError(
                    f"Could not connect to {target.host}: {exc.__class__.__name__}."
                ) from exc
            try:
                if response.status_code in (301, 302, 303, 307, 308) and "location" in response.headers:
                    current = urljoin(current, response.headers["location"])
                    if response.status_code == 303 or (response.status_code in (301, 302) and verb != "GET"):
                        verb, payload = "GET", None
                    continue
                body, truncated = _read_head(response, max_bytes, deadline, timeout)
                found = _result(response, current, body)
                return Exchange(
                    current, found.status, found.content_type, found.charset, found.headers, body, truncated
                )
            finally:
                response.close()
    raise ExtractionError("fetch_failed", f"Too many redirects (more than {MAX_REDIRECTS}).")


def _read_head(
    response: httpx.Response, max_bytes: int, deadline: float, timeout: float
) -> tuple[bytes, bool]:
    """The body's first `max_bytes`, and whether there was more."""
    received = b""
    try:
        for piece in response.iter_bytes(64 * 1024):
            received += piece
            if len(received) > max_bytes:
                return received[:max_bytes], True
            if time.monotonic() > deadline:
                raise ExchangeTimeout(f"No complete answer within {timeout:g} s.")
    except httpx.TimeoutException as exc:
        raise ExchangeTimeout(f"No complete answer within {timeout:g} s.") from exc
    except httpx.TransportError as exc:
        if time.monotonic() >= deadline:
            raise ExchangeTimeout(f"No complete answer within {timeout:g} s.") from exc
        raise TransientError(
            f"The connection broke while reading the answer ({exc.__class__.__name__})."
        ) from exc
    return received, False
