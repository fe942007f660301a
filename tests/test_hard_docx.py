"""Word documents as different producers lay them out, and ISO 29500 Strict ones.

A DOCX is a ZIP whose directory is at its end; only habit puts [Content_Types].xml first. Type detection used to
open the ZIP from the first 8 KB only and refused (415) every DOCX whose directory lay beyond them — a 480 KB
report whose first entry was not [Content_Types].xml. Each layout below is written the way its producer writes
it, accepted at upload through the API, and read with its text by the real worker.
"""

import io
import os
import random
import struct
import tracemalloc
import zipfile
import zlib
from functools import cache

import pytest
from docx import Document

from knowledge.errors import ExtractionError
from knowledge.extractors import extract_file
from knowledge.extractors.detect import DOCX_MIME, detect_file
from knowledge.models import Chunk
from minds.models import Mind
from tests.helpers import assert_error
from tests.test_ingestion_e2e import wait_finished

BIG_MEDIA_BYTES = 48 * 1024 * 1024  # with the text around it, just under the 50 MB document limit


def knowledge(mind: Mind) -> str:
    return f"/api/v1/minds/{mind.id}/knowledge"


@pytest.fixture
def mind(workspace):
    return Mind.objects.create(workspace=workspace, name="Archivist", slug="archivist-docx")


def png(extra_bytes: int = 0) -> bytes:
    """A valid 1×1 PNG; `extra_bytes` of random data ride in an ancillary chunk, so the image stays a real PNG
    (python-docx reads its header) but does not compress — as a photograph would not."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    body = chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
    if extra_bytes:
        body += chunk(b"raNd", os.urandom(extra_bytes))
    body += chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


def python_docx(marker: str, image: bytes | None = None) -> bytes:
    """python-docx's own output: a heading, paragraphs with `marker`, a table and optionally a picture."""
    document = Document()
    document.core_properties.title = f"Report {marker}"
    document.add_heading(f"Findings {marker}", level=1)
    document.add_paragraph(f"The survey {marker} measured tidal currents along the northern coast.")
    if image is not None:
        document.add_picture(io.BytesIO(image))
    document.add_heading("Method", level=2)
    document.add_paragraph(f"Buoys {marker} logged the water speed every ten minutes for a year.")
    table = document.add_table(rows=2, cols=2)
    for row, cells in zip(table.rows, (("Station", "Speed"), (f"North {marker}", "2.4 m/s")), strict=True):
        for cell, text in zip(row.cells, cells, strict=True):
            cell.text = text
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def entries(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


class _Unseekable:
    """A write-only stream: zipfile then writes each entry's sizes after its data (a data descriptor), as
    streaming producers (LibreOffice, Java's ZipOutputStream, web exporters) do."""

    def __init__(self):
        self.buffer = io.BytesIO()

    def write(self, data):
        return self.buffer.write(data)

    def flush(self):
        pass


def relaid(data: bytes, first: list[str], *, last: list[str] = (), stored=(), streamed=False) -> bytes:
    """`data`'s entries rewritten with `first` at the start and `last` at the end; `stored` entries
    uncompressed."""
    parts = entries(data)
    middle = [name for name in parts if name not in first and name not in last]
    order = [name for name in first if name in parts] + middle + [name for name in last if name in parts]
    target = _Unseekable() if streamed else io.BytesIO()
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in order:
            method = zipfile.ZIP_STORED if name in stored else zipfile.ZIP_DEFLATED
            info = zipfile.ZipInfo(name, (2026, 12, 1, 12, 0, 0))
            info.compress_type = method
            with archive.open(info, "w") as out:
                out.write(parts[name])
    return (target.buffer if streamed else target).getvalue()


def with_zip64_end_records(data: bytes) -> bytes:
    """The archive with a ZIP64 end of central directory record and locator, the classic end record pointing to
    them (0xFFFF counts, 0xFFFFFFFF offsets) — as ZIP64 writers such as .NET's or 7-Zip's do for large archives."""
    assert data[-22:-18] == b"PK\x05\x06", "no comment expected"
    _, _, _, on_disk, total, size, offset, _ = struct.unpack("<IHHHHIIH", data[-22:])
    body = data[:-22]
    zip64_end_at = len(body)
    zip64_end = struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, on_disk, total, size, offset)
    locator = struct.pack("<IIQI", 0x07064B50, 0, zip64_end_at, 1)
    classic = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    return body + zip64_end + locator + classic


