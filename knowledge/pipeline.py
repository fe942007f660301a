"""Processing of one source: claim → obtain text (fetch / extract / transcribe) → chunk → embed → store.

Two stages, each run by a task of knowledge/tasks.py: `source_process` claims the source and obtains its text;
audio (a podcast, a YouTube video without captions) is handed on to `source_transcribe`, on its own queue. A stage
returns an `Outcome` and queues nothing: the task decides what follows (the transcription, a retry, the webhook).
Every status change goes through knowledge/source_states.py and is conditioned on the claim, so a run that lost
its claim stops without writing. A `links()` page (knowledge/links.py) also reports the sources its links became,
for the task to queue.
"""

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.files.storage import default_storage

from knowledge import extractors, safe_http
from knowledge.errors import ExtractionError, TransientError
from knowledge.extractors import audio, youtube
from knowledge.extractors import feed as feed_extractor
from knowledge.extractors.base import Extracted
from knowledge.extractors.clean import clean_extracted
from knowledge.extractors.detect import detect_file
from knowledge.feed_refresh import feed_refresh, holds_its_episode, remember_episodes
from knowledge.indexing import source_index
from knowledge.links import FOLLOW_LINKS, PageLinks, links_prepare, page_links
from knowledge.models import Source
from knowledge.passwords import password_decrypt
from knowledge.source_creation import source_owner
from knowledge.source_states import (
    Claim,
    lease_kept,
    source_claim,
    source_claim_for_transcription,
    source_fail,
    source_hand_to_transcription,
    source_lease_expires_at,
    source_metadata_update,
    source_release_for_retry,
)

logger = logging.getLogger(__name__)

INTERNAL_ERROR_MESSAGE = "Processing failed unexpectedly. Reprocess the source to try again; if it fails again, report the source id."
TIME_LIMIT_MESSAGE = (
    "Processing did not finish within its time limit; the source may be too large, or its file may make the "
    "parser hang. Reprocess it to try again."
)


class Result(StrEnum):
    READY = "ready"
    FAILED = "failed"
    RETRY_LATER = "retry"  # released to pending after a transient failure
    NEEDS_TRANSCRIPTION = "transcribing"
    LOST_CLAIM = "lost-claim"  # claimed, then taken over (deleted, reprocessed, swept) before the end
    NOT_CLAIMED = "not-claimed"  # another run owns the source, or it is finished


@dataclass(frozen=True)
class Outcome:
    result: Result
    source_id: str
    claim: Claim | None = None  # NEEDS_TRANSCRIPTION: the claim the transcription stage continues
    attempts: int = 0  # RETRY_LATER: the attempts made so far, for the backoff
    linked_source_ids: tuple[str, ...] = ()  # READY: sources a links() page added, to queue
    # NOT_CLAIMED while a live lease holds the source: when to look again, in case its claimant dies.
    lease_expires_at: datetime | None = None


class ClaimLost(Exception):
    """A conditional update of a step found the claim lost: the stage stops there."""


def source_process(source_id: str) -> Outcome:
    """The processing stage: claim, obtain the text (or hand audio to transcription), index."""
    claim = source_claim(source_id)
    if claim is None:
        return Outcome(Result.NOT_CLAIMED, source_id, lease_expires_at=source_lease_expires_at(source_id))
    source = Source.objects.select_related("upload").filter(id=source_id).first()
    if source is None:
        return Outcome(Result.LOST_CLAIM, source_id)
    return _run_stage(_process, claim, source)


def source_transcribe(source_id: str, claimed_at: str) -> Outcome:
    """The transcription stage, for a source the processing stage handed over with its claim."""
    claim = source_claim_for_transcription(source_id, claimed_at)
    if claim is None:
        handed = Claim(source_id, datetime.fromisoformat(claimed_at))
        return Outcome(
            Result.NOT_CLAIMED, source_id, lease_expires_at=source_lease_expires_at(source_id, handed)
        )
    source = Source.objects.select_related("upload").filter(id=source_id).first()
    if source is None:
        return Outcome(Result.LOST_CLAIM, source_id)
    return _run_stage(_transcribe, claim, source)


def _process(claim: Claim, source: Source) -> Outcome:
    if holds_its_episode(source):
        refreshed = feed_refresh(claim, source)
        if refreshed is None:
            return Outcome(Result.LOST_CLAIM, source.id)
        return Outcome(Result.READY, source.id, linked_source_ids=refreshed.linked_source_ids)
    extracted, links = _obtain_text(source)
    if extracted is not None:
        return _finish(claim, source, extracted, links)
    if source_hand_to_transcription(claim):
        return Outcome(Result.NEEDS_TRANSCRIPTION, source.id, claim=claim)
    return Outcome(Result.LOST_CLAIM, source.id)


def _transcribe(claim: Claim, source: Source) -> Outcome:
    with tempfile.TemporaryDirectory(prefix="minds-audio-") as workdir:
        path = _obtain_audio(claim, source, Path(workdir))
        return _finish(claim, source, audio.transcribe(str(path)))


