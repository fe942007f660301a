"""Writes of knowledge sources and uploads: create, reprocess, delete.

Every write that checks a limit or a duplicate locks the mind row first, so two concurrent requests cannot both
pass the check. Work for the worker is queued only after the transaction commits.
"""

import hashlib
import re
from collections.abc import Callable

from django.conf import settings
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile as DjangoUploadedFile
from django.db import transaction
from django.utils import timezone

from accounts.audit import audit_record, values_shown
from config.api.errors import LimitExceeded, NotFound, ValidationFailed
from knowledge import safe_http
from knowledge.errors import (
    DuplicateSource,
    ExtractionError,
    FileTooLarge,
    SourceBusy,
    UnsupportedFileType,
    UrlNotAllowedError,
)
from knowledge.extractors.detect import detect_file
from knowledge.extractors.youtube import video_id as youtube_video_id
from knowledge.models import Chunk, Source, UploadedFile
from knowledge.tasks import source_process
from minds.models import Mind

FILE_ID_RE = re.compile(r"(?:^|/knowledge/files/)(file_[A-Za-z0-9]+)/?$")
HEAD_BYTES = 8192


# Uploads ---------------------------------------------------------------------------------------------------------


def upload_create(*, mind: Mind, file: DjangoUploadedFile) -> UploadedFile:
    """Checks the type from the bytes, the size by category, then streams the file to storage."""
    file.seek(0)
    head = file.read(HEAD_BYTES)
    file.seek(0)
    try:
        kind = detect_file(head, file.name or "")
    except ExtractionError as exc:
        raise UnsupportedFileType(exc.message) from exc
    limit = settings.MAX_AUDIO_BYTES if kind.category == "audio" else settings.MAX_DOCUMENT_BYTES
    if file.size > limit:
        raise FileTooLarge(
            f"A {kind.category} file may be at most {limit // (1024 * 1024)} MB; this one is "
            f"{file.size / (1024 * 1024):.1f} MB.",
            details={"maxBytes": limit, "fileSize": file.size},
        )
    digest = hashlib.sha256()
    for piece in file.chunks():
        digest.update(piece)
    file.seek(0)
    upload = UploadedFile(
        workspace_id=mind.workspace_id,
        mind=mind,
        file_name=_safe_file_name(file.name or f"upload.{kind.kind}", kind.kind),
        mime_type=kind.mime_type,
        file_size=file.size,
        category=kind.category,
        sha256=digest.hexdigest(),
    )
    upload.file.save(upload.file_name, file, save=False)  # streams chunk by chunk through the storage API
    try:
        upload.save()
    except Exception:
        default_storage.delete(upload.file.name)
        raise
    return upload


def _safe_file_name(name: str, kind: str) -> str:
    base = re.sub(r"[^A-Za-z0-9._ -]+", "_", name.rsplit("/", 1)[-1]).strip(" .") or "upload"
    return base[:200] if "." in base else f"{base[:190]}.{kind}"


# Sources ---------------------------------------------------------------------------------------------------------


def _check_url(url: str, field: str) -> str:
    try:
        return safe_http.validate_url(url)
    except ExtractionError as exc:
        raise UrlNotAllowedError(exc.message, details={"field": field}) from exc


def _upload_from_file_url(*, mind: Mind, file_url: str, category: str) -> UploadedFile:
    match = FILE_ID_RE.search(file_url.strip())
    upload = UploadedFile.objects.filter(id=match.group(1), mind=mind).first() if match else None
    if upload is None:
        raise ValidationFailed(
            "fileUrl must be a file uploaded to this mind with POST /minds/{id}/knowledge/upload.",
            details={"fields": {"fileUrl": ["Not a file uploaded to this mind."]}},
        )
    if upload.category != category:
        raise ValidationFailed(
            f"This source type needs a {category} file; the uploaded file is {upload.category}.",
            details={"fields": {"fileUrl": [f"Expected a {category} file."]}},
        )
    return upload


def _text_hash(text: str) -> str:
    normalized = re.sub(r"\s+", " ", text).strip()
    return hashlib.sha256(normalized.encode()).hexdigest()


def _check_limits_and_duplicates(*, mind: Mind, fields: dict) -> None:
    workspace = mind.workspace
    if Source.objects.filter(workspace=workspace).count() >= workspace.effective_sources_limit:
        raise LimitExceeded(
            f"The workspace has reached its limit of {workspace.effective_sources_limit} knowledge sources.",
            details={"limit": "sourcesLimit", "value": workspace.effective_sources_limit},
        )
    if Source.objects.filter(mind=mind).count() >= mind.effective_source_limit:
        raise LimitExceeded(
            f"This mind has reached its limit of {mind.effective_source_limit} knowledge sources.",
            details={"limit": "sourceLimit", "value": mind.effective_source_limit},
        )
    existing = None
    if fields.get("normalized_url"):
        existing = Source.objects.filter(mind=mind, normalized_url=fields["normalized_url"]).first()
    if existing is None and fields.get("content_hash"):
        existing = Source.objects.filter(mind=mind, content_hash=fields["content_hash"]).first()
    if existing is not None:
        raise DuplicateSource(
            f"This content is already in the mind as source {existing.id} ({existing.name}).",
            details={"existingSourceId": existing.id},
        )


