"""What a new knowledge source is, before anything is queued: each kind's input checked into the row's fields, and
the row written under its owner's lock with the limits, the duplicate check and the audit record.

Two steps because the first one is slow and the second one must be short: `source_fields` checks URLs against the
SSRF rules (which resolves their hosts) and finds the upload, outside any transaction; `source_insert` runs in the
caller's transaction with the owner's row locked. The callers queue the work: knowledge.services.source_create
after its own commit, and the indexing of a `links()` page for the pages it links to (knowledge/links.py), which
must not import the services (they import the tasks, which import the pipeline).
"""

import hashlib
import re
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from accounts.audit import audit_record, values_shown
from config.api.errors import LimitExceeded, NotFound, ValidationFailed
from knowledge import safe_http
from knowledge.errors import DuplicateSource, ExtractionError, UrlNotAllowedError
from knowledge.extractors.youtube import video_id as youtube_video_id
from knowledge.models import Collection, Source, UploadedFile
from knowledge.passwords import password_encrypt
from minds.models import Mind

# What knowledge belongs to: a mind, or a collection several minds draw on.
Owner = Mind | Collection

FILE_ID_RE = re.compile(r"(?:^|/knowledge/files/)(file_[A-Za-z0-9]+)/?$")


def owner_of(mind: Mind | None, collection: Collection | None) -> Owner:
    if (mind is None) == (collection is None):
        raise ValueError("knowledge belongs to exactly one mind or one collection")
    return mind if mind is not None else collection


def owner_fields(owner: Owner) -> dict:
    return {"mind": owner} if isinstance(owner, Mind) else {"collection": owner}


def owner_word(owner: Owner) -> str:
    return "mind" if isinstance(owner, Mind) else "collection"


def source_owner(source: Source) -> Owner:
    return source.mind if source.mind_id else source.collection


def _owner_source_limit(owner: Owner) -> int:
    if isinstance(owner, Mind):
        return owner.effective_source_limit
    return owner.workspace.effective_source_limit_per_mind


def check_url(url: str, field: str) -> str:
    try:
        return safe_http.validate_url(url)
    except ExtractionError as exc:
        raise UrlNotAllowedError(exc.message, details={"field": field}) from exc


def _upload_from_file_url(*, owner: Owner, file_url: str, category: str) -> UploadedFile:
    match = FILE_ID_RE.search(file_url.strip())
    upload = UploadedFile.objects.filter(id=match.group(1), **owner_fields(owner)).first() if match else None
    if upload is None:
        word = owner_word(owner)
        raise ValidationFailed(
            f"fileUrl must be a file uploaded to this {word} with POST /{word}s/{{id}}/knowledge/upload.",
            details={"fields": {"fileUrl": [f"Not a file uploaded to this {word}."]}},
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


def _required(value: str | None, field: str, kind: str) -> str:
    if not value:
        raise ValidationFailed(
            f"{field} is required for a {kind} source.",
            details={"fields": {field: [f"Required for a {kind} source."]}},
        )
    return value


def source_fields(
    *,
    owner: Owner,
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
    metadata: dict | None = None,
    password: str | None = None,
    refresh_interval_hours: int | None = None,
) -> dict:
    """The new row's fields from the input of its kind: `url`; `youtube_url`; `content` (text); `file_url` of an
    upload (document, or podcast), a document's optional `password` (kept encrypted); `audio_url` or `feed_url`
    (podcast). Raises the error the API answers."""
    fields: dict = {"type": kind, "metadata": dict(metadata or {})}
    if callback_url:
        fields["callback_url"] = check_url(callback_url, "callbackUrl")
    if kind == Source.Type.URL:
        fields["url"] = check_url(_required(url, "url", kind), "url")
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
            owner=owner, file_url=_required(file_url, "fileUrl", kind), category=category
        )
        fields.update(
            upload=upload,
            file_name=upload.file_name,
            mime_type=upload.mime_type,
            file_size=upload.file_size,
            content_hash=upload.sha256,
        )
        if password and kind == Source.Type.DOCUMENT:
            fields["password_ciphertext"] = password_encrypt(password)
        default_name = file_name or upload.file_name
    elif audio_url:
        fields["audio_url"] = check_url(audio_url, "audioUrl")
        fields["normalized_url"] = safe_http.normalize_url(fields["audio_url"])
        default_name = fields["audio_url"]
    else:
        fields["feed_url"] = check_url(_required(feed_url, "feedUrl", kind), "feedUrl")
        fields["normalized_url"] = safe_http.normalize_url(fields["feed_url"])
        default_name = fields["feed_url"]
    fields["name"] = ((name or "").strip() or default_name)[:255]
    if refresh_interval_hours and (kind == Source.Type.URL or fields.get("feed_url")):
        fields["refresh_interval_hours"] = refresh_interval_hours
        fields["next_refresh_at"] = timezone.now() + timedelta(hours=refresh_interval_hours)
    return fields