def _run_stage(stage: Callable[[Claim, Source], Outcome], claim: Claim, source: Source) -> Outcome:
    """Turns every failure of a stage into the source's final state; only transient ones are retried.

    The claim's lease is renewed for the whole stage (extraction, transcription, embedding, the chunk swap): while
    it runs, a redelivered task or the sweeper leaves the source alone; once its process dies, they take over
    within SOURCE_LEASE_SECONDS."""
    try:
        with lease_kept(claim):
            return stage(claim, source)
    except ClaimLost:
        return Outcome(Result.LOST_CLAIM, claim.source_id)
    except ExtractionError as exc:
        return _fail(claim, exc.code, exc.message)
    except TransientError as exc:
        if source.attempts < settings.SOURCE_MAX_ATTEMPTS and source_release_for_retry(
            claim, f"Retrying: {exc}"
        ):
            return Outcome(Result.RETRY_LATER, claim.source_id, attempts=source.attempts)
        return _fail(
            claim, "fetch_failed", f"The source could not be fetched after {source.attempts} attempts: {exc}"
        )
    except SoftTimeLimitExceeded:
        # Not retried: a parser that hangs on this file would hang again. (A child killed at the hard limit cannot
        # say why it died; the sweeper retries its source until the attempts run out.)
        logger.warning("source %s: stage past its time limit", claim.source_id)
        return _fail(claim, "processing_timeout", TIME_LIMIT_MESSAGE)
    except Exception:
        logger.exception("source %s failed unexpectedly", claim.source_id)
        return _fail(claim, "internal_error", INTERNAL_ERROR_MESSAGE)


def _fail(claim: Claim, code: str, message: str) -> Outcome:
    failed = source_fail(claim, code, message)
    return Outcome(Result.FAILED if failed else Result.LOST_CLAIM, claim.source_id)


def _finish(claim: Claim, source: Source, extracted: Extracted, links: PageLinks | None = None) -> Outcome:
    # Every extractor's output passes here: NUL, lone surrogates and controls go before chunking and storing.
    extracted = clean_extracted(extracted)
    if not extracted.segments or not extracted.text.strip():
        raise ExtractionError("empty_content", "No text could be extracted from this source.")
    prepared = None
    if links is not None:
        prepared = links_prepare(owner=source_owner(source), page=source, links=links)
    indexed = source_index(claim=claim, source=source, extracted=extracted, links=prepared)
    if indexed is None:
        return Outcome(Result.LOST_CLAIM, source.id)
    return Outcome(Result.READY, source.id, linked_source_ids=indexed.linked_source_ids)


def _obtain_text(source: Source) -> tuple[Extracted | None, PageLinks | None]:
    """The text of the source (None when it is audio, to be transcribed) and, for a links() page, its links."""
    kind = source.type
    if kind == Source.Type.TEXT:
        return extractors.extract_text(source.content.encode("utf-8"), markdown=True), None
    if kind == Source.Type.DOCUMENT:
        return _extract_upload(source), None
    if kind == Source.Type.URL:
        return _extract_url(source)
    if kind == Source.Type.YOUTUBE:
        captions = youtube.fetch_captions(source.youtube_video_id)
        return (captions if captions is not None and captions.segments else None), None
    if kind == Source.Type.PODCAST:
        return None, None
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
            kind = detect_file(handle, source.upload.file_name)
        return extractors.extract_file(
            str(path), kind.kind, password=password_decrypt(source.password_ciphertext)
        )


def _extract_url(source: Source) -> tuple[Extracted, PageLinks | None]:
    result = safe_http.fetch(source.url, max_bytes=settings.FETCH_MAX_BYTES)
    ctype = result.content_type
    links = None
    if ctype in ("text/html", "application/xhtml+xml") or (not ctype and result.body.lstrip()[:1] == b"<"):
        extracted = extractors.extract_html(result.body, result.url)
        if source.metadata.get(FOLLOW_LINKS):
            links = page_links(result.body, result.url, result.charset)
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
    return extracted, links


def _obtain_audio(claim: Claim, source: Source, workdir: Path) -> Path:
    """A local audio file for the transcriber, from the upload, an audio URL, a feed's latest episode or YouTube."""
    if source.type == Source.Type.YOUTUBE:
        return Path(youtube.download_audio(source.youtube_video_id, str(workdir)))
    if source.upload is not None:
        return _local_copy(source.upload.file.name, workdir)
    audio_url = source.audio_url
    if source.feed_url:
        feed = safe_http.fetch(source.feed_url, max_bytes=settings.FETCH_MAX_BYTES)
        listed = feed_extractor.episodes(feed.body)
        audio_url = listed[0].audio_url
        # Shown while the (long) transcription runs; source_index keeps it when the source becomes ready. The
        # episodes listed now are remembered, so a refresh adds only later ones (knowledge/feed_refresh.py).
        source.metadata = remember_episodes(source.metadata, listed, listed[0])
        if not source_metadata_update(claim, source.metadata):
            raise ClaimLost()
    if not audio_url:
        raise ExtractionError("file_missing", "This podcast source has no audio to transcribe.")
    path = workdir / "audio"
    safe_http.fetch_to_file(audio_url, str(path), max_bytes=settings.MAX_AUDIO_BYTES)
    return path