def _required(value: str | None, field: str, kind: str) -> str:
    if not value:
        raise ValidationFailed(
            f"{field} is required for a {kind} source.",
            details={"fields": {field: [f"Required for a {kind} source."]}},
        )
    return value


def source_create(
    *,
    mind: Mind,
    kind: str,
    name: str | None = None,
    url: str | None = None,
    file_url: str | None = None,
    file_name: str | None = None,
    content: str | None = None,
    youtube_url: str | None = None,
    audio_url: str | None = None,
    feed_url: str | None = None,
    callback_url: str | None = None,
) -> Source:
    """Adds a source of `kind` in `pending` and queues it. Each kind reads its own input: `url`; `youtube_url`;
    `content` (text); `file_url` of an upload (document, or podcast); `audio_url` or `feed_url` (podcast)."""
    # URLs (SSRF rules) and the upload are checked before anything is locked or written.
    fields: dict = {"type": kind}
    if callback_url:
        fields["callback_url"] = _check_url(callback_url, "callbackUrl")
    if kind == Source.Type.URL:
        fields["url"] = _check_url(_required(url, "url", kind), "url")
        fields["normalized_url"] = safe_http.normalize_url(fields["url"])
        default_name = fields["url"]
    elif kind == Source.Type.YOUTUBE:
        video = youtube_video_id(_required(youtube_url, "youtubeUrl", kind))
        if not video:
            raise ValidationFailed(
                "youtubeUrl is not a YouTube video link (watch, youtu.be, embed or shorts).",
                details={"fields": {"youtubeUrl": ["Not a YouTube video URL."]}},
            )
        fields["youtube_video_id"] = video
        fields["url"] = f"https://www.youtube.com/watch?v={video}"
        fields["normalized_url"] = fields["url"]
        default_name = f"YouTube video {video}"
    elif kind == Source.Type.TEXT:
        fields["content"] = _required(content, "content", kind)
        fields["content_hash"] = _text_hash(fields["content"])
        default_name = (fields["content"].strip().splitlines() or ["Text"])[0][:80]
    elif kind == Source.Type.DOCUMENT or (kind == Source.Type.PODCAST and file_url):
        category = "document" if kind == Source.Type.DOCUMENT else "audio"
        upload = _upload_from_file_url(
            mind=mind, file_url=_required(file_url, "fileUrl", kind), category=category
        )
        fields.update(
            upload=upload,
            file_name=upload.file_name,
            mime_type=upload.mime_type,
            file_size=upload.file_size,
            content_hash=upload.sha256,
        )
        default_name = file_name or upload.file_name
    elif audio_url:
        fields["audio_url"] = _check_url(audio_url, "audioUrl")
        fields["normalized_url"] = safe_http.normalize_url(fields["audio_url"])
        default_name = fields["audio_url"]
    else:
        fields["feed_url"] = _check_url(_required(feed_url, "feedUrl", kind), "feedUrl")
        fields["normalized_url"] = safe_http.normalize_url(fields["feed_url"])
        default_name = fields["feed_url"]
    fields["name"] = ((name or "").strip() or default_name)[:255]

    with transaction.atomic():
        mind = Mind.objects.select_for_update().select_related("workspace").get(pk=mind.pk)
        _check_limits_and_duplicates(mind=mind, fields=fields)
        source = Source.objects.create(
            workspace_id=mind.workspace_id, mind=mind, queued_at=timezone.now(), **fields
        )
        _audit(
            source, "create", values_shown({"type": source.type, "mindId": source.mind_id, "url": source.url})
        )
        transaction.on_commit(lambda: source_enqueue(source.id))
    return source


def _audit(source: Source, action: str, changes: dict | None = None) -> None:
    audit_record(
        workspace=source.workspace_id,
        entity="source",
        entity_id=source.id,
        entity_name=source.name,
        action=action,
        changes=changes,
    )


def source_enqueue(source_id: str) -> None:
    source_process.delay(source_id)


def source_reprocess(*, source: Source) -> Source:
    """From pending, ready or failed back to pending; a URL source is fetched again by the worker."""
    with transaction.atomic():
        source = Source.objects.select_for_update().get(pk=source.pk)
        if source.status in Source.BUSY:
            raise SourceBusy(
                f"The source is {source.status}; reprocess it once it is ready or failed.",
                details={"status": source.status},
            )
        source.status = Source.Status.PENDING
        source.error_code = ""
        source.error_message = ""
        source.attempts = 0
        source.queued_at = timezone.now()
        source.ready_at = source.failed_at = source.deadline_at = None
        source.processing_started_at = source.transcribing_started_at = None
        source.save()
        _audit(source, "reprocess")
        transaction.on_commit(lambda: source_enqueue(source.id))
    return source


def source_delete(*, source: Source) -> str:
    """Removes the source and its chunks in one transaction, then its stored file if nothing else uses it."""
    with transaction.atomic():
        source = Source.objects.select_for_update().filter(pk=source.pk).first()
        if source is None:
            raise NotFound("Knowledge source not found.")
        deleted_id = source.id
        upload = source.upload
        _audit(source, "delete")
        Chunk.objects.filter(source=source).delete()
        source.delete()
        remove_file: Callable[[], None] = lambda: None  # noqa: E731
        if upload is not None and not upload.sources.exists():
            name = upload.file.name
            upload.delete()
            remove_file = lambda: default_storage.delete(name)  # noqa: E731
        transaction.on_commit(remove_file)
    return deleted_id
