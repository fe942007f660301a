"""Word documents with python-docx: headings (as structure), paragraphs, list items and tables, in order.

ISO 29500 Strict documents (Word's "Strict Open XML Document") use other namespaces and relationship types, which
python-docx does not know (it finds no officeDocument relationship: KeyError); they are rewritten to Transitional
in a temporary copy first.
"""

import re
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

from docx import Document
from docx.document import Document as DocxDocument
from docx.opc.exceptions import PackageNotFoundError
from docx.table import Table
from docx.text.paragraph import Paragraph
from lxml import etree

from knowledge.errors import ExtractionError
from knowledge.extractors.base import Extracted, Segment
from knowledge.extractors.detect import UNREADABLE_ZIP

# A zip bomb expands a small upload into gigabytes; refuse archives that inflate beyond these before parsing.
MAX_UNCOMPRESSED_BYTES = 300 * 1024 * 1024
MAX_RATIO = 200

STRICT = b"http://purl.oclc.org/ooxml/"
# Strict → Transitional, from ISO 29500-1's namespace table (as LibreOffice's oox/source/token/namespaces-strict.txt
# pairs them with namespaces.txt). Relationship types are the relationships namespace plus the same name, except
# the two properties types whose names Transitional hyphenates; they come first, as replacements go in order.
STRICT_TO_TRANSITIONAL = (
    (
        b"http://purl.oclc.org/ooxml/officeDocument/relationships/extendedProperties",
        b"http://schemas.openxmlformats.org/officeDocument/2006/relationships/extended-properties",
    ),
    (
        b"http://purl.oclc.org/ooxml/officeDocument/relationships/customProperties",
        b"http://schemas.openxmlformats.org/officeDocument/2006/relationships/custom-properties",
    ),
    (
        b"http://purl.oclc.org/ooxml/officeDocument/relationships",
        b"http://schemas.openxmlformats.org/officeDocument/2006/relationships",
    ),
    (
        b"http://purl.oclc.org/ooxml/officeDocument/extendedProperties",
        b"http://schemas.openxmlformats.org/officeDocument/2006/extended-properties",
    ),
    (
        b"http://purl.oclc.org/ooxml/officeDocument/extended-properties",
        b"http://schemas.openxmlformats.org/officeDocument/2006/extended-properties",
    ),
    (
        b"http://purl.oclc.org/ooxml/officeDocument/customProperties",
        b"http://schemas.openxmlformats.org/officeDocument/2006/custom-properties",
    ),
    (
        b"http://purl.oclc.org/ooxml/officeDocument/custom-properties",
        b"http://schemas.openxmlformats.org/officeDocument/2006/custom-properties",
    ),
    *(
        (
            b"http://purl.oclc.org/ooxml/officeDocument/" + name,
            b"http://schemas.openxmlformats.org/officeDocument/2006/" + name,
        )
        for name in (
            b"sharedTypes",
            b"docPropsVTypes",
            b"math",
            b"bibliography",
            b"characteristics",
            b"customXml",
        )
    ),
    (
        b"http://purl.oclc.org/ooxml/wordprocessingml/main",
        b"http://schemas.openxmlformats.org/wordprocessingml/2006/main",
    ),
    (
        b"http://purl.oclc.org/ooxml/schemaLibrary/main",
        b"http://schemas.openxmlformats.org/schemaLibrary/2006/main",
    ),
    *(
        (
            b"http://purl.oclc.org/ooxml/drawingml/" + name,
            b"http://schemas.openxmlformats.org/drawingml/2006/" + name,
        )
        for name in (
            b"main",
            b"picture",
            b"wordprocessingDrawing",
            b"chart",
            b"chartDrawing",
            b"diagram",
            b"lockedCanvas",
            b"spreadsheetDrawing",
        )
    ),
)
XML_SUFFIXES = (".xml", ".rels")
# Characters XML 1.0 does not allow: C0 controls but tab, newline and carriage return (raw), and references to them,
# to surrogates or to U+FFFE/U+FFFF (checked in _keep_valid_reference).
INVALID_XML_BYTES = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")
INVALID_XML_REFERENCE = re.compile(rb"&#([xX][0-9a-fA-F]{1,8}|[0-9]{1,10});")


