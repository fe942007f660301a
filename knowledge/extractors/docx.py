"""Word documents with python-docx: headings (as structure), paragraphs, list items and tables, in order."""

import zipfile
import zlib

from docx import Document
from docx.opc.exceptions import PackageNotFoundError
from docx.table import Table
from docx.text.paragraph import Paragraph
from lxml import etree

from knowledge.errors import ExtractionError
from knowledge.extractors.base import Extracted, Segment

# A zip bomb expands a small upload into gigabytes; refuse archives that inflate beyond these before parsing.
MAX_UNCOMPRESSED_BYTES = 300 * 1024 * 1024
MAX_RATIO = 200


def _guard_zip(path: str) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except zipfile.BadZipFile as exc:
        raise ExtractionError("corrupt_file", "The Word document is damaged (not a valid archive).") from exc
    total = sum(info.file_size for info in infos)
    compressed = sum(info.compress_size for info in infos) or 1
    if total > MAX_UNCOMPRESSED_BYTES or (total > 10 * 1024 * 1024 and total / compressed > MAX_RATIO):
        raise ExtractionError(
            "file_too_large", "The Word document expands to far more data than it contains; refused."
        )
    _inflate_within_declared_sizes(path)


def _inflate_within_declared_sizes(path: str) -> None:
    """The sizes above are the archive's own claims: a bomb can declare 1 KB for 400 MB. Inflating each entry in
    bounded pieces stops at its declared size with a CRC error, before python-docx reads it whole (which would hold
    all 400 MB in memory at once)."""
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                with archive.open(info) as member:
                    while member.read(1024 * 1024):
                        pass
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        raise ExtractionError(
            "corrupt_file", "The Word document is damaged (an entry does not match its size)."
        ) from exc


def _heading_level(paragraph: Paragraph) -> int | None:
    name = (paragraph.style.name if paragraph.style is not None else "") or ""
    if name == "Title":
        return 1
    if name.startswith("Heading"):
        digits = name.removeprefix("Heading").strip()
        return int(digits) if digits.isdigit() else 1
    return None


def _is_list(paragraph: Paragraph) -> bool:
    name = (paragraph.style.name if paragraph.style is not None else "") or ""
    if "List" in name:
        return True
    ppr = paragraph._p.pPr
    return ppr is not None and ppr.numPr is not None


def _table_text(table: Table) -> str:
    rows = []
    for row in table.rows:
        cells, previous = [], None
        for cell in row.cells:
            text = " ".join(cell.text.split())
            if cell._tc is previous:  # merged cells repeat the same element; keep it once
                continue
            previous = cell._tc
            cells.append(text)
        if any(cells):
            rows.append(" | ".join(cells))
    return "\n".join(rows)


def extract_docx(path: str) -> Extracted:
    _guard_zip(path)
    try:
        document = Document(path)
    except (PackageNotFoundError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise ExtractionError("corrupt_file", "The Word document could not be read.") from exc
    except etree.XMLSyntaxError as exc:
        # Malformed XML, or entity expansion (billion laughs) that libxml2 stops at its amplification limit.
        raise ExtractionError("corrupt_file", "The Word document's XML is malformed; refused.") from exc
    segments: list[Segment] = []
    headings: list[tuple[int, str]] = []
    title = (document.core_properties.title or "").strip()
    for block in document.iter_inner_content():
        if isinstance(block, Paragraph):
            text = " ".join(block.text.split())
            if not text:
                continue
            level = _heading_level(block)
            if level is not None:
                headings = [h for h in headings if h[0] < level] + [(level, text)]
                title = title or text
                segments.append(Segment(text, kind="heading", heading_path=tuple(h[1] for h in headings)))
            elif _is_list(block):
                segments.append(Segment(f"- {text}", kind="list", heading_path=tuple(h[1] for h in headings)))
            else:
                segments.append(Segment(text, heading_path=tuple(h[1] for h in headings)))
        elif isinstance(block, Table):
            text = _table_text(block)
            if text:
                segments.append(Segment(text, kind="table", heading_path=tuple(h[1] for h in headings)))
    if not segments:
        raise ExtractionError("empty_content", "The Word document contains no text.")
    return Extracted(segments=segments, title=title)
