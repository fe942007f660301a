"""The state changes of a source (knowledge/source_states.py): each one wins only while its claim owns the source."""

from datetime import timedelta

import pytest
from django.utils import timezone

from knowledge.models import Source
from knowledge.source_states import (
    source_claim,
    source_claim_for_transcription,
    source_fail,
    source_hand_to_transcription,
    source_lease_expires_at,
    source_lease_renew,
    source_mark_ready,
    source_metadata_update,
    source_release_for_retry,
    sources_sweep,
)
from minds.models import Mind

pytestmark = pytest.mark.django_db


@pytest.fixture
def source(workspace):
    mind = Mind.objects.create(workspace=workspace, name="Keeper", slug="keeper-states")
    return Source.objects.create(
        workspace=workspace, mind=mind, type="text", name="t", content="x", queued_at=timezone.now()
    )


def row(source_id: str) -> dict:
    return Source.objects.filter(id=source_id).values().first()


def past_deadline(source_id: str) -> None:
    Source.objects.filter(id=source_id).update(deadline_at=timezone.now() - timedelta(seconds=1))


TRANSITIONS = {
    "fail": lambda claim: source_fail(claim, "corrupt_file", "The file is damaged."),
    "release_for_retry": lambda claim: source_release_for_retry(claim, "Retrying: timed out."),
    "hand_to_transcription": source_hand_to_transcription,
    "metadata_update": lambda claim: source_metadata_update(claim, {"episodeTitle": "Chapter one"}),
    "lease_renew": source_lease_renew,
    "mark_ready": lambda claim: source_mark_ready(
        claim,
        chunk_count=3,
        token_count=120,
        page_count=None,
        duration_seconds=None,
        embedding_model="model",
        metadata={"title": "T"},
        content_hash="abc",
    ),
}


def reclaimed(source_id: str) -> None:
    """The run hung past its deadline and another worker claimed the source."""
    past_deadline(source_id)
    assert source_claim(source_id) is not None


def lease_expired(source_id: str) -> None:
    Source.objects.filter(id=source_id).update(lease_expires_at=timezone.now() - timedelta(seconds=1))


def reclaimed_after_lease(source_id: str) -> None:
    """The claimant died (no heartbeat): well before the deadline, another worker claimed the source."""
    lease_expired(source_id)
    assert source_claim(source_id) is not None


def swept_after_lease(source_id: str) -> None:
    lease_expired(source_id)
    assert sources_sweep().requeued == [source_id]


def swept(source_id: str) -> None:
    """The run hung past its deadline and the sweeper put the source back to pending."""
    past_deadline(source_id)
    assert sources_sweep().requeued == [source_id]


def deleted(source_id: str) -> None:
    Source.objects.filter(id=source_id).delete()


@pytest.mark.parametrize("takeover", [reclaimed, swept, reclaimed_after_lease, swept_after_lease, deleted])
@pytest.mark.parametrize("transition", TRANSITIONS)
def test_a_transition_of_a_lost_claim_changes_nothing(source, transition, takeover):
    stale = source_claim(source.id)
    takeover(source.id)
    before = row(source.id)
    assert TRANSITIONS[transition](stale) is False
    assert row(source.id) == before


@pytest.mark.parametrize("transition", TRANSITIONS)
def test_a_transition_of_the_claim_that_owns_the_source_wins(source, transition):
    claim = source_claim(source.id)
    before = row(source.id)
    assert TRANSITIONS[transition](claim) is True
    assert row(source.id) != before


def test_claim_takes_a_pending_source_once_and_counts_the_attempt(source):
    claim = source_claim(source.id)
    assert claim is not None and source_claim(source.id) is None
    claimed = row(source.id)
    assert claimed["status"] == "processing" and claimed["attempts"] == 1
    assert claimed["processing_started_at"] == claim.started_at and claimed["deadline_at"] > claim.started_at


def test_claim_takes_over_a_busy_source_only_past_its_deadline(source):
    first = source_claim(source.id)
    assert source_claim(source.id) is None
    past_deadline(source.id)
    second = source_claim(source.id)
    assert second is not None and second.started_at > first.started_at
    assert row(source.id)["attempts"] == 2


