"""Security headers on every kind of response (API success and errors, public page, admin, 404s, health), HSTS
only over TLS declared by the proxy setting, and the admin under its own path (ADMIN_PATH)."""

import importlib.util
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.test.utils import override_settings

from minds.models import Mind
from tests.helpers import KeyedClient, make_key

pytestmark = pytest.mark.django_db

CONFIG = Path(__file__).resolve().parents[2] / "config"


@pytest.fixture
def published(workspace):
    return Mind.objects.create(workspace=workspace, name="Open", slug="open-headers", is_published=True)


def responses(workspace, published):
    key = make_key(workspace, scopes="all")
    api, anon = KeyedClient(key), Client()
    admin = Client()
    admin.force_login(User.objects.create_superuser("root-headers", "root@example.com", "pw"))
    return {
        "api list": api.get("/api/v1/minds"),
        "api detail": api.get(f"/api/v1/minds/{published.id}"),
        "api 400": api.post("/api/v1/minds", {"name": ""}),
        "api 401": KeyedClient("tr_live_" + "x" * 32).get("/api/v1/minds"),
        "api 404 object": api.get("/api/v1/minds/mind_missing"),
        "api 404 route": api.get("/api/v1/no-such-route"),
        "openapi": anon.get("/api/v1/openapi.json"),
        "public page": anon.get(f"/m/{published.slug}"),
        "public 404": anon.get("/m/nobody-here"),
        "public chat 404": anon.post("/m/nobody-here/chat", "{}", content_type="application/json"),
        "api 405": api.put("/api/v1/auth/verify", {}),
        "html 404": anon.get("/no/such/page"),
        "admin login": anon.get("/admin/login/"),
        "admin index": admin.get("/admin/"),
        "healthz": anon.get("/healthz"),
    }


def test_every_response_carries_nosniff_referrer_policy_and_framing_protection(workspace, published):
    for name, response in responses(workspace, published).items():
        assert response["X-Content-Type-Options"] == "nosniff", name
        # same-origin by default; the public page sends the origin only (an embedding site sees where it came from).
        assert response["Referrer-Policy"] in {"same-origin", "strict-origin-when-cross-origin"}, name
        # Clickjacking: X-Frame-Options everywhere, except the public page, which an allowed site may embed and
        # which says who may frame it with CSP frame-ancestors instead.
        framing = response.get("X-Frame-Options") or response.get("Content-Security-Policy", "")
        assert framing == "DENY" or "frame-ancestors" in framing, (name, framing)
        assert "Strict-Transport-Security" not in response, name  # plain HTTP: never pin browsers to TLS


def test_hsts_only_on_requests_the_declared_proxy_marks_as_tls(workspace, published):
    tls = {"X-Forwarded-Proto": "https"}
    with override_settings(
        SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"), SECURE_HSTS_SECONDS=3600
    ):
        key = make_key(workspace, scopes="all")
        for path in ("/api/v1/minds", "/api/v1/nothing", f"/m/{published.slug}", "/admin/login/"):
            over_tls = KeyedClient(key).get(path, headers=tls)
            assert over_tls["Strict-Transport-Security"] == "max-age=3600", path
            assert "Strict-Transport-Security" not in KeyedClient(key).get(path), path
    # Without the proxy setting a forged header is not believed.
    with override_settings(SECURE_HSTS_SECONDS=3600):
        assert "Strict-Transport-Security" not in Client().get("/healthz", headers=tls)


def test_security_settings_read_the_environment(monkeypatch):
    monkeypatch.setenv("SECURE_PROXY_SSL_HEADER", "X-Forwarded-Proto")
    monkeypatch.setenv("SECURE_HSTS_SECONDS", "31536000")
    monkeypatch.setenv("ADMIN_PATH", "/backoffice/")
    spec = importlib.util.spec_from_file_location("settings_from_env", CONFIG / "settings.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.SECURE_PROXY_SSL_HEADER == ("HTTP_X_FORWARDED_PROTO", "https")
    assert module.SECURE_HSTS_SECONDS == 31536000
    assert module.SESSION_COOKIE_SECURE and module.CSRF_COOKIE_SECURE
    assert module.ADMIN_PATH == "backoffice/"
    assert module.DEBUG is False  # off unless DJANGO_DEBUG says otherwise


def test_the_admin_lives_under_admin_path_only():
    # config/urls.py reads ADMIN_PATH when imported: load a fresh copy under the setting.
    name = "config.urls_admin_path"
    with override_settings(ADMIN_PATH="backoffice-7f3/"):
        spec = importlib.util.spec_from_file_location(name, CONFIG / "urls.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
            with override_settings(ROOT_URLCONF=name):
                client = Client()
                login = client.get("/backoffice-7f3/login/")
                assert login.status_code == 200 and b"password" in login.content
                assert client.get("/backoffice-7f3/").status_code == 302
                moved = client.get("/admin/login/")
                assert moved.status_code == 404 and b"password" not in moved.content
        finally:
            del sys.modules[name]
