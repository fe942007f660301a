"""Writes of knowledge: uploads and sources (create, reprocess, delete) of a mind or a collection, collections
(create, update, delete, add URLs) and which collections a mind draws on.

Every write that checks a limit or a duplicate locks its owner's row first (knowledge/source_creation.py), so two
concurrent requests cannot both pass the check. Work for the worker is queued only after the transaction commits.
"""

import hashlib
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile as DjangoUploadedFile
from django.db import transaction
from django.db.models import QuerySet, Sum
from django.utils import timezone
from django.utils.text import slugify
from kombu.exceptions import OperationalError as BrokerUnavailable

from accounts.audit import audit_record, changes_between, values_shown
from accounts.models import Workspace
from config.api.errors import LimitExceeded, NotFound, ValidationFailed
from knowledge.errors import DuplicateSource, ExtractionError, FileTooLarge, SourceBusy, UnsupportedFileType
from knowledge.extractors.audio import audio_duration
from knowledge.extractors.detect import detect_file
from knowledge.extractors.youtube import video_id as youtube_video_id
from knowledge.links import FOLLOW_LINKS
from knowledge.models import Chunk, Collection, Source, UploadedFile
from knowledge.source_creation import (
    owner_fields,
    owner_lock,
    owner_of,
    owner_word,
    source_fields,
    source_insert,
)
from knowledge.source_states import pending_again
from knowledge.tasks import source_process
from knowledge.upload_cleanup import upload_file_delete
from minds.models import Mind

logger = logging.getLogger(__name__)


# Uploads ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredUpload:
    upload: UploadedFile
    deduplicated: bool  # the owner had these bytes already: the stored upload is returned, nothing is stored
    duration_seconds: float | None  # audio only, read from the file's header


def upload_create(
    *, mind: Mind | None = None, collection: Collection | None = None, file: DjangoUploadedFile
) -> UploadedFile:
    return upload_store(mind=mind, collection=collection, file=file).upload


def upload_store(
    *, mind: Mind | None = None, collection: Collection | None = None, file: DjangoUploadedFile
) -> StoredUpload:
    """Checks the type from the bytes (audio: a real duration from its header), the size by category and the
    workspace's storage, then streams the file to storage; the same bytes sent again to the same owner return the
    upload already stored."""
    owner = owner_of(mind, collection)
    try:
        # The whole upload, seekable: a DOCX is told by the ZIP directory at its end.
        kind = detect_file(file, file.name or "")
    except ExtractionError as exc:
        raise UnsupportedFileType(exc.message) from exc
    limit = settings.MAX_AUDIO_BYTES if kind.category == "audio" else settings.MAX_DOCUMENT_BYTES
    if file.size > limit:
        raise FileTooLarge(
            f"A {kind.category} file may be at most {limit // (1024 * 1024)} MB; this one is "
            f"{file.size / (1024 * 1024):.1f} MB.",
            details={"maxBytes": limit, "fileSize": file.size},
        )
    duration = _audio_duration(file) if kind.category == "audio" else None
    digest = hashlib.sha256()
    for piece in file.chunks():
        digest.update(piece)
    file.seek(0)
    sha256 = digest.hexdigest()
    # Checked first without a lock, so a repeated or refused upload writes nothing; checked again under the lock.
    existing = _same_upload(owner, sha256, file.size)
    if existing is not None:
        return StoredUpload(existing, True, duration)
    _check_storage(owner.workspace, file.size)
    upload = UploadedFile(
        workspace_id=owner.workspace_id,
        **owner_fields(owner),
        file_name=_safe_file_name(file.name or f"upload.{kind.kind}", kind.kind),
        mime_type=kind.mime_type,
        file_size=file.size,
        category=kind.category,
        sha256=sha256,
    )
    # Streamed chunk by chunk through the storage API, outside the transaction: the locks below are held only
    # for the checks and the insert, not while a 500 MB file is written.
    upload.file.save(upload.file_name, file, save=False)
    try:
        with transaction.atomic():
            # The owner's and the workspace's rows, locked in one statement (the order every write takes):
            # concurrent uploads of the same bytes, or to the same workspace, pass the checks one at a time.
            locked = owner_lock(owner)
            if locked is None:
                raise NotFound(f"{owner_word(owner).capitalize()} not found.")
            existing = _same_upload(owner, sha256, file.size)
            if existing is None:
                _check_storage(locked.workspace, file.size)
                upload.save()
    except Exception:
        upload_file_delete(upload.file.name)
        raise
    if existing is not None:
        upload_file_delete(upload.file.name)  # a concurrent request stored these bytes first
        return StoredUpload(existing, True, duration)
    return StoredUpload(upload, False, duration)


