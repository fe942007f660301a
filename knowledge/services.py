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
from django.utils.text import slugify

from accounts.audit import audit_record, changes_between, values_shown
from accounts.models import Workspace
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
from knowledge.models import Chunk, Collection, Source, UploadedFile
from knowledge.tasks import source_process
from minds.models import Mind

# What knowledge belongs to: a mind, or a collection several minds draw on.
Owner = Mind | Collection


def _owner(mind: Mind | None, collection: Collection | None) -> Owner:
    if (mind is None) == (collection is None):
        raise ValueError("knowledge belongs to exactly one mind or one collection")
    return mind if mind is not None else collection


def _owner_fields(owner: Owner) -> dict:
    return {"mind": owner} if isinstance(owner, Mind) else {"collection": owner}


def _owner_word(owner: Owner) -> str:
    return "mind" if isinstance(owner, Mind) else "collection"


def _owner_source_limit(owner: Owner) -> int:
    if isinstance(owner, Mind):
        return owner.effective_source_limit
    return owner.workspace.effective_source_limit_per_mind


FILE_ID_RE = re.compile(r"(?:^|/knowledge/files/)(file_[A-Za-z0-9]+)/?$")
HEAD_BYTES = 8192


# Uploads ---------------------------------------------------------------------------------------------------------


def upload_create(
    *, mind: Mind | None = None, collection: Collection | None = None, file: DjangoUploadedFile
) -> UploadedFile:
    """Checks the type from the bytes, the size by category, then streams the file to storage."""
    owner = _owner(mind, collection)
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
        workspace_id=owner.workspace_id,
        **_owner_fields(owner),
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


def _upload_from_file_url(*, owner: Owner, file_url: str, category: str) -> UploadedFile:
    match = FILE_ID_RE.search(file_url.strip())
    upload = UploadedFile.objects.filter(id=match.group(1), **_owner_fields(owner)).first() if match else None
    if upload is None:
        word = _owner_word(owner)
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


