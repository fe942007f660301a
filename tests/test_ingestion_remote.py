"""Remote sources end to end with the real worker: web pages, PDFs behind redirects, podcast feeds, webhooks.

The remote sites are local servers (tests.fakesite); the worker may reach loopback only because the test worker
runs with SSRF_ALLOW_LOOPBACK=1 (off by default; see test_safe_http.py).
"""

import json

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from knowledge.models import Chunk, Source, WebhookDelivery
from minds.models import Mind
from tests.fakesite import FakeSite
from tests.helpers import wait_for
from tests.realfiles import article_html, fixture, two_column_pdf
from tests.test_ingestion_e2e import knowledge, wait_finished

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def mind(workspace):
    return Mind.objects.create(workspace=workspace, name="Researcher", slug="researcher-e2e")


@pytest.fixture
def loopback_allowed(settings):
    settings.SSRF_ALLOW_LOOPBACK = True  # the API process checks URLs too


def test_web_page_and_pdf_behind_a_redirect(api, mind, celery_worker, loopback_allowed):
    with FakeSite() as site:
        site.route("/duck", article_html(), content_type="text/html; charset=utf-8")
        site.route("/paper", status=302, headers={"Location": "/files/paper.pdf"})
        site.route(
            "/files/paper.pdf",
            two_column_pdf(),
            content_type="application/pdf",
        )
        site.route("/missing", "gone", status=404)
        ids = [
            api.post(knowledge(mind), {"type": "url", "url": site.url(path)}).json()["source"]["id"]
            for path in ("/duck", "/paper", "/missing")
        ]
        sources = wait_finished(api, mind, ids)
    page, paper, missing = (sources[i] for i in ids)
    assert page["status"] == "ready", page
    assert page["metadata"]["title"] == "Duck - Open Field Guide"
    text = " ".join(Chunk.objects.filter(source_id=page["id"]).values_list("content", flat=True))
    assert "Anatidae" in text and "Mallard" in text  # the article and its tables
    for clutter in ("Jump to content", "Portal section", "Search the guide", "Privacy policy"):
        assert clutter not in text  # without the navigation, search form and footer
    assert set(Chunk.objects.filter(source_id=page["id"]).values_list("url", flat=True)) == {page["url"]}
    assert paper["status"] == "ready" and paper["pageCount"] == 3
    assert (
        missing["status"] == "failed"
        and missing["errorCode"] == "fetch_failed"
        and "404" in missing["errorMessage"]
    )


def test_podcast_feed_takes_the_latest_episode(api, mind, celery_worker, loopback_allowed):
    with FakeSite() as site:
        site.route("/old.wav", b"not audio")
        site.route(
            "/episode.wav",
            fixture("audio/sense_and_sensibility_01_austen_64kb-0870.wav").read_bytes(),
            content_type="audio/wav",
        )
        feed = f"""<?xml version="1.0"?><rss version="2.0"><channel><title>Readings</title>
          <item><title>Chapter one</title><pubDate>Mon, 02 Nov 2026 10:00:00 GMT</pubDate>
            <enclosure url="{site.url("/episode.wav")}" type="audio/wav" length="1"/></item>
          <item><title>Prologue</title><pubDate>Mon, 26 Oct 2026 10:00:00 GMT</pubDate>
            <enclosure url="{site.url("/old.wav")}" type="audio/wav" length="1"/></item>
        </channel></rss>"""
        site.route("/feed.xml", feed, content_type="application/rss+xml")
        source_id = api.post(knowledge(mind), {"type": "podcast", "feedUrl": site.url("/feed.xml")}).json()[
            "source"
        ]["id"]
        source = wait_finished(api, mind, [source_id])[source_id]
    assert source["status"] == "ready", source
    assert source["metadata"]["episodeTitle"] == "Chapter one"
    assert source["transcribingStartedAt"] and source["durationSeconds"] > 5
    assert (
        "dashwood"
        in " ".join(Chunk.objects.filter(source_id=source_id).values_list("content", flat=True)).lower()
    )


def test_webhooks_are_signed_retried_and_recorded(api, mind, workspace, celery_worker, loopback_allowed):
    answers = iter([500, 503, 200])
    with FakeSite() as site:
        site.route(
            "/hook", handler=lambda request: (next(answers, 200), {"Content-Type": "text/plain"}, b"ok")
        )
        site.route("/hook-for-failures", "ok")
        ok = api.post(
            knowledge(mind),
            {"type": "text", "content": "Webhooks are signed.", "callbackUrl": site.url("/hook")},
        )
        # Only invisible characters: accepted, then failed as empty, never indexed as an empty document.
        bad = api.post(
            knowledge(mind),
            {"type": "text", "content": "\u200b\u200b", "callbackUrl": site.url("/hook-for-failures")},
        )
        assert ok.status_code == 201 and bad.status_code == 201, bad.json()
        source_id = ok.json()["source"]["id"]
        wait_for(
            lambda: WebhookDelivery.objects.filter(status="succeeded").count() == 2,
            timeout=90,
            what="both webhooks to be delivered",
        )
        failed = WebhookDelivery.objects.get(source_id=bad.json()["source"]["id"])
        assert (
            failed.event == "source.failed"
            and failed.payload["data"]["source"]["errorCode"] == "empty_content"
        )
        hooks = [r for r in site.requests if r.path == "/hook"]
    delivery = WebhookDelivery.objects.get(source_id=source_id)
    assert delivery.event == "source.ready" and delivery.attempt_count == 3
    assert [a.status_code for a in delivery.attempts.order_by("number")] == [500, 503, 200]
    assert len(hooks) >= 3
    last = hooks[-1]
    # The receiver verifies the Standard Webhooks signature with the workspace's secret.
    payload = Webhook(workspace.webhook_secret).verify(last.body, last.headers)
    assert payload["type"] == "source.ready" and payload["data"]["source"]["id"] == source_id
    assert payload["data"]["source"]["status"] == "ready"
    assert last.headers["webhook-id"] == delivery.id
    assert last.headers["webhook-signature"].startswith("v1,")
    with pytest.raises(WebhookVerificationError):
        Webhook(workspace.webhook_secret).verify(last.body.replace(b"ready", b"faked"), last.headers)
    # Sent twice with the same id (retries), the body is the same event.
    assert len({json.loads(r.body)["data"]["source"]["id"] for r in hooks}) == 1


def test_failed_source_notifies_and_gives_up_after_the_last_attempt(
    api, mind, celery_worker, loopback_allowed
):
    with FakeSite() as site:
        site.route("/dead-hook", "nope", status=500)
        site.route("/gone", "no", status=410)
        created = api.post(
            knowledge(mind), {"type": "url", "url": site.url("/gone"), "callbackUrl": site.url("/dead-hook")}
        )
        source_id = created.json()["source"]["id"]
        wait_for(
            lambda: WebhookDelivery.objects.filter(source_id=source_id, status="failed").exists(),
            timeout=120,
            what="the webhook to give up",
        )
    delivery = WebhookDelivery.objects.get(source_id=source_id)
    assert delivery.event == "source.failed" and delivery.attempt_count == 6
    assert all(a.status_code == 500 for a in delivery.attempts.all())
    assert Source.objects.get(id=source_id).error_code == "fetch_failed"