@pytest.mark.parametrize("status", ["ready", "failed"])
def test_claim_leaves_a_finished_source_alone(source, status):
    Source.objects.filter(id=source.id).update(status=status)
    assert source_claim(source.id) is None and row(source.id)["status"] == status


def test_each_outcome_writes_its_state(source):
    claim = source_claim(source.id)
    assert source_release_for_retry(claim, "Retrying: timed out.")
    assert row(source.id)["status"] == "pending" and row(source.id)["deadline_at"] is None
    claim = source_claim(source.id)
    assert source_fail(claim, "corrupt_file", "x" * 5000)
    failed = row(source.id)
    assert failed["status"] == "failed" and failed["error_code"] == "corrupt_file"
    assert len(failed["error_message"]) == 2000 and failed["failed_at"] is not None


def test_transcription_continues_only_the_claim_that_handed_the_source_over(source):
    claim = source_claim(source.id)
    stamp = claim.started_at.isoformat()
    assert source_claim_for_transcription(source.id, stamp) is None  # not handed over yet
    assert source_hand_to_transcription(claim)
    assert source_hand_to_transcription(claim) is False  # only from processing
    handed = row(source.id)
    assert handed["status"] == "transcribing" and handed["transcribing_started_at"] is not None
    assert source_claim_for_transcription(source.id, stamp) == claim
    reclaimed(source.id)
    assert source_claim_for_transcription(source.id, stamp) is None


def test_sweep_resends_pending_work_whose_message_was_lost(source, settings):
    long_ago = timezone.now() - timedelta(seconds=settings.SOURCE_PROCESSING_DEADLINE_SECONDS + 5)
    Source.objects.filter(id=source.id).update(queued_at=long_ago)
    assert sources_sweep().resent == [source.id]
    assert row(source.id)["queued_at"] > long_ago
    assert sources_sweep().resent == []  # queued again just now: not stale any more


def test_claim_takes_the_lease_and_takes_over_a_busy_source_once_its_lease_expired(source, settings):
    settings.SOURCE_LEASE_SECONDS = 60
    first = source_claim(source.id)
    leased = row(source.id)["lease_expires_at"]
    assert leased - first.started_at == timedelta(seconds=60)
    assert source_claim(source.id) is None and sources_sweep().requeued == []  # a live claimant: left alone
    assert source_lease_expires_at(source.id) == leased  # when a redelivered task should look again
    lease_expired(source.id)  # the deadline is 30 minutes away: the lease alone lets the claim take over
    second = source_claim(source.id)
    assert second is not None and row(source.id)["attempts"] == 2
    assert source_lease_renew(first) is False and source_lease_renew(second) is True


def test_lease_renewal_extends_the_lease_of_the_claim_that_owns_the_source(source, settings):
    settings.SOURCE_LEASE_SECONDS = 5
    claim = source_claim(source.id)
    before = row(source.id)["lease_expires_at"]
    settings.SOURCE_LEASE_SECONDS = 60
    assert source_lease_renew(claim) is True and row(source.id)["lease_expires_at"] > before


def test_sweep_takes_over_a_source_whose_lease_expired_counting_attempts(source, settings):
    settings.SOURCE_MAX_ATTEMPTS = 2
    source_claim(source.id)
    lease_expired(source.id)
    assert sources_sweep().requeued == [source.id]
    requeued = row(source.id)
    assert requeued["status"] == "pending" and requeued["lease_expires_at"] is None
    source_claim(source.id)
    lease_expired(source.id)
    assert sources_sweep().failed == [source.id]  # the last attempt's claimant died too
    assert row(source.id)["error_code"] == "processing_timeout"


def test_a_source_waiting_for_transcription_holds_no_lease_and_its_stage_takes_it_once(source):
    claim = source_claim(source.id)
    stamp = claim.started_at.isoformat()
    assert source_hand_to_transcription(claim)
    assert row(source.id)["lease_expires_at"] is None  # waiting in the queue: only the deadline guards it
    assert source_claim(source.id) is None and sources_sweep().requeued == []
    assert source_claim_for_transcription(source.id, stamp) == claim
    assert row(source.id)["lease_expires_at"] is not None
    assert source_claim_for_transcription(source.id, stamp) is None  # a second delivery: the lease is live
    lease_expired(source.id)
    assert source_claim_for_transcription(source.id, stamp) == claim  # its transcriber died: resume