def _guard_zip(path: str) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except UNREADABLE_ZIP as exc:
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
    except (*UNREADABLE_ZIP, zlib.error, RuntimeError) as exc:
        # RuntimeError: an encrypted entry (zipfile wants a password); a Word document never has one. OSError: an
        # entry's offset points outside the file.
        raise ExtractionError(
            "corrupt_file", "The Word document is damaged (an entry does not match its size)."
        ) from exc


def _is_strict(path: str) -> bool:
    with zipfile.ZipFile(path) as archive:
        try:
            with archive.open("_rels/.rels") as rels:
                return STRICT in rels.read(1024 * 1024)
        except KeyError:
            return False


def _to_transitional(xml: bytes) -> bytes:
    for strict, transitional in STRICT_TO_TRANSITIONAL:
        xml = xml.replace(strict, transitional)
    return xml


def _without_invalid_characters(xml: bytes) -> bytes:
    if xml.startswith((b"\xff\xfe", b"\xfe\xff")):
        return xml  # UTF-16 XML: its bytes are not characters; left as it is
    xml = INVALID_XML_BYTES.sub(b"", xml)
    return INVALID_XML_REFERENCE.sub(_keep_valid_reference, xml)


def _keep_valid_reference(match: re.Match) -> bytes:
    digits = match.group(1)
    code = int(digits[1:], 16) if digits[:1] in (b"x", b"X") else int(digits)
    valid = (
        code in (0x9, 0xA, 0xD)
        or 0x20 <= code <= 0xD7FF
        or 0xE000 <= code <= 0xFFFD
        or 0x10000 <= code <= 0x10FFFF
    )
    return match.group(0) if valid else b""


def _rewrite(path: str, target: Path, transform: Callable[[bytes], bytes]) -> bool:
    """Copies the package to `target` with `transform` applied to its XML parts; other parts (images) are copied
    in pieces, stored. True when a part changed.

    Runs after _guard_zip, so every entry inflates to no more than its declared size and all of them to
    MAX_UNCOMPRESSED_BYTES at most; one XML part is held at a time (python-docx then holds them all anyway)."""
    changed = False
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as copy:
        for info in source.infolist():
            if info.is_dir():
                continue
            if info.filename.lower().endswith(XML_SUFFIXES):
                with source.open(info) as member:
                    data = member.read(info.file_size + 1)
                rewritten = transform(data)
                changed = changed or rewritten != data
                copy.writestr(info.filename, rewritten)
            else:
                entry = zipfile.ZipInfo(info.filename, info.date_time)
                with source.open(info) as member, copy.open(entry, "w", force_zip64=True) as out:
                    shutil.copyfileobj(member, out, 1024 * 1024)
    return changed


def extract_docx(path: str) -> Extracted:
    _guard_zip(path)
    with tempfile.TemporaryDirectory(prefix="minds-docx-") as workdir:
        if _is_strict(path):
            transitional = Path(workdir) / "transitional.docx"
            _rewrite(path, transitional, _to_transitional)
            path = str(transitional)
        return _extract(_open(path, Path(workdir)))


def _open(path: str, workdir: Path) -> DocxDocument:
    try:
        return Document(path)
    except (PackageNotFoundError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise ExtractionError("corrupt_file", "The Word document could not be read.") from exc
    except etree.XMLSyntaxError as exc:
        # Some generators write characters XML forbids (NUL, other controls, surrogates; raw or as &#…;) into the
        # text, and libxml2 refuses the whole part: it is read again without them. Other malformed XML, and
        # entity expansion (billion laughs) that libxml2 stops at its amplification limit, stay refused.
        cleaned = workdir / "cleaned.docx"
        if not _rewrite(path, cleaned, _without_invalid_characters):
            raise ExtractionError("corrupt_file", "The Word document's XML is malformed; refused.") from exc
    try:
        return Document(str(cleaned))
    except (PackageNotFoundError, KeyError, ValueError, zipfile.BadZipFile, etree.XMLSyntaxError) as exc:
        raise ExtractionError("corrupt_file", "The Word document's XML is malformed; refused.") from exc


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


def _extract(document: DocxDocument) -> Extracted:
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
