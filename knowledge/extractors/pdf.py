"""PDF text, page by page, with pypdf."""

import logging
import unicodedata

from pypdf import PdfReader
from pypdf.errors import FileNotDecryptedError, PdfReadError, PyPdfError

from knowledge.errors import ExtractionError
from knowledge.extractors.base import Extracted, Segment

logger = logging.getLogger(__name__)


def _open(path: str) -> PdfReader:
    try:
        return PdfReader(path, strict=False)
    except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ExtractionError("corrupt_file", "The PDF is damaged and could not be read.") from exc


def extract_pdf(path: str) -> Extracted:
    reader = _open(path)
    if reader.is_encrypted:
        # Owner-password-only PDFs (printing/copying restrictions) open with an empty user password.
        try:
            opened = reader.decrypt("")
        except (FileNotDecryptedError, PdfReadError, NotImplementedError) as exc:
            raise ExtractionError(
                "pdf_encrypted", "The PDF is protected by a password; upload an unprotected copy."
            ) from exc
        if not opened:
            raise ExtractionError(
                "pdf_encrypted", "The PDF is protected by a password; upload an unprotected copy."
            )
    try:
        pages = list(reader.pages)
    except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ExtractionError(
            "corrupt_file", "The PDF's page tree is damaged and could not be read."
        ) from exc
    except FileNotDecryptedError as exc:
        raise ExtractionError(
            "pdf_encrypted", "The PDF is protected by a password; upload an unprotected copy."
        ) from exc
    segments: list[Segment] = []
    for number, page in enumerate(pages, start=1):
        try:
            text = page.extract_text() or ""
        except FileNotDecryptedError as exc:
            raise ExtractionError(
                "pdf_encrypted", "The PDF is protected by a password; upload an unprotected copy."
            ) from exc
        except Exception:  # one broken page must not lose the others
            logger.warning("pdf page %s could not be read", number, exc_info=True)
            continue
        for paragraph in _paragraphs(unicodedata.normalize("NFKC", text)):
            segments.append(Segment(paragraph, page=number))
    if not pages:
        raise ExtractionError("corrupt_file", "The PDF has no pages.")
    if not segments:
        raise ExtractionError(
            "no_text_layer",
            "The PDF has no text layer (it looks scanned); run it through OCR and upload the result.",
        )
    title = ""
    try:
        title = (reader.metadata.title or "") if reader.metadata else ""
    except Exception:  # metadata of damaged files is optional
        title = ""
    return Extracted(segments=segments, title=str(title).strip(), page_count=len(pages))


def _paragraphs(text: str) -> list[str]:
    """pypdf gives lines; blank lines separate paragraphs, and hyphenated line ends are rejoined."""
    paragraphs, current = [], []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            if current:
                paragraphs.append(" ".join(current))
                current = []
            continue
        if current and current[-1].endswith("-") and line[:1].islower():
            current[-1] = current[-1][:-1] + line
        else:
            current.append(line)
    if current:
        paragraphs.append(" ".join(current))
    return [p for p in paragraphs if p.strip()]
