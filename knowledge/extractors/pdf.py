"""PDF text, page by page, with pypdf.

Encrypted PDFs open with an empty user password (the common copy-protected file: owner restrictions only) or with
the password the source carries (knowledge/passwords.py keeps it encrypted at rest); AES needs `cryptography`.
A page in two columns is read column by column (pdf_layout.py). A page with no text layer, or a garbage one, is
read by OCR (ocr.py); the pages read so are listed in the metadata as `ocrPages`, and scanned pages OCR did not
read (its time budget spent, a page past its own limit) as `ocrSkippedPages` ("401-500"), `ocrSkippedPageCount`
and a sentence, `ocrNote`. A PDF whose scanned pages OCR could not read at all, and with no other text, fails
`ocr_time_limit` (the budget ran out first) or `ocr_failed` (every page failed).
"""

import logging
import unicodedata

from django.conf import settings
from pypdf import PageObject, PdfReader
from pypdf.errors import FileNotDecryptedError, PdfReadError, PyPdfError

from knowledge.errors import ExtractionError
from knowledge.extractors.base import Extracted, Segment
from knowledge.extractors.ocr import OcrResult, ocr_pages, page_needs_ocr, page_ranges
from knowledge.extractors.pdf_layout import TextStarts, column_text, may_have_columns

logger = logging.getLogger(__name__)

NEEDS_PASSWORD = (
    "The PDF is protected by a password; add it again as a document source with its password, or upload an "
    "unprotected copy."
)
WRONG_PASSWORD = "The password given does not open this PDF."
UNSUPPORTED_ENCRYPTION = "The PDF is encrypted in a way this server cannot open; upload an unprotected copy."


def _open(path: str) -> PdfReader:
    try:
        return PdfReader(path, strict=False)
    except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ExtractionError("corrupt_file", "The PDF is damaged and could not be read.") from exc


def _unlock(reader: PdfReader, password: str | None) -> str:
    """Decrypts with the empty user password, else with `password`, and returns the one that opened it; the
    password is never logged or echoed."""
    for candidate in ("", password) if password else ("",):
        try:
            if reader.decrypt(candidate):
                return candidate
        except NotImplementedError as exc:  # an unknown security handler or algorithm
            raise ExtractionError("pdf_encrypted", UNSUPPORTED_ENCRYPTION) from exc
        except (FileNotDecryptedError, PdfReadError, PyPdfError, ValueError, KeyError, TypeError) as exc:
            raise ExtractionError("pdf_encrypted", UNSUPPORTED_ENCRYPTION) from exc
    raise ExtractionError("pdf_encrypted", WRONG_PASSWORD if password else NEEDS_PASSWORD)


def page_text(page: PageObject) -> str:
    """One page's text in reading order ("" when it has no text layer)."""
    starts = TextStarts()
    text = page.extract_text(visitor_operand_after=starts) or ""
    if may_have_columns(starts, page):
        return column_text(page) or text
    return text


def extract_pdf(path: str, *, password: str | None = None) -> Extracted:
    reader = _open(path)
    opened_with = _unlock(reader, password) if reader.is_encrypted else ""
    try:
        pages = list(reader.pages)
    except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ExtractionError(
            "corrupt_file", "The PDF's page tree is damaged and could not be read."
        ) from exc
    except FileNotDecryptedError as exc:
        raise ExtractionError("pdf_encrypted", NEEDS_PASSWORD) from exc
    texts: dict[int, str] = {}
    for number, page in enumerate(pages, start=1):
        try:
            texts[number] = page_text(page)
        except FileNotDecryptedError as exc:
            raise ExtractionError("pdf_encrypted", NEEDS_PASSWORD) from exc
        except Exception:  # one broken page must not lose the others; its rendering may still be read by OCR
            logger.warning("pdf page %s could not be read", number, exc_info=True)
            texts[number] = ""
    if not pages:
        raise ExtractionError("corrupt_file", "The PDF has no pages.")
    # A page that needs OCR and gets text from it takes that text; one OCR could not read keeps its own layer.
    scanned = [number for number, text in texts.items() if page_needs_ocr(text, pages[number - 1])]
    try:
        result = ocr_pages(path, scanned, password=opened_with or None)
    except ExtractionError as exc:
        # Without an OCR engine, a PDF whose other pages have text is still indexed from those pages.
        if exc.code != "ocr_unavailable" or len(scanned) == len(texts):
            raise
        logger.warning("pdf pages %s need OCR, left as they are: %s", scanned, exc.message)
        result = OcrResult()
    ocr = result.texts
    segments = [
        Segment(paragraph, page=number)
        for number, text in texts.items()
        for paragraph in _paragraphs(unicodedata.normalize("NFKC", ocr.get(number, text)))
    ]
    if not segments and result.skipped:
        raise ExtractionError(
            "ocr_time_limit",
            f"The PDF has no text layer, and OCR found no text before its time limit "
            f"({result.budget_seconds:g} s) was spent: pages {page_ranges(result.skipped)} of the "
            f"{len(scanned)} scanned pages were not read.",
        )
    if not segments and result.failed:
        raise ExtractionError(
            "ocr_failed",
            f"The PDF has no text layer, and OCR could not read its scanned pages "
            f"({page_ranges(result.failed)}): each ran past its time limit or failed.",
        )
    if not segments:
        raise ExtractionError(
            "no_text_layer",
            "The PDF has no text layer (it looks scanned), and OCR found no text on its pages."
            if scanned and settings.OCR_ENABLED
            else "The PDF has no text layer (it looks scanned); run it through OCR and upload the result.",
        )
    title = ""
    try:
        title = (reader.metadata.title or "") if reader.metadata else ""
    except Exception:  # metadata of damaged files is optional
        title = ""
    metadata = {"ocrPages": sorted(ocr)} if ocr else {}
    metadata.update(_skipped_metadata(result, len(scanned)))
    return Extracted(segments=segments, title=str(title).strip(), page_count=len(pages), metadata=metadata)


def _skipped_metadata(result: OcrResult, scanned: int) -> dict:
    """The scanned pages OCR did not read, as page ranges and a sentence for a person: the source is ready with the
    text of the other pages, and says what it is missing."""
    missing = sorted(result.skipped + result.failed)
    if not missing:
        return {}
    reasons = []
    if result.skipped:
        reasons.append(
            f"pages {page_ranges(result.skipped)} were not read because the document's OCR time limit "
            f"({result.budget_seconds:g} s) was spent"
        )
    if result.failed:
        reasons.append(f"pages {page_ranges(result.failed)} ran past their own time limit or failed")
    return {
        "ocrSkippedPages": page_ranges(missing),
        "ocrSkippedPageCount": len(missing),
        "ocrNote": (
            f"OCR read {scanned - len(missing)} of the {scanned} scanned pages; {' and '.join(reasons)}. "
            "Their text is not indexed."
        ),
    }


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