def _check_limits_and_duplicates(*, owner: Owner, fields: dict) -> None:
    workspace = owner.workspace
    if Source.objects.filter(workspace=workspace).count() >= workspace.effective_sources_limit:
        raise LimitExceeded(
            f"The workspace has reached its limit of {workspace.effective_sources_limit} knowledge sources.",
            details={"limit": "sourcesLimit", "value": workspace.effective_sources_limit},
        )
    owned = Source.objects.filter(**_owner_fields(owner))
    limit = _owner_source_limit(owner)
    if owned.count() >= limit:
        raise LimitExceeded(
            f"This {_owner_word(owner)} has reached its limit of {limit} knowledge sources.",
            details={"limit": "sourceLimit", "value": limit},
        )
    existing = None
    if fields.get("normalized_url"):
        existing = owned.filter(normalized_url=fields["normalized_url"]).first()
    if existing is None and fields.get("content_hash"):
        existing = owned.filter(content_hash=fields["content_hash"]).first()
    if existing is not None:
        raise DuplicateSource(
            f"This content is already in the {_owner_word(owner)} as source {existing.id} ({existing.name}).",
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
    mind: Mind | None = None,
    collection: Collection | None = None,
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
    """Adds a source of `kind` to a mind or a collection, in `pending`, and queues it. Each kind reads its own
    input: `url`; `youtube_url`; `content` (text); `file_url` of an upload (document, or podcast); `audio_url` or
    `feed_url` (podcast)."""
    owner = _owner(mind, collection)
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
            owner=owner, file_url=_required(file_url, "fileUrl", kind), category=category
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
        # The owner's row lock serialises concurrent creations, so limits and duplicate checks hold.
        owner = type(owner).objects.select_for_update().select_related("workspace").get(pk=owner.pk)
        _check_limits_and_duplicates(owner=owner, fields=fields)
        source = Source.objects.create(
            workspace_id=owner.workspace_id, **_owner_fields(owner), queued_at=timezone.now(), **fields
        )
        _audit(
            source,
            "create",
            values_shown(
                {
                    "type": source.type,
                    "mindId": source.mind_id,
                    "collectionId": source.collection_id,
                    "url": source.url,
                }
            ),
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


# Collections ------------------------------------------------------------------------------------------------------


def _collection_slug(*, workspace_id: str, name: str, exclude_id: str | None = None) -> str:
    base = slugify(name)[:100].strip("-") or "collection"
    taken = Collection.objects.filter(workspace_id=workspace_id, slug__startswith=base)
    if exclude_id:
        taken = taken.exclude(id=exclude_id)
    used = set(taken.values_list("slug", flat=True))
    slug, n = base, 2
    while slug in used:
        slug, n = f"{base}-{n}", n + 1
    return slug


def _collection_audit(collection: Collection, action: str, changes: dict | None = None) -> None:
    audit_record(
        workspace=collection.workspace_id,
        entity="collection",
        entity_id=collection.id,
        entity_name=collection.name,
        action=action,
        changes=changes,
    )


@transaction.atomic
def collection_create(
    *, workspace: Workspace, name: str, description: str = "", image: str = "", privacy: str = "private"
) -> Collection:
    name = (name or "").strip()
    if not name:
        raise ValidationFailed("A collection needs a name.", details={"fields": {"name": ["Required."]}})
    collection = Collection.objects.create(
        workspace=workspace,
        name=name[:100],
        slug=_collection_slug(workspace_id=workspace.pk, name=name),
        description=description,
        image=image,
        privacy=privacy,
    )
    _collection_audit(
        collection, "create", values_shown({"name": collection.name, "privacy": collection.privacy})
    )
    return collection


COLLECTION_FIELDS = ("name", "description", "image", "privacy")


@transaction.atomic
def collection_update(*, collection: Collection, changes: dict) -> Collection:
    """`changes` maps fields of COLLECTION_FIELDS to their new values; others are refused."""
    unknown = set(changes) - set(COLLECTION_FIELDS)
    if unknown:
        raise ValueError(f"not collection fields: {sorted(unknown)}")
    if "name" in changes and not (changes["name"] or "").strip():
        raise ValidationFailed("A collection needs a name.", details={"fields": {"name": ["Required."]}})
    before = {field: getattr(collection, field) for field in changes}
    for field, value in changes.items():
        setattr(collection, field, value.strip()[:100] if field == "name" else value)
    collection.save()
    diff = changes_between(before, {field: getattr(collection, field) for field in changes})
    if diff:
        _collection_audit(collection, "update", diff)
    return collection


def collection_delete(*, collection: Collection) -> str:
    """Deletes the collection with its sources, chunks and files; minds it was attached to simply lose it."""
    collection_id = collection.id
    with transaction.atomic():
        names = [name for name in collection.uploads.values_list("file", flat=True) if name]
        _collection_audit(collection, "delete")
        collection.delete()
        transaction.on_commit(lambda: [default_storage.delete(name) for name in names])
    return collection_id


@transaction.atomic
def mind_collections_set(*, mind: Mind, collection_ids: list[str]) -> list[str]:
    """Attaches exactly these collections (of the mind's workspace) to the mind; its search covers them."""
    wanted = list(dict.fromkeys(collection_ids))
    found = set(
        Collection.objects.filter(workspace_id=mind.workspace_id, id__in=wanted).values_list("id", flat=True)
    )
    missing = [cid for cid in wanted if cid not in found]
    if missing:
        raise ValidationFailed(
            "Some collections do not exist in this workspace.",
            details={"fields": {"collectionIds": [f"Unknown collection: {cid}" for cid in missing]}},
        )
    before = sorted(mind.collections.values_list("id", flat=True))
    mind.collections.set(wanted)
    if sorted(wanted) != before:
        audit_record(
            workspace=mind.workspace_id,
            entity="mind",
            entity_id=mind.id,
            entity_name=mind.name,
            action="update",
            changes=changes_between({"collectionIds": before}, {"collectionIds": sorted(wanted)}),
        )
    return wanted