def _audio_duration(file: DjangoUploadedFile) -> float:
    # A large upload is already on disk (TemporaryUploadedFile): PyAV reads its header from the path.
    temporary_path = getattr(file, "temporary_file_path", None)
    try:
        return audio_duration(temporary_path() if temporary_path else file)
    except ExtractionError as exc:
        raise UnsupportedFileType(exc.message) from exc
    finally:
        file.seek(0)


def _same_upload(owner, sha256: str, size: int) -> UploadedFile | None:
    return UploadedFile.objects.filter(**owner_fields(owner), sha256=sha256, file_size=size).first()


def _check_storage(workspace: Workspace, size: int) -> None:
    limit = settings.STORAGE_LIMIT_BYTES
    used = UploadedFile.objects.filter(workspace=workspace).aggregate(total=Sum("file_size"))["total"] or 0
    if used + size > limit:
        raise LimitExceeded(
            f"The workspace stores {used / 1e6:.1f} MB of uploads; this {size / 1e6:.1f} MB file would pass its "
            f"limit of {limit / 1e6:.1f} MB. Delete sources whose files are no longer needed.",
            details={"limit": "storageLimit", "value": limit, "storageUsed": used, "fileSize": size},
        )


def _safe_file_name(name: str, kind: str) -> str:
    base = re.sub(r"[^A-Za-z0-9._ -]+", "_", name.rsplit("/", 1)[-1]).strip(" .") or "upload"
    return base[:200] if "." in base else f"{base[:190]}.{kind}"


# Sources ---------------------------------------------------------------------------------------------------------


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
    follow_links: bool = False,
    password: str | None = None,
    refresh_interval_hours: int | None = None,
) -> Source:
    """Adds a source of `kind` to a mind or a collection, in `pending`, and queues it. Each kind reads its own
    input: `url`; `youtube_url`; `content` (text); `file_url` of an upload (document, or podcast); `audio_url` or
    `feed_url` (podcast). `refresh_interval_hours` (a url or feed source): fetched again that often
    (knowledge/refresh.py). `follow_links` (a url source): when the page is indexed, the pages it links to on the
    same host become sources of the same owner too (knowledge/links.py)."""
    owner = owner_of(mind, collection)
    # URLs (SSRF rules) and the upload are checked before anything is locked or written.
    fields = source_fields(
        owner=owner,
        kind=kind,
        name=name,
        url=url,
        file_url=file_url,
        file_name=file_name,
        content=content,
        youtube_url=youtube_url,
        audio_url=audio_url,
        feed_url=feed_url,
        callback_url=callback_url,
        metadata={FOLLOW_LINKS: True} if follow_links and kind == Source.Type.URL else None,
        password=password,
        refresh_interval_hours=refresh_interval_hours,
    )
    with transaction.atomic():
        source = source_insert(owner=owner, fields=fields)
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
    try:
        source_process.delay(source_id)
    except BrokerUnavailable:
        # Redis is down (restarting) after the source was committed: the request still answers with the source,
        # pending, rather than an error for a write that happened. The sweeper queues a pending source again once
        # it has waited SOURCE_PROCESSING_DEADLINE_SECONDS (knowledge/source_states.py sources_sweep).
        logger.warning("source %s not queued, the broker is unavailable; the sweeper queues it", source_id)


def source_reprocess(*, source: Source) -> Source:
    """From pending, ready or failed back to pending; a URL source is fetched again by the worker."""
    with transaction.atomic():
        source = Source.objects.select_for_update().get(pk=source.pk)
        if source.status in Source.BUSY:
            raise SourceBusy(
                f"The source is {source.status}; reprocess it once it is ready or failed.",
                details={"status": source.status},
            )
        for name, value in pending_again(timezone.now()).items():
            setattr(source, name, value)
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
            remove_file = lambda: upload_file_delete(name)  # noqa: E731
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
    _check_privacy(privacy)
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


def _check_privacy(privacy: str) -> None:
    if privacy not in Collection.Privacy.values:
        raise ValidationFailed(
            f"privacy must be one of {', '.join(Collection.Privacy.values)}.",
            details={"fields": {"privacy": [f"Not a privacy: {privacy}."]}},
        )


