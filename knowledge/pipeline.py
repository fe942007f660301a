"""Processing of one source: claim → obtain text (fetch / extract / transcribe) → chunk → embed → store.

The worker owns a source only through its *claim*: a conditional update that moves it from `pending` (or from a
busy state whose deadline has passed) to `processing` and stamps `processing_started_at`. Every later write checks
that stamp, so a run that lost its claim (the source was deleted, reprocessed or swept after a crash) can never
overwrite the newer state or duplicate chunks.
"""

import logging
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from knowledge import extractors, safe_http
from knowledge.errors import ExtractionError, TransientError
from knowledge.extractors import audio, youtube
from knowledge.extractors import feed as feed_extractor
from knowledge.extractors.base import Extracted
from knowledge.extractors.detect import detect_file
from knowledge.indexing import source_index
from knowledge.models import Source

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Claim:
    source_id: str
    started_at: datetime

    def owned(self):
        """The queryset of the source while this claim still owns it."""
        return Source.objects.filter(
            id=self.source_id, processing_started_at=self.started_at, status__in=Source.BUSY
        )


def _deadline() -> datetime:
    return timezone.now() + timedelta(seconds=settings.SOURCE_PROCESSING_DEADLINE_SECONDS)


def source_claim(source_id: str) -> Claim | None:
    """Moves a pending source (or a busy one past its deadline) to processing; None if another run owns it."""
    now = timezone.now()
    claimable = Q(status=Source.Status.PENDING) | Q(status__in=Source.BUSY, deadline_at__lt=now)
    updated = Source.objects.filter(claimable, id=source_id).update(
        status=Source.Status.PROCESSING,
        processing_started_at=now,
        transcribing_started_at=None,
        attempts=F("attempts") + 1,
        deadline_at=_deadline(),
        error_code="",
        error_message="",
        updated_at=now,
    )
    return Claim(source_id, now) if updated else None


def source_fail(claim: Claim, code: str, message: str) -> bool:
    now = timezone.now()
    done = claim.owned().update(
        status=Source.Status.FAILED,
        error_code=code,
        error_message=message[:2000],
        failed_at=now,
        deadline_at=None,
        updated_at=now,
    )
    if done:
        _notify(claim.source_id)
    return bool(done)


def source_release_for_retry(claim: Claim, message: str) -> bool:
    """A transient failure: back to pending so the retried task can claim it again."""
    now = timezone.now()
    return bool(
        claim.owned().update(
            status=Source.Status.PENDING,
            error_message=message[:2000],
            queued_at=now,
            deadline_at=None,
            updated_at=now,
        )
    )


def _notify(source_id: str) -> None:
    from knowledge.webhooks import source_outcome_notify

    transaction.on_commit(lambda: source_outcome_notify(source_id))


# Stage 1: processing ---------------------------------------------------------------------------------------------


class NeedsTranscription(Exception):
    """The source is audio: hand it to the transcription queue."""


class RetryLater(Exception):
    """A transient failure released the source back to pending; the task retries it after a backoff."""


INTERNAL_ERROR_MESSAGE = "Processing failed unexpectedly. Reprocess the source to try again; if it fails again, report the source id."


@contextmanager
def _outcome(claim: Claim):
    """Turns every failure of a stage into the source's final state; only transient ones are retried."""
    try:
        yield
    except ExtractionError as exc:
        source_fail(claim, exc.code, exc.message)
    except TransientError as exc:
        attempts = Source.objects.filter(id=claim.source_id).values_list("attempts", flat=True).first() or 0
        if attempts < settings.SOURCE_MAX_ATTEMPTS and source_release_for_retry(claim, f"Retrying: {exc}"):
            raise RetryLater(str(exc)) from exc
        source_fail(
            claim, "fetch_failed", f"The source could not be fetched after {attempts} attempts: {exc}"
        )
    except Exception:
        logger.exception("source %s failed unexpectedly", claim.source_id)
        source_fail(claim, "internal_error", INTERNAL_ERROR_MESSAGE)


