"""The SSRF guard: every class of internal address is refused, redirects are re-checked, DNS answers are pinned."""

import socket

import pytest

from knowledge import safe_http
from knowledge.errors import ExtractionError
from tests.fakesite import FakeSite

BLOCKED = [
    "127.0.0.1",
    "127.5.5.5",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",
    "224.0.0.1",
    "240.0.0.1",
    "255.255.255.255",
    "::1",
    "fd00::1",
    "fe80::1",
    "::",
    "::ffff:127.0.0.1",
    "::ffff:169.254.169.254",
    "2002:7f00:1::",
    "64:ff9b::a00:1",
    "ff02::1",
]


@pytest.fixture(autouse=True)
def no_loopback(settings):
    settings.SSRF_ALLOW_LOOPBACK = False


def fake_dns(monkeypatch, answers: dict[str, list[str]]):
    """Replaces the OS resolver (the boundary) with fixed answers; a list of lists gives successive answers."""
    real = socket.getaddrinfo
    calls: dict[str, int] = {}

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in answers:
            return real(host, port, *args, **kwargs)
        calls[host] = calls.get(host, 0) + 1
        answer = answers[host]
        ips = answer[min(calls[host], len(answer)) - 1] if isinstance(answer[0], list) else answer
        return [
            (socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))
            for ip in ips
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return calls


@pytest.mark.parametrize("address", BLOCKED)
def test_internal_addresses_are_refused(address):
    assert safe_http.address_refusal(address) is not None
    host = f"[{address}]" if ":" in address else address
    with pytest.raises(ExtractionError) as caught:
        safe_http.validate_url(f"http://{host}/x")
    assert caught.value.code == "url_not_allowed"


@pytest.mark.parametrize("address", ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_pass(address):
    assert safe_http.address_refusal(address) is None


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/a",
        "file:///etc/passwd",
        "gopher://x/",
        "http://user:pw@example.com/",
        "http:///nohost",
    ],
)
def test_bad_schemes_credentials_and_hosts_are_refused(url):
    with pytest.raises(ExtractionError) as caught:
        safe_http.validate_url(url)
    assert caught.value.code == "url_not_allowed"


def test_a_name_is_refused_if_any_of_its_addresses_is_internal(monkeypatch):
    fake_dns(monkeypatch, {"mixed.test": ["93.184.216.34", "10.0.0.7"], "public.test": ["93.184.216.34"]})
    with pytest.raises(ExtractionError):
        safe_http.validate_url("https://mixed.test/")
    assert safe_http.validate_url("https://public.test/page") == "https://public.test/page"


def test_loopback_is_refused_by_default_and_allowed_only_by_the_test_setting(settings):
    with FakeSite() as site:
        site.route("/page", "hello", content_type="text/plain")
        with pytest.raises(ExtractionError) as caught:
            safe_http.fetch(site.url("/page"), max_bytes=1000)
        assert caught.value.code == "url_not_allowed"
        assert site.requests == []  # refused before any connection
        settings.SSRF_ALLOW_LOOPBACK = True
        result = safe_http.fetch(site.url("/page"), max_bytes=1000)
        assert result.status == 200 and result.body == b"hello" and result.content_type == "text/plain"


def test_each_redirect_is_checked_again(settings, monkeypatch):
    settings.SSRF_ALLOW_LOOPBACK = True
    with FakeSite() as site:
        site.route(
            "/to-metadata", status=302, headers={"Location": "http://169.254.169.254/latest/meta-data/"}
        )
        site.route("/ok", "fine")
        site.route("/hop", status=301, headers={"Location": "/ok"})
        assert safe_http.fetch(site.url("/hop"), max_bytes=100).body == b"fine"
        with pytest.raises(ExtractionError) as caught:
            safe_http.fetch(site.url("/to-metadata"), max_bytes=100)
        assert caught.value.code == "url_not_allowed"


def test_at_most_five_redirects(settings):
    settings.SSRF_ALLOW_LOOPBACK = True
    with FakeSite() as site:
        for i in range(7):
            site.route(f"/r{i}", status=302, headers={"Location": f"/r{i + 1}"})
        site.route("/r7", "end")
        with pytest.raises(ExtractionError) as caught:
            safe_http.fetch(site.url("/r0"), max_bytes=100)
        assert caught.value.code == "fetch_failed" and "redirect" in caught.value.message
        assert safe_http.fetch(site.url("/r2"), max_bytes=100).body == b"end"  # exactly five hops is fine


def test_size_is_capped_even_without_content_length(settings):
    settings.SSRF_ALLOW_LOOPBACK = True
    with FakeSite() as site:
        site.route("/big", b"x" * 5000)
        site.route(
            "/chunked",
            handler=lambda r: (
                200,
                {"Content-Type": "text/plain", "Connection": "close", "Content-Length": "10"},
                b"x" * 10,
            ),
        )
        with pytest.raises(ExtractionError) as caught:
            safe_http.fetch(site.url("/big"), max_bytes=1000)
        assert caught.value.code == "file_too_large"
        assert safe_http.fetch(site.url("/chunked"), max_bytes=1000).body == b"x" * 10


def test_connection_goes_to_the_checked_address_not_a_second_lookup(settings, monkeypatch):
    """DNS rebinding: the first answer is checked; a later answer (internal) must never be used."""
    settings.SSRF_ALLOW_LOOPBACK = True
    calls = fake_dns(monkeypatch, {"rebind.test": [["127.0.0.1"], ["10.0.0.1"]]})
    with FakeSite() as site:
        site.route("/page", "pinned")
        result = safe_http.fetch(f"http://rebind.test:{site.port}/page", max_bytes=100, timeout=5)
        assert result.body == b"pinned"
        assert calls["rebind.test"] == 1
        assert site.requests[0].headers["host"] == f"rebind.test:{site.port}"


def test_server_errors_are_transient_and_client_errors_are_not(settings):
    from knowledge.errors import TransientError

    settings.SSRF_ALLOW_LOOPBACK = True
    with FakeSite() as site:
        site.route("/down", "oops", status=503)
        site.route("/gone", "no", status=404)
        with pytest.raises(TransientError):
            safe_http.fetch(site.url("/down"), max_bytes=100)
        with pytest.raises(ExtractionError) as caught:
            safe_http.fetch(site.url("/gone"), max_bytes=100)
        assert caught.value.code == "fetch_failed" and "404" in caught.value.message


def test_normalize_url():
    assert (
        safe_http.normalize_url("HTTPS://Example.COM:443/a/?b=2&utm_source=x&a=1#frag")
        == "https://example.com/a?a=1&b=2"
    )
    assert safe_http.normalize_url("http://example.com") == "http://example.com/"
    assert safe_http.normalize_url("http://example.com:8080/x/") == "http://example.com:8080/x"