@transaction.atomic
def collection_update(*, collection: Collection, changes: dict) -> Collection:
    """`changes` maps fields of COLLECTION_FIELDS to their new values; others are refused."""
    unknown = set(changes) - set(COLLECTION_FIELDS)
    if unknown:
        raise ValueError(f"not collection fields: {sorted(unknown)}")
    if "name" in changes and not (changes["name"] or "").strip():
        raise ValidationFailed("A collection needs a name.", details={"fields": {"name": ["Required."]}})
    if "privacy" in changes:
        _check_privacy(changes["privacy"])
    before = {name: getattr(collection, name) for name in changes}
    for name, value in changes.items():
        setattr(collection, name, value.strip()[:100] if name == "name" else value)
    collection.save()
    diff = changes_between(before, {name: getattr(collection, name) for name in changes})
    if diff:
        _collection_audit(collection, "update", diff)
    return collection


def collection_delete(*, collection: Collection) -> str:
    """Deletes the collection with its sources, chunks and files; minds it was attached to simply lose it."""
    collection_id = collection.id
    with transaction.atomic():
        # The owner's row first, as every creation of a source locks it (knowledge/source_creation.py, and the
        # indexing of a links() page): none can add a source to the collection while it is being deleted.
        if not Collection.objects.select_for_update().filter(pk=collection_id).exists():
            raise NotFound("Collection not found.")
        names = [name for name in collection.uploads.values_list("file", flat=True) if name]
        _collection_audit(collection, "delete")
        collection.delete()
        transaction.on_commit(lambda: [upload_file_delete(name) for name in names])
    return collection_id


@transaction.atomic
def mind_collections_set(
    *, mind: Mind, collection_ids: list[str], available: QuerySet[Collection] | None = None
) -> list[str]:
    """Attaches exactly these collections (of the mind's workspace) to the mind; its search covers them.

    `available` narrows the collections that may be named (a key's reach, knowledge.selectors.collections_reachable):
    one outside it is refused like a missing one, so a key cannot widen what its minds read."""
    wanted = list(dict.fromkeys(collection_ids))
    candidates = Collection.objects.all() if available is None else available
    found = set(candidates.filter(workspace_id=mind.workspace_id, id__in=wanted).values_list("id", flat=True))
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


@dataclass(frozen=True)
class UrlEntry:
    """A URL to add to a collection; `follow_links` also adds the pages it links to (knowledge/links.py)."""

    url: str
    follow_links: bool = False


@dataclass
class UrlsAdded:
    created: list[Source] = field(default_factory=list)
    already_present: list[str] = field(default_factory=list)


def _url_source_create(*, collection: Collection, entry: UrlEntry) -> Source:
    if youtube_video_id(entry.url):
        return source_create(collection=collection, kind=Source.Type.YOUTUBE, youtube_url=entry.url)
    return source_create(
        collection=collection, kind=Source.Type.URL, url=entry.url, follow_links=entry.follow_links
    )


@transaction.atomic
def collection_urls_add(*, collection: Collection, entries: Sequence[UrlEntry]) -> UrlsAdded:
    """Adds each URL as a source of the collection: a YouTube video link as a `youtube` source (captions, else
    transcribed), any other as a `url` page. Additive: a URL already in the collection (same normalised URL, or
    the same video) is skipped; any other refusal (SSRF rules, limits) raises and nothing is added."""
    added = UrlsAdded()
    for entry in entries:
        try:
            added.created.append(_url_source_create(collection=collection, entry=entry))
        except DuplicateSource:
            added.already_present.append(entry.url)
    return added


@transaction.atomic
def collection_create_or_update(
    *,
    workspace: Workspace,
    collection: Collection | None = None,
    changes: dict,
    entries: Sequence[UrlEntry] = (),
) -> tuple[Collection, UrlsAdded]:
    """Creates a collection (`collection` None) or updates it with `changes` (fields of COLLECTION_FIELDS), then
    adds `entries`, all in one transaction: a refused URL leaves no collection and no source behind."""
    if collection is None:
        collection = collection_create(workspace=workspace, **{"name": "", **changes})
    elif changes:
        collection = collection_update(collection=collection, changes=changes)
    return collection, collection_urls_add(collection=collection, entries=list(entries))
