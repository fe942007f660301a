"""Task discipline: time limits on every task, retries of a source that back off for real, one webhook backoff.

The tasks run eagerly here (`apply`) on the real pipeline; the remote audio is a local site (tests.fakesite).
A stage stopped by its time limit in a real worker is in tests/test_worker_crash.py.
"""

import pytest
from django.conf import settings as django_settings

from config.celery import app
from knowledge import pipeline, tasks, webhooks
from knowledge.models import Source
from knowledge.pipeline import Result
from knowledge.source_states import source_claim
from minds.models import Mind
from tests.fakesite import FakeSite

STAGES = ("knowledge.source_process", "knowledge.source_transcribe")


def test_every_task_has_a_soft_and_a_hard_time_limit():
    knowledge_tasks = {name: task for name, task in app.tasks.items() if name.startswith("knowledge.")}
    assert set(STAGES) | {"knowledge.sources_sweep_stuck", "knowledge.webhook_deliver"} <= set(
        knowledge_tasks
    )
    for name, task in knowledge_tasks.items():
        assert 0 < task.soft_time_limit < task.time_limit, name
        if name not in STAGES:
            assert (task.soft_time_limit, task.time_limit) == (
                django_settings.CELERY_TASK_SOFT_TIME_LIMIT,
                django_settings.CELERY_TASK_TIME_LIMIT,
            ), name


def test_ingestion_stages_stop_before_the_sweeper_or_the_broker_would_step_in():
    visibility = django_settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    for name in STAGES:
        task = app.tasks[name]
        assert task.soft_time_limit == django_settings.SOURCE_STAGE_TIME_LIMIT_SECONDS, name
        assert task.soft_time_limit > django_settings.CELERY_TASK_SOFT_TIME_LIMIT, name
        assert task.time_limit < django_settings.SOURCE_PROCESSING_DEADLINE_SECONDS, name
        assert task.time_limit < visibility, name


def test_source_retry_backoff_doubles_up_to_its_cap():
    assert [tasks.retry_backoff(attempts) for attempts in range(1, 10)] == [
        5,
        10,
        20,
        40,
        80,
        160,
        300,
        300,
        300,
    ]


def test_webhook_retry_delay_doubles_from_the_configured_base(settings):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 10
    assert [webhooks.retry_delay(n) for n in (1, 2, 3, 4)] == [10, 20, 40, 80]


@pytest.mark.django_db
def test_a_transcription_that_keeps_failing_transiently_waits_longer_each_time(
    workspace, settings, monkeypatch, django_capture_on_commit_callbacks
):
    settings.SSRF_ALLOW_LOOPBACK = True
    settings.SOURCE_MAX_ATTEMPTS = 3
    retries = []
    monkeypatch.setattr(
        tasks.source_process,
        "apply_async",
        lambda args, countdown: retries.append((args, countdown)),
    )
    mind = Mind.objects.create(workspace=workspace, name="Listener", slug="listener-backoff")
    with FakeSite() as site:
        site.route("/episode.mp3", "busy", status=503)
        source = Source.objects.create(
            workspace=workspace, mind=mind, type="podcast", name="Ep", audio_url=site.url("/episode.mp3")
        )
        results = []
        for _ in range(settings.SOURCE_MAX_ATTEMPTS):
            with django_capture_on_commit_callbacks():  # the transcription task the stage queues: run below
                assert tasks.source_process.apply((source.id,)).get() == "transcribing"
            claimed_at = Source.objects.get(id=source.id).processing_started_at.isoformat()
            results.append(tasks.source_transcribe.apply((source.id, claimed_at)).get())

    assert results == ["retry", "retry", "failed"]
    assert retries == [((source.id,), 5), ((source.id,), 10)]
    source.refresh_from_db()
    assert source.status == "failed" and source.error_code == "fetch_failed" and source.attempts == 3


@pytest.mark.django_db
def test_a_task_that_finds_a_live_lease_waits_for_it_to_expire(workspace, settings):
    settings.SOURCE_LEASE_SECONDS = 30
    mind = Mind.objects.create(workspace=workspace, name="Keeper", slug="keeper-lease-wait")
    source = Source.objects.create(workspace=workspace, mind=mind, type="text", name="t", content="x")
    assert source_claim(source.id) is not None  # a live run holds the source
    outcome = pipeline.source_process(source.id)
    assert outcome.result is Result.NOT_CLAIMED
    assert 29 < tasks.lease_wait(outcome) <= 30 + tasks.LEASE_MARGIN_SECONDS  # look again once it may be dead
    assert tasks.lease_wait(outcome, eager=True) is None
    # Run in-process, the task does not retry (Celery would retry at once, again and again): it gives up.
    assert tasks.source_process.apply((source.id,)).get() == "not-claimed"
    Source.objects.filter(id=source.id).update(status="ready")
    assert tasks.lease_wait(pipeline.source_process(source.id)) is None  # finished: nothing to wait for
