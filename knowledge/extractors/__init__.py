"""Extractors turn bytes into structured segments (see base.py); one entry point per kind of input."""

from knowledge.errors import ExtractionError
from knowledge.extractors.base import Extracted, Segment
from knowledge.extractors.html import extract_html
from knowledge.extractors.text import extract_text

__all__ = [
    "Extracted",
    "Segment",
    "extract_file",
    "extract_html",
    "extract_text",
]


def extract_file(path: str, kind: str, *, password: str | None = None) -> Extracted:
    """The text of a document; `kind` as detect.detect_file decided it from the bytes; `password` opens a PDF.

    Audio never comes here: the transcription stage of the pipeline calls audio.transcribe.
    """
    if kind == "pdf":
        from knowledge.extractors.pdf import extract_pdf

        return extract_pdf(path, password=password)
    if kind == "docx":
        from knowledge.extractors.docx import extract_docx

        return extract_docx(path)
    if kind in ("txt", "md", "html"):
        with open(path, "rb") as handle:
            data = handle.read()
        if kind == "html":
            return extract_html(data)
        return extract_text(data, markdown=kind == "md")
    raise ExtractionError("unsupported_file_type", f"Files of type {kind} cannot be extracted.")
