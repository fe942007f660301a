"""What a file is, decided from its bytes — never from its name or the MIME type a client declares.

The name only separates Markdown from plain text once the bytes are known to be text.
"""

import io
import zipfile
import zlib
from dataclasses import dataclass
from typing import BinaryIO

import filetype
from charset_normalizer import from_bytes

from knowledge.errors import ExtractionError

AUDIO = {
    "audio/mpeg": ("mp3", "audio/mpeg"),
    "audio/x-wav": ("wav", "audio/wav"),
    "audio/wav": ("wav", "audio/wav"),
    "audio/mp4": ("m4a", "audio/mp4"),
    "audio/x-m4a": ("m4a", "audio/mp4"),
    "video/mp4": (
        "m4a",
        "audio/mp4",
    ),  # an M4A is an MP4 container; accepted as audio, transcribed for its sound
    "audio/ogg": ("ogg", "audio/ogg"),
    "audio/x-flac": ("flac", "audio/flac"),
    "audio/flac": ("flac", "audio/flac"),
    "audio/webm": ("webm", "audio/webm"),
}
DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
MARKDOWN_SUFFIXES = (".md", ".markdown", ".mdown", ".mkd")
SUPPORTED = "PDF, DOCX, TXT, Markdown, MP3, WAV, M4A, OGG or FLAC"
HEAD_BYTES = 8192  # enough for every signature and for the text sniffing


@dataclass(frozen=True)
class FileKind:
    kind: str  # pdf | docx | txt | md | html | mp3 | wav | m4a | ogg | flac | webm
    category: str  # document | audio
    mime_type: str


# What the main part of an Office Open XML package is, from its content type in [Content_Types].xml. Strict
# (ISO 29500) documents declare the same content types as Transitional ones.
OOXML_MAIN = (
    (b"wordprocessingml.document.main+xml", None),
    (b"wordprocessingml.template.main+xml", "a Word template (DOTX); save it as a Word document (DOCX)"),
    (b"ms-word.document.macroEnabled.main+xml", "a macro-enabled Word document (DOCM); save it as DOCX"),
    (b"ms-word.template.macroEnabledTemplate.main+xml", "a Word template (DOTM); save it as DOCX"),
    (b"spreadsheetml", "an Excel workbook (XLSX), not a Word document"),
    (b"ms-excel", "an Excel workbook (XLSM), not a Word document"),
    (b"presentationml", "a PowerPoint presentation (PPTX), not a Word document"),
    (b"ms-powerpoint", "a PowerPoint presentation (PPTM), not a Word document"),
)
OPENDOCUMENT = b"application/vnd.oasis.opendocument."
# [Content_Types].xml and mimetype are small: a bomb in their place is read no further than this.
PACKAGE_PART_BYTES = 1024 * 1024
# What zipfile raises on a damaged directory: bad records, impossible versions, names not in their declared encoding.
UNREADABLE_ZIP = (
    zipfile.BadZipFile,
    EOFError,
    OSError,
    ValueError,
    OverflowError,
    NotImplementedError,
    UnicodeDecodeError,
)
ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")  # a local file header, or the end record of an empty archive


