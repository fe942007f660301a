"""No secret reaches a log: API keys (`tr_live_…`, and their random part alone) and webhook secrets (`whsec_…`, and
their base64 part) are searched for in everything a realistic flow logs — this process's log records at DEBUG, its
stderr, and the real worker's log file — through key creation, good, bad, revoked and near-miss keys, the secret's
rotation, a webhook delivery that fails once and is retried, and error responses. Also: the start-up check that
refuses the development secret key outside development runs (config/checks.py)."""

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from knowledge.models import WebhookDelivery
from minds.models import Mind
from tests.fakesite import FakeSite
from tests.helpers import KeyedClient, assert_error, make_key, wait_for

ROOT = Path(__file__).resolve().parents[2]


def secret_forms(secret: str) -> list[str]:
    """The secret and its random part: a log that cut the prefix off would still leak it."""
    for prefix in ("tr_live_", "whsec_"):
        if secret.startswith(prefix):
            return [secret, secret[len(prefix) :]]
    return [secret]


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_a_whole_flow_logs_no_key_and_no_webhook_secret(workspace, celery_worker, settings, caplog, capfd):
    settings.SSRF_ALLOW_LOOPBACK = (
        True  # the API checks the callback URL too; the test worker allows loopback
    )
    caplog.set_level(logging.DEBUG)
    worker_log_start = celery_worker.log_path.stat().st_size
    admin_key = make_key(workspace, scopes="all")
    admin = KeyedClient(admin_key)
    secrets = [admin_key]

    created = admin.post("/api/v1/api-keys", {"name": "ci", "scopes": ["minds:read", "minds:write"]})
    assert created.status_code == 201, created.json()
    key = created.json()["key"]
    secrets.append(key)
    assert KeyedClient(key).get("/api/v1/auth/verify").status_code == 200
    assert KeyedClient(None).get("/api/v1/minds", headers={"X-API-KEY": key}).status_code == 200
    # Near misses of a real key: one changed character, a truncated key, the right key with a wrong prefix.
    near = key[:-1] + ("A" if key[-1] != "A" else "B")
    for bad in (near, key[:-4], "tr_test_" + key[len("tr_live_") :]):
        assert_error(KeyedClient(bad).get("/api/v1/minds"), 401, "invalid_api_key")
    assert_error(KeyedClient(key).get("/api/v1/api-keys"), 403, "insufficient_scope")
    assert_error(KeyedClient(key).post("/api/v1/minds", {"name": ""}), 400, "validation_error")
    revoked = admin.post("/api/v1/api-keys", {"name": "gone", "scopes": ["minds:read"]}).json()
    secrets.append(revoked["key"])
    assert admin.delete(f"/api/v1/api-keys/{revoked['apiKey']['id']}").status_code == 200
    assert_error(KeyedClient(revoked["key"]).get("/api/v1/minds"), 401, "invalid_api_key")

    old_secret = admin.get("/api/v1/webhooks/secret").json()["secret"]
    new_secret = admin.post("/api/v1/webhooks/secret/rotate").json()["secret"]
    assert new_secret != old_secret
    secrets += [old_secret, new_secret]

    mind = Mind.objects.create(workspace=workspace, name="Quiet", slug="quiet-logs")
    calls = []

    def fails_once(request):
        calls.append(request)
        return (500, {}, b"try again") if len(calls) == 1 else (200, {}, b"ok")

    with FakeSite() as site:
        site.route("/hook", handler=fails_once)
        source = KeyedClient(key).post(
            f"/api/v1/minds/{mind.id}/knowledge",
            {"type": "text", "content": "Secrets stay out of logs.", "callbackUrl": site.url("/hook")},
        )
        assert source.status_code == 201, source.json()
        wait_for(
            lambda: WebhookDelivery.objects.filter(status="succeeded").exists(),
            timeout=120,
            what="the webhook delivered after one failure",
        )
    assert len(calls) == 2 and all(c.headers.get("webhook-signature") for c in calls)

    logged = {
        "log records": "\n".join(
            f"{r.getMessage()} {r.args!r} {getattr(r, 'request', '')!r} {r.exc_text or ''}"
            for r in caplog.records
        ),
        "stderr and stdout": "\n".join(capfd.readouterr()),
        "worker log": celery_worker.log_path.read_bytes()[worker_log_start:].decode(errors="replace"),
    }
    # The logs are not empty: the refusals and the delivery attempts were logged, so the search means something.
    assert "Unauthorized: /api/v1/minds" in logged["log records"]
    assert "webhook" in logged["worker log"].lower()
    for where, text in logged.items():
        for secret in secrets:
            for form in secret_forms(secret):
                assert form not in text, f"a secret ({form[:10]}…) is in the {where}"
        assert near not in text, f"a near-miss key is in the {where}"


def manage_check(**env) -> subprocess.CompletedProcess:
    clean = {
        k: v for k, v in os.environ.items() if k not in {"MINDS_DEV_RUN", "DJANGO_SECRET_KEY", "DJANGO_DEBUG"}
    }
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_development_secret_key_is_refused_when_debug_is_off_outside_dev_runs():
    refused = manage_check()
    assert refused.returncode == 1
    assert "minds.E001" in refused.stderr and "DJANGO_SECRET_KEY" in refused.stderr
    assert manage_check(DJANGO_SECRET_KEY="a-real-random-secret-" + "x" * 40).returncode == 0
    assert manage_check(MINDS_DEV_RUN="1").returncode == 0
    assert manage_check(DJANGO_DEBUG="1").returncode == 0


def test_gunicorn_started_on_its_own_refuses_the_development_secret_key():
    clean = {
        k: v for k, v in os.environ.items() if k not in {"MINDS_DEV_RUN", "DJANGO_SECRET_KEY", "DJANGO_DEBUG"}
    }
    # Port 0: it never gets as far as binding, but if it did, nothing here would collide.
    command = [sys.executable, "-m", "gunicorn", "config.wsgi", "-c", "config/gunicorn.conf.py"]
    started = subprocess.run(
        [*command, "-b", "127.0.0.1:0"],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert started.returncode != 0
    assert "minds.E001" in started.stderr + started.stdout
    assert "Booting worker" not in started.stderr