def _check_limits_and_duplicates(*, owner: Owner, fields: dict) -> None:
    workspace = owner.workspace
    if Source.objects.filter(workspace=workspace).count() >= workspace.effective_sources_limit:
        raise LimitExceeded(
            f"The workspace has reached its limit of {workspace.effective_sources_limit} knowledge sources.",
            details={"limit": "sourcesLimit", "value": workspace.effective_sources_limit},
        )
    owned = Source.objects.filter(**owner_fields(owner))
    limit = _owner_source_limit(owner)
    if owned.count() >= limit:
        raise LimitExceeded(
            f"This {owner_word(owner)} has reached its limit of {limit} knowledge sources.",
            details={"limit": "sourceLimit", "value": limit},
        )
    existing = None
    if fields.get("normalized_url"):
        existing = owned.filter(normalized_url=fields["normalized_url"]).first()
    if existing is None and fields.get("content_hash"):
        existing = owned.filter(content_hash=fields["content_hash"]).first()
    if existing is not None:
        raise DuplicateSource(
            f"This content is already in the {owner_word(owner)} as source {existing.id} ({existing.name}).",
            details={"existingSourceId": existing.id},
        )


def owner_lock(owner: Owner) -> Owner | None:
    """Locks the owner's row and its workspace's, in one statement (so every path takes them in the same order);
    None when the owner was deleted meanwhile. Held until the caller's transaction ends.

    FOR NO KEY UPDATE, not FOR UPDATE: holders still queue behind each other (and behind a deletion of the
    owner), but rows that merely reference the owner go through. FOR UPDATE also blocks the FOR KEY SHARE that
    PostgreSQL's deferred foreign-key checks take at COMMIT, and a chat's new conversation (checking workspace,
    then mind) deadlocked with an upload locking mind, then workspace (bench/mixed_load.py; tests/test_owner_lock.py).
    """
    return (
        type(owner)
        .objects.select_for_update(no_key=True)
        .select_related("workspace")
        .filter(pk=owner.pk)
        .first()
    )


def source_insert(*, owner: Owner, fields: dict) -> Source:
    """Writes the source in `pending` (in a savepoint: a refusal leaves the caller's transaction usable)."""
    with transaction.atomic():
        # The owner's row lock serialises concurrent creations, so limits and duplicate checks hold; the
        # workspace's serialises the workspace-wide limit.
        locked = owner_lock(owner)
        if locked is None:
            raise NotFound(f"The {owner_word(owner)} no longer exists.")
        _check_limits_and_duplicates(owner=locked, fields=fields)
        # The upload was found before the lock: hold its row now, so the expiry of unattached uploads
        # (knowledge/upload_cleanup.py, which skips locked rows) cannot delete it under the new source.
        upload = fields.get("upload")
        if upload is not None and not UploadedFile.objects.select_for_update().filter(pk=upload.pk).exists():
            raise ValidationFailed(
                "The uploaded file has expired or was deleted; upload it again.",
                details={"fields": {"fileUrl": [f"Not a file uploaded to this {owner_word(owner)}."]}},
            )
        source = Source.objects.create(
            workspace_id=locked.workspace_id, **owner_fields(locked), queued_at=timezone.now(), **fields
        )
        audit_record(
            workspace=source.workspace_id,
            entity="source",
            entity_id=source.id,
            entity_name=source.name,
            action="create",
            changes=values_shown(
                {
                    "type": source.type,
                    "mindId": source.mind_id,
                    "collectionId": source.collection_id,
                    "url": source.url,
                    # That a password was given shows as "[redacted]"; its value is never recorded.
                    **({"password": True} if source.password_ciphertext else {}),
                }
            ),
        )
    return source