def _zip_kind(stream: BinaryIO, head: bytes) -> FileKind:
    """A DOCX, or an unsupported_file_type naming what the archive is instead.

    The archive's directory is at its end: zipfile seeks there in the stream, reading the directory and the two
    small parts below, never the whole file. Producers order entries as they like ([Content_Types].xml first is
    only a habit), so entry names in the first kilobytes decide nothing."""
    try:
        with zipfile.ZipFile(stream) as archive:
            names = set(archive.namelist())
            content_types = _read_part(archive, "[Content_Types].xml")
            mimetype = _read_part(archive, "mimetype")
    except UNREADABLE_ZIP:
        # Not a readable archive (or only its head was given): a damaged DOCX is let through when its local
        # headers name Word parts, for extraction to report it `corrupt_file`; anything else is refused here.
        if b"word/" in head and b"[Content_Types].xml" in head:
            return FileKind("docx", "document", DOCX_MIME)
        raise ExtractionError(
            "unsupported_file_type", f"This is a damaged or unreadable ZIP archive. Upload {SUPPORTED}."
        ) from None
    if content_types is not None:
        for marker, refusal in OOXML_MAIN:
            if marker in content_types:
                if refusal is None:
                    return FileKind("docx", "document", DOCX_MIME)
                raise ExtractionError("unsupported_file_type", f"This file is {refusal}. Upload {SUPPORTED}.")
    elif "word/document.xml" in names:
        # A Word package without its content types: extraction says it is damaged, more helpful than a 415.
        return FileKind("docx", "document", DOCX_MIME)
    if mimetype is not None and mimetype.startswith(OPENDOCUMENT):
        raise ExtractionError(
            "unsupported_file_type",
            f"This is an OpenDocument file ({mimetype.decode('ascii', 'replace')}); save it as DOCX. "
            f"Upload {SUPPORTED}.",
        )
    raise ExtractionError(
        "unsupported_file_type", f"This is a ZIP archive, not a Word document. Upload {SUPPORTED}."
    )


def _read_part(archive: zipfile.ZipFile, name: str) -> bytes | None:
    try:
        with archive.open(name) as member:
            return member.read(PACKAGE_PART_BYTES)
    except KeyError:
        return None
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, ValueError):
        return None  # damaged, encrypted or compressed in a way zipfile cannot read: as if missing


def looks_like_text(data: bytes) -> bool:
    if not data:
        return True
    if data.startswith((b"\xff\xfe", b"\xfe\xff", b"\xef\xbb\xbf")):
        return True
    sample = data[:8192]
    if b"\x00" in sample:
        return False
    try:
        sample.decode("utf-8")
        return True
    except UnicodeDecodeError as exc:
        if exc.start >= len(sample) - 4:  # a multibyte character cut at the end of the sample
            return True
    match = from_bytes(sample).best()
    if match is None:
        return False
    text = str(match)
    controls = sum(1 for ch in text if ord(ch) < 32 and ch not in "\r\n\t\f")
    return controls <= len(text) * 0.01


def detect_file(source: bytes | BinaryIO, file_name: str = "") -> FileKind:
    """`source`: the file as a seekable binary stream (read from its start and left there), or its bytes.

    Most types are told by their first bytes; a ZIP (DOCX, or something else) by its directory at the end, so a
    stream or the whole file is needed for it. Given only a head, a ZIP is judged by its local headers."""
    stream = io.BytesIO(source) if isinstance(source, (bytes, bytearray, memoryview)) else source
    stream.seek(0)
    try:
        head = stream.read(HEAD_BYTES)
        stream.seek(0)
        if head.startswith(ZIP_SIGNATURES):
            return _zip_kind(stream, head)
        return _detect_head(head, file_name)
    finally:
        stream.seek(0)


def _detect_head(head: bytes, file_name: str) -> FileKind:
    guess = filetype.guess(head) if head else None
    if guess is not None:
        if guess.mime == "application/pdf":
            return FileKind("pdf", "document", "application/pdf")
        if guess.mime in AUDIO:
            kind, mime = AUDIO[guess.mime]
            return FileKind(kind, "audio", mime)
        raise ExtractionError(
            "unsupported_file_type", f"This file is {guess.mime}, which is not supported. Upload {SUPPORTED}."
        )
    if head.startswith(b"%PDF-"):
        return FileKind("pdf", "document", "application/pdf")
    if looks_like_text(head):
        start = head.lstrip()[:200].lower()
        if start.startswith((b"<!doctype html", b"<html")) or file_name.lower().endswith((".html", ".htm")):
            return FileKind("html", "document", "text/html")
        if file_name.lower().endswith(MARKDOWN_SUFFIXES):
            return FileKind("md", "document", "text/markdown")
        return FileKind("txt", "document", "text/plain")
    raise ExtractionError(
        "unsupported_file_type", f"The file's content is not a supported type. Upload {SUPPORTED}."
    )
