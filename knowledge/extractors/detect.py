"""What a file is, decided from its bytes — never from its name or the MIME type a client declares.

The name only separates Markdown from plain text once the bytes are known to be text.
"""

import io
import zipfile
from dataclasses import dataclass

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


@dataclass(frozen=True)
class FileKind:
    kind: str  # pdf | docx | txt | md | html | mp3 | wav | m4a | ogg | flac | webm
    category: str  # document | audio
    mime_type: str


def _is_docx(data: bytes) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return "word/document.xml" in archive.namelist()
    except zipfile.BadZipFile:
        # Only the head of a large file may be here: look for the entry name in the local headers.
        return b"word/" in data and b"[Content_Types].xml" in data


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


def detect_file(head: bytes, file_name: str = "") -> FileKind:
    """`head`: the first bytes of the file (8 KB is plenty; the whole file for DOCX when small)."""
    guess = filetype.guess(head) if head else None
    if guess is not None:
        if guess.mime == "application/pdf":
            return FileKind("pdf", "document", "application/pdf")
        if guess.mime in AUDIO:
            kind, mime = AUDIO[guess.mime]
            return FileKind(kind, "audio", mime)
        if guess.mime in (DOCX_MIME, "application/zip") and _is_docx(head):
            return FileKind("docx", "document", DOCX_MIME)
        raise ExtractionError(
            "unsupported_file_type", f"This file is {guess.mime}, which is not supported. Upload {SUPPORTED}."
        )
    if head.startswith(b"%PDF-"):
        return FileKind("pdf", "document", "application/pdf")
    if head.startswith(b"PK\x03\x04"):
        if _is_docx(head):
            return FileKind("docx", "document", DOCX_MIME)
        raise ExtractionError(
            "unsupported_file_type", f"This is a ZIP archive, not a Word document. Upload {SUPPORTED}."
        )
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