def source_process(source_id: str) -> str:
    """Runs the processing stage; returns what happened (for logs and tests)."""
    claim = source_claim(source_id)
    if claim is None:
        return "not-claimed"
    source = Source.objects.select_related("upload").get(id=source_id)
    outcome = "failed"
    with _outcome(claim):
        try:
            extracted = _obtain_text(source)
        except NeedsTranscription:
            return _hand_to_transcription(claim)
        outcome = _finish(claim, source, extracted)
    return outcome


def _hand_to_transcription(claim: Claim) -> str:
    from knowledge.tasks import source_transcribe

    now = timezone.now()
    moved = claim.owned().update(
        status=Source.Status.TRANSCRIBING,
        transcribing_started_at=now,
        deadline_at=_deadline(),
        updated_at=now,
    )
    if not moved:
        return "lost-claim"
    transaction.on_commit(lambda: source_transcribe.delay(claim.source_id, claim.started_at.isoformat()))
    return "transcribing"


def source_transcribe(source_id: str, claimed_at: str) -> str:
    """Runs the transcription stage for a source the processing stage handed over."""
    claim = Claim(source_id, datetime.fromisoformat(claimed_at))
    if not claim.owned().filter(status=Source.Status.TRANSCRIBING).exists():
        return "not-claimed"
    source = Source.objects.select_related("upload").get(id=source_id)
    outcome = "failed"
    with _outcome(claim), tempfile.TemporaryDirectory(prefix="minds-audio-") as workdir:
        path = _obtain_audio(source, Path(workdir))
        extracted = audio.transcribe(str(path))
        outcome = _finish(claim, source, extracted)
    return outcome


def _finish(claim: Claim, source: Source, extracted: Extracted) -> str:
    if not extracted.segments or not extracted.text.strip():
        raise ExtractionError("empty_content", "No text could be extracted from this source.")
    if source_index(claim=claim, source=source, extracted=extracted):
        _notify(source.id)
        return "ready"
    return "lost-claim"


def _obtain_text(source: Source) -> Extracted:
    """The text of a non-audio source; raises NeedsTranscription for audio, ExtractionError/TransientError."""
    kind = source.type
    if kind == Source.Type.TEXT:
        return extractors.extract_text(source.content.encode("utf-8"), markdown=True)
    if kind == Source.Type.DOCUMENT:
        return _extract_upload(source)
    if kind == Source.Type.URL:
        return _extract_url(source)
    if kind == Source.Type.YOUTUBE:
        captions = youtube.fetch_captions(source.youtube_video_id)
        if captions is not None and captions.segments:
            return captions
        raise NeedsTranscription()
    if kind == Source.Type.PODCAST:
        raise NeedsTranscription()
    raise ExtractionError("unsupported_file_type", f"Unknown source type {kind}.")


def _local_copy(name: str, directory: Path) -> Path:
    """Storage may be S3: parsers need a local file, copied in chunks (never whole in memory)."""
    target = directory / Path(name).name
    with default_storage.open(name, "rb") as src, open(target, "wb") as dst:
        for piece in iter(lambda: src.read(1024 * 1024), b""):
            dst.write(piece)
    return target


def _extract_upload(source: Source) -> Extracted:
    if source.upload is None:
        raise ExtractionError("file_missing", "The uploaded file of this source no longer exists.")
    with tempfile.TemporaryDirectory(prefix="minds-doc-") as workdir:
        path = _local_copy(source.upload.file.name, Path(workdir))
        with open(path, "rb") as handle:
            kind = detect_file(handle.read(8192), source.upload.file_name)
        return extractors.extract_file(str(path), kind.kind)


