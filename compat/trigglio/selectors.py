"""Reads for the Trigglio chatbot aliases, over knowledge's selectors (the mind is already resolved by mind_get)."""

import re

from django.db.models import QuerySet

from config.api.errors import NotFound
from knowledge.models import Source, UploadedFile
from knowledge.selectors import source_list, upload_get
from minds.models import Mind

# The id at the end of a `fileUrl` as the upload endpoint returns it (…/knowledge/files/<id>), or the bare id.
FILE_ID_RE = re.compile(r"(?:^|/knowledge/files/)(file_[A-Za-z0-9]+)/?$")


def chatbot_sources(*, mind: Mind, statuses: list[str] | None, types: list[str] | None) -> QuerySet[Source]:
    sources = source_list(mind=mind)
    if statuses:
        sources = sources.filter(status__in=statuses)
    if types:
        sources = sources.filter(type__in=types)
    return sources


def upload_source_kind(*, mind: Mind, file_url: str) -> str:
    """The source type a chatbot `file` becomes: podcast for an audio upload, else document (an unknown fileUrl
    too, so source_create gives its precise error)."""
    match = FILE_ID_RE.search(file_url.strip())
    if match:
        try:
            upload = upload_get(mind=mind, upload_id=match.group(1))
        except NotFound:
            return Source.Type.DOCUMENT
        if upload.category == UploadedFile.Category.AUDIO:
            return Source.Type.PODCAST
    return Source.Type.DOCUMENT