def layouts() -> dict[str, tuple[bytes, str]]:
    """Upload name → (bytes, a marker word of its text)."""
    out = {}

    def add(name: str, make, image_bytes: int = 4000) -> None:
        marker = f"Marker{len(out)}x"
        out[name] = (make(python_docx(marker, png(image_bytes))), marker)

    add("python-docx.docx", lambda data: data)
    add("document-first.docx", lambda data: relaid(data, ["word/document.xml"], last=["[Content_Types].xml"]))
    add(
        "docprops-first.docx",
        lambda data: relaid(data, ["docProps/app.xml", "docProps/core.xml"], last=["[Content_Types].xml"]),
    )
    add(
        "image-first.docx",
        lambda data: relaid(
            data,
            ["word/media/image1.png", "docProps/thumbnail.jpeg"],
            last=["[Content_Types].xml"],
            stored=["word/media/image1.png"],
        ),
        image_bytes=480_000,  # the size of the report the issue was about
    )
    # LibreOffice: _rels/.rels first, [Content_Types].xml last, no mimetype entry, sizes in data descriptors.
    add(
        "libreoffice-like.docx",
        lambda data: relaid(
            data, ["_rels/.rels", "word/styles.xml"], last=["[Content_Types].xml"], streamed=True
        ),
    )
    add("zip64.docx", lambda data: with_zip64_end_records(relaid(data, ["word/document.xml"])))
    return out


@cache
def big_media_docx() -> tuple[bytes, str]:
    """~48 MB: an incompressible picture stored first, so the directory and [Content_Types].xml are 48 MB in."""
    marker = "BigMarker"
    data = relaid(
        python_docx(marker, png(BIG_MEDIA_BYTES)), ["word/media/image1.png"], stored=["word/media/image1.png"]
    )
    return data, marker


def test_every_layout_is_a_docx_although_most_heads_name_no_content_types():
    for name, (data, _) in layouts().items():
        assert detect_file(io.BytesIO(data), name).kind == "docx", name
    heads_without = {n for n, (data, _) in layouts().items() if b"[Content_Types].xml" not in data[:8192]}
    # The files the head-only detection refused: their first 8 KB do not name [Content_Types].xml.
    assert heads_without == {
        "document-first.docx",
        "docprops-first.docx",
        "image-first.docx",
        "libreoffice-like.docx",
    }


def test_the_zip64_and_streamed_layouts_are_what_they_claim():
    docs = layouts()
    zip64 = docs["zip64.docx"][0]
    assert zip64[-98:-94] == struct.pack("<I", 0x06064B50)  # the ZIP64 end record Python's reader follows
    streamed = docs["libreoffice-like.docx"][0]
    with zipfile.ZipFile(io.BytesIO(streamed)) as archive:
        infos = archive.infolist()
    assert all(info.flag_bits & 0x08 for info in infos)  # data descriptors
    assert infos[0].filename == "_rels/.rels" and infos[-1].filename == "[Content_Types].xml"
    assert "mimetype" not in {info.filename for info in infos}


def test_a_50_mb_docx_is_detected_from_its_directory_without_reading_the_file_into_memory(tmp_path):
    path = tmp_path / "big.docx"
    path.write_bytes(big_media_docx()[0])
    with path.open("rb") as handle:
        tracemalloc.start()
        try:
            kind = detect_file(handle, "big.docx")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert handle.tell() == 0  # left at its start, for the upload to be stored from there
    assert kind.kind == "docx"
    assert peak < 2 * 1024 * 1024, peak


@pytest.mark.django_db
def test_each_layout_is_accepted_at_upload(api, mind):
    for name, (data, _) in layouts().items():
        response = api.upload(f"{knowledge(mind)}/upload", name, data)
        assert response.status_code == 201, (name, response.json())
        assert response.json()["mimeType"] == DOCX_MIME and response.json()["category"] == "document", name


XLSX_MAIN = b"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"
PPTX_MAIN = b"application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml"