def _extract_url(source: Source) -> Extracted:
    result = safe_http.fetch(source.url, max_bytes=settings.FETCH_MAX_BYTES)
    ctype = result.content_type
    if ctype in ("text/html", "application/xhtml+xml") or (not ctype and result.body.lstrip()[:1] == b"<"):
        extracted = extractors.extract_html(result.body, result.url)
    elif ctype == "application/pdf" or result.body[:5] == b"%PDF-":
        with tempfile.TemporaryDirectory(prefix="minds-url-") as workdir:
            path = Path(workdir) / "page.pdf"
            path.write_bytes(result.body)
            extracted = extractors.extract_file(str(path), "pdf")
    elif ctype.startswith("text/") or ctype in ("application/json", "application/xml"):
        extracted = extractors.extract_text(result.body, markdown=ctype == "text/markdown")
    else:
        raise ExtractionError(
            "unsupported_file_type", f"The URL returned {ctype or 'an unknown type'}, not a page."
        )
    extracted.metadata.setdefault("finalUrl", result.url)
    if extracted.title:
        extracted.metadata.setdefault("title", extracted.title)
    return extracted


def _obtain_audio(source: Source, workdir: Path) -> Path:
    """A local audio file for the transcriber, from the upload, an audio URL, a feed's latest episode or YouTube."""
    if source.type == Source.Type.YOUTUBE:
        return Path(youtube.download_audio(source.youtube_video_id, str(workdir)))
    if source.upload is not None:
        return _local_copy(source.upload.file.name, workdir)
    audio_url = source.audio_url
    if source.feed_url:
        feed = safe_http.fetch(source.feed_url, max_bytes=settings.FETCH_MAX_BYTES)
        title, audio_url = feed_extractor.latest_episode(feed.body)
        Source.objects.filter(id=source.id).update(metadata={**source.metadata, "episodeTitle": title})
        source.metadata = {**source.metadata, "episodeTitle": title}
    if not audio_url:
        raise ExtractionError("file_missing", "This podcast source has no audio to transcribe.")
    path = workdir / "audio"
    safe_http.fetch_to_file(audio_url, str(path), max_bytes=settings.MAX_AUDIO_BYTES)
    return path


# The sweeper -----------------------------------------------------------------------------------------------------


def sources_sweep_stuck(now: datetime | None = None) -> dict:
    """Re-queues or fails sources a crashed worker left unfinished, and re-sends lost pending work.

    - busy past its deadline: back to pending and queued again while attempts remain, else failed
      (`processing_timeout`);
    - pending for longer than a deadline without being claimed (its message was lost): queued again.
    """
    from knowledge.tasks import source_process as source_process_task

    now = now or timezone.now()
    requeued, failed, resent = [], [], []
    for source in Source.objects.filter(status__in=Source.BUSY, deadline_at__lt=now).only("id", "attempts"):
        if source.attempts >= settings.SOURCE_MAX_ATTEMPTS:
            done = Source.objects.filter(id=source.id, status__in=Source.BUSY, deadline_at__lt=now).update(
                status=Source.Status.FAILED,
                error_code="processing_timeout",
                error_message=(
                    f"Processing did not finish in time after {source.attempts} attempts; "
                    "the source may be too large. Reprocess it to try again."
                ),
                failed_at=now,
                deadline_at=None,
                updated_at=now,
            )
            if done:
                failed.append(source.id)
                _notify(source.id)
            continue
        done = Source.objects.filter(id=source.id, status__in=Source.BUSY, deadline_at__lt=now).update(
            status=Source.Status.PENDING, queued_at=now, deadline_at=None, updated_at=now
        )
        if done:
            requeued.append(source.id)
    stale = now - timedelta(seconds=settings.SOURCE_PROCESSING_DEADLINE_SECONDS)
    for source_id in Source.objects.filter(status=Source.Status.PENDING, queued_at__lt=stale).values_list(
        "id", flat=True
    ):
        Source.objects.filter(id=source_id, status=Source.Status.PENDING).update(
            queued_at=now, updated_at=now
        )
        resent.append(source_id)
    for source_id in requeued + resent:
        transaction.on_commit(lambda source_id=source_id: source_process_task.delay(source_id))
    if requeued or failed or resent:
        logger.warning("sweeper requeued=%s failed=%s resent=%s", requeued, failed, resent)
    return {"requeued": requeued, "failed": failed, "resent": resent}