def package(content_type: bytes, part: str = "word/document.xml", mimetype: bytes | None = None) -> bytes:
    """A minimal Office Open XML package whose main `part` has `content_type`, or an OpenDocument one."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        if mimetype is not None:  # OpenDocument: first, stored
            archive.writestr("mimetype", mimetype, compress_type=zipfile.ZIP_STORED)
            archive.writestr("content.xml", b"<office:document-content/>")
        else:
            archive.writestr(part, b"<w:document/>")
            archive.writestr(
                "[Content_Types].xml",
                b'<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Override '
                b'PartName="/' + part.encode() + b'" ContentType="' + content_type + b'"/></Types>',
            )
    return buffer.getvalue()


def plain_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("notes/readme.txt", b"word/ is only a folder name here " * 400)
        archive.writestr("word/notes.txt", b"not a document part")
    return buffer.getvalue()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "name, make, says",
    [
        ("archive.docx", plain_zip, "ZIP archive, not a Word document"),
        (
            "budget.docx",
            lambda: package(XLSX_MAIN, "xl/workbook.xml"),
            "Excel workbook (XLSX)",
        ),
        (
            "slides.docx",
            lambda: package(PPTX_MAIN, "ppt/presentation.xml"),
            "PowerPoint presentation (PPTX)",
        ),
        (
            "macros.docx",
            lambda: package(b"application/vnd.ms-word.document.macroEnabled.main+xml"),
            "macro-enabled Word document (DOCM)",
        ),
        (
            "letter.docx",
            lambda: package(b"", mimetype=b"application/vnd.oasis.opendocument.text"),
            "OpenDocument file (application/vnd.oasis.opendocument.text)",
        ),
    ],
)
def test_a_zip_that_is_not_a_word_document_is_415_saying_what_it_is(api, mind, name, make, says):
    body = assert_error(api.upload(f"{knowledge(mind)}/upload", name, make()), 415, "unsupported_file_type")
    assert says in body["message"], body


def damaged(data: bytes, rng: random.Random) -> bytes:
    """`data` cut short, with bytes overwritten (mostly in the directory at the end) or with garbage inserted."""
    out = bytearray(data)
    roll = rng.random()
    if roll < 0.3:
        return bytes(out[: rng.randrange(4, len(out))])
    if roll < 0.8:
        for _ in range(rng.randrange(1, 20)):
            at = rng.randrange(len(out) - 200, len(out)) if rng.random() < 0.6 else rng.randrange(len(out))
            out[at] = rng.randrange(256)
        return bytes(out)
    at = rng.randrange(len(out))
    return bytes(out[:at] + rng.randbytes(rng.randrange(1, 100)) + out[at:])


def test_damaged_docx_bytes_are_refused_with_a_code_never_an_unexpected_exception(tmp_path):
    """Damaged directories made zipfile raise OSError, NotImplementedError, UnicodeDecodeError or OverflowError,
    which escaped detection (a 500) or extraction (`internal_error`)."""
    rng = random.Random(13)
    originals = [data for data, _ in layouts().values()] + [strict_docx()]
    path = tmp_path / "damaged.docx"
    codes = set()
    for _ in range(400):
        data = damaged(rng.choice(originals), rng)
        try:
            kind = detect_file(io.BytesIO(data), "damaged.docx")
            path.write_bytes(data)
            extract_file(str(path), kind.kind)
            codes.add("read")
        except ExtractionError as exc:
            codes.add(exc.code)
    assert {"unsupported_file_type", "corrupt_file"} <= codes, codes


# ISO 29500 Strict -------------------------------------------------------------------------------------------------

# Transitional → Strict, as Word's "Strict Open XML Document" writes them (ISO 29500-1 namespace table; relationship
# types are the Strict relationships namespace plus the type's name, extendedProperties not hyphenated).
TO_STRICT = (
    (
        b"http://schemas.openxmlformats.org/officeDocument/2006/relationships/extended-properties",
        b"http://purl.oclc.org/ooxml/officeDocument/relationships/extendedProperties",
    ),
    (
        b"http://schemas.openxmlformats.org/officeDocument/2006/relationships",
        b"http://purl.oclc.org/ooxml/officeDocument/relationships",
    ),
    (
        b"http://schemas.openxmlformats.org/officeDocument/2006/extended-properties",
        b"http://purl.oclc.org/ooxml/officeDocument/extendedProperties",
    ),
    (
        b"http://schemas.openxmlformats.org/wordprocessingml/2006/main",
        b"http://purl.oclc.org/ooxml/wordprocessingml/main",
    ),
    (b"http://schemas.openxmlformats.org/drawingml/2006/", b"http://purl.oclc.org/ooxml/drawingml/"),
    (
        b"http://schemas.openxmlformats.org/officeDocument/2006/",
        b"http://purl.oclc.org/ooxml/officeDocument/",
    ),
    (
        b"http://schemas.openxmlformats.org/schemaLibrary/2006/main",
        b"http://purl.oclc.org/ooxml/schemaLibrary/main",
    ),
)


def strict_docx(marker: str = "Strict") -> bytes:
    parts = entries(python_docx(marker, png(2000)))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in parts.items():
            if name.endswith((".xml", ".rels")):
                for transitional, strict in TO_STRICT:
                    data = data.replace(transitional, strict)
                if name == "word/document.xml":
                    data = data.replace(b"<w:document ", b'<w:document w:conformance="strict" ', 1)
            archive.writestr(name, data)
    return buffer.getvalue()


def test_a_strict_docx_is_strict_and_python_docx_alone_cannot_open_it(tmp_path):
    data = strict_docx()
    parts = entries(data)
    assert b"schemas.openxmlformats.org/wordprocessingml" not in parts["word/document.xml"]
    assert b"http://purl.oclc.org/ooxml/officeDocument/relationships/officeDocument" in parts["_rels/.rels"]
    path = tmp_path / "strict.docx"
    path.write_bytes(data)
    with pytest.raises(KeyError):
        Document(str(path))


def test_a_strict_docx_is_read_with_its_headings_paragraphs_and_table(tmp_path):
    path = tmp_path / "strict.docx"
    path.write_bytes(strict_docx("Kelp"))
    assert detect_file(path.open("rb"), "strict.docx").kind == "docx"
    extracted = extract_file(str(path), "docx")
    kinds = [(segment.kind, segment.text) for segment in extracted.segments]
    assert ("heading", "Findings Kelp") in kinds and ("heading", "Method") in kinds
    assert ("paragraph", "Buoys Kelp logged the water speed every ten minutes for a year.") in kinds
    assert ("table", "Station | Speed\nNorth Kelp | 2.4 m/s") in kinds
    method = next(s for s in extracted.segments if s.text.startswith("Buoys"))
    assert method.heading_path == ("Findings Kelp", "Method")
    assert extracted.title == "Report Kelp"


def test_a_damaged_strict_docx_is_still_corrupt_file(tmp_path):
    parts = entries(strict_docx())
    parts["word/document.xml"] = parts["word/document.xml"][:-40]  # cut inside the body
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    path = tmp_path / "cut.docx"
    path.write_bytes(buffer.getvalue())
    with pytest.raises(ExtractionError) as raised:
        extract_file(str(path), "docx")
    assert raised.value.code == "corrupt_file"


# End to end ---------------------------------------------------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_every_layout_a_50_mb_docx_and_a_strict_one_end_ready_with_their_text(api, mind, celery_worker):
    files = layouts() | {"big-media.docx": big_media_docx(), "strict.docx": (strict_docx("Reef"), "Reef")}
    assert 45 * 1024 * 1024 < len(files["big-media.docx"][0]) < 50 * 1024 * 1024
    ids = {}
    for name, (data, _) in files.items():
        uploaded = api.upload(f"{knowledge(mind)}/upload", name, data)
        assert uploaded.status_code == 201, (name, uploaded.json())
        created = api.post(knowledge(mind), {"type": "document", "fileUrl": uploaded.json()["fileUrl"]})
        assert created.status_code == 201, (name, created.json())
        ids[name] = created.json()["source"]["id"]
    sources = wait_finished(api, mind, list(ids.values()), timeout=300)
    for name, (_, marker) in files.items():
        source = sources[ids[name]]
        assert (source["status"], source["errorCode"]) == ("ready", None), (
            name,
            source,
            celery_worker.log_text(),
        )
        chunks = Chunk.objects.filter(source_id=ids[name]).order_by("ordinal")
        text = " ".join(chunks.values_list("content", flat=True))
        assert f"The survey {marker} measured tidal currents" in text, name
        assert f"North {marker} | 2.4 m/s" in text, name
        # Headings were read as such: the chunk sits under the first one (the document is one chunk long).
        assert chunks[0].heading_path == f"Findings {marker}" and "Method" in text, name
