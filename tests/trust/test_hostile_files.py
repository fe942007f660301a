"""Hostile files, generated here: each is refused at upload with a precise 4xx, or becomes a source that ends
`failed` with a precise errorCode (or, when its bytes are in fact a harmless file, `ready`) within its time limit,
in the real worker — which survives them: a normal source queued after them is still ready in time."""

import io
import struct
import time
import tracemalloc
import zipfile
import zlib

import pytest

from knowledge.errors import ExtractionError
from knowledge.extractors import extract_file
from knowledge.extractors.detect import detect_file
from knowledge.extractors.html import extract_html
from knowledge.models import Source
from minds.models import Mind
from tests import realfiles
from tests.fakesite import FakeSite
from tests.helpers import assert_error, wait_for

# Any hostile file must be finished with well inside this (the parsers' own guards take well under a second).
DEADLINE_SECONDS = 120

CONTENT_TYPES = (
    b'<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
    b'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships'
    b'+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" '
    b'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>'
)
RELS = (
    b'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
    b'relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    b'relationships/officeDocument" Target="word/document.xml"/></Relationships>'
)
W = b'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
DOCUMENT_HEAD = b'<?xml version="1.0"?><w:document ' + W + b"><w:body><w:p><w:r><w:t>"
DOCUMENT_TAIL = b"</w:t></w:r></w:p></w:body></w:document>"


def docx(document_xml: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", CONTENT_TYPES)
        archive.writestr("_rels/.rels", RELS)
        archive.writestr("word/document.xml", document_xml)
    return buffer.getvalue()


def zip_bomb_docx(megabytes: int = 400, lie: bool = False) -> bytes:
    """A ~400 KB DOCX whose document.xml inflates to `megabytes` MB, streamed so the test never holds it.
    `lie`: the archive's headers claim document.xml is 1 KB, so a guard trusting them lets it through."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", CONTENT_TYPES)
        archive.writestr("_rels/.rels", RELS)
        with archive.open("word/document.xml", "w") as part:
            part.write(DOCUMENT_HEAD)
            block = b"A" * (1024 * 1024)
            for _ in range(megabytes):
                part.write(block)
            part.write(DOCUMENT_TAIL)
    data = bytearray(buffer.getvalue())
    if lie:
        name = b"word/document.xml"
        for signature, size_at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
            at = data.find(signature)
            while at != -1:
                name_at = at + (30 if signature == b"PK\x03\x04" else 46)
                if data[name_at : name_at + len(name)] == name:
                    data[at + size_at : at + size_at + 4] = struct.pack("<I", 1024)
                at = data.find(signature, at + 4)
    return bytes(data)


def billion_laughs_docx() -> bytes:
    entities = b'<!ENTITY lol0 "lol">' + b"".join(
        b'<!ENTITY lol%d "%s">' % (i, b"&lol%d;" % (i - 1) * 10) for i in range(1, 10)
    )
    return docx(
        b'<?xml version="1.0"?><!DOCTYPE w:document ['
        + entities
        + b"]><w:document "
        + W
        + b"><w:body><w:p><w:r><w:t>&lol9;</w:t></w:r></w:p></w:body></w:document>"
    )


def raw_pdf(objects: dict[int, bytes]) -> bytes:
    """A PDF with a classic xref table written by hand, so its structure can be as wrong as wanted."""
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n")
    offsets = {}
    for number in sorted(objects):
        offsets[number] = out.tell()
        out.write(b"%d 0 obj\n%s\nendobj\n" % (number, objects[number]))
    xref, size = out.tell(), max(objects) + 1
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % size)
    for number in range(1, size):
        out.write(b"%010d 00000 n \n" % offsets.get(number, 0))
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, xref))
    return out.getvalue()


def self_referencing_page_tree_pdf() -> bytes:
    return raw_pdf(
        {
            1: b"<< /Type /Catalog /Pages 2 0 R >>",
            2: b"<< /Type /Pages /Kids [2 0 R 3 0 R] /Count 2 >>",
            3: b"<< /Type /Pages /Kids [2 0 R] /Parent 2 0 R /Count 1 >>",
        }
    )


def looping_object_stream_pdf() -> bytes:
    """An xref stream puts the page tree inside object stream 5, which /Extends itself; the tree is its own kid."""
    stream = b"4 0 << /Type /Pages /Kids [4 0 R] /Count 1 >>"
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n")
    catalog = out.tell()
    out.write(b"1 0 obj\n<< /Type /Catalog /Pages 4 0 R >>\nendobj\n")
    objstm = out.tell()
    out.write(
        b"5 0 obj\n<< /Type /ObjStm /N 1 /First 4 /Extends 5 0 R /Length %d >>\nstream\n%s\nendstream\nendobj\n"
        % (len(stream), stream)
    )
    xref = out.tell()

    def row(kind: int, field2: int, field3: int) -> bytes:
        return struct.pack(">BIH", kind, field2, field3)

    rows = row(0, 0, 65535) + row(1, catalog, 0) + row(0, 0, 0) * 2 + row(2, 5, 0) + row(1, objstm, 0)
    rows += row(1, xref, 0)
    out.write(
        b"6 0 obj\n<< /Type /XRef /Size 7 /W [1 4 2] /Root 1 0 R /Length %d >>\nstream\n%s\nendstream\nendobj\n"
        b"startxref\n%d\n%%%%EOF\n" % (len(rows), rows, xref)
    )
    return out.getvalue()


def one_page_pdf(content: bytes, filters: bytes = b"", resources: bytes = b"") -> bytes:
    return raw_pdf(
        {
            1: b"<< /Type /Catalog /Pages 2 0 R >>",
            2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << %s "
            b"/Font << /F1 6 0 R >> >> >>" % resources,
            4: b"<< /Length %d %s >>\nstream\n%s\nendstream" % (len(content), filters, content),
            5: b"<< /Type /XObject /Subtype /Form /BBox [0 0 10 10] /Resources << /XObject << /X1 5 0 R >> >> "
            b"/Length 10 >>\nstream\nq /X1 Do Q\nendstream",
            6: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        }
    )


def recursive_form_xobject_pdf() -> bytes:
    """A page with text, then a form XObject that draws itself forever."""
    return one_page_pdf(b"BT /F1 12 Tf 72 720 Td (Hello) Tj ET /X1 Do", resources=b"/XObject << /X1 5 0 R >>")


def flate_bomb_pdf(megabytes: int = 300) -> bytes:
    """A 300 KB page whose content stream inflates to 300 MB of drawing operators."""
    compressor = zlib.compressobj(9)
    block = b"0 0 m " * (1024 * 1024 // 6)
    stream = b"".join(compressor.compress(block) for _ in range(megabytes)) + compressor.flush()
    return one_page_pdf(stream, filters=b"/Filter /FlateDecode")


def nested_html(depth: int = 10_000) -> bytes:
    return (
        b"<!doctype html><html><head><title>Deep</title></head><body>"
        + b"<div>" * depth
        + b"<p>Deep text at the bottom of ten thousand divs.</p>"
        + b"</div>" * depth
        + b"</body></html>"
    )


LONE_SURROGATE_MARKDOWN = "# Notes\n\nA lone surrogate \ud800 in otherwise fine text.\n".encode(
    "utf-8", "surrogatepass"
)
NUL_MARKDOWN = b"# Notes\n\nA NUL \x00 in the middle of the text.\n"

# The first byte of each accepted type: too short for any signature, so the bytes are plain text.
ONE_BYTE = {
    "one.pdf": b"%",
    "one.docx": b"P",
    "one.md": b"#",
    "one.txt": b"a",
    "one.html": b"<",
    "one.mp3": b"I",
    "one.wav": b"R",
    "one.m4a": b"\x00",
    "one.ogg": b"O",
    "one.flac": b"f",
}
ZERO_BYTE = ["zero.pdf", "zero.docx", "zero.md", "zero.txt", "zero.html", "zero.mp3", "zero.wav", "zero.flac"]


@pytest.fixture
def mind(workspace):
    return Mind.objects.create(workspace=workspace, name="Bastion", slug="bastion-hostile")


def knowledge(mind: Mind) -> str:
    return f"/api/v1/minds/{mind.id}/knowledge"


@pytest.mark.django_db
def test_binary_markdown_and_a_nul_byte_of_a_one_byte_m4a_are_refused_at_upload_with_415(api, mind):
    for name, content in (("nul.md", NUL_MARKDOWN), ("one.m4a", ONE_BYTE["one.m4a"])):
        assert_error(api.upload(f"{knowledge(mind)}/upload", name, content), 415, "unsupported_file_type")
    assert not Source.objects.filter(upload__isnull=False).exists()


@pytest.mark.django_db
def test_markdown_text_with_nul_or_a_lone_surrogate_is_a_400_and_creates_nothing(api, mind):
    before = Source.objects.count()
    response = api.post(knowledge(mind), {"type": "text", "content": "# Notes\n\nA NUL \u0000 here."})
    assert_error(response, 400, "malformed_request")
    body = '{"type": "text", "content": "# Notes\\n\\nA lone surrogate \\ud800 here."}'
    assert_error(api.post(knowledge(mind), body), 400, "malformed_request")
    assert Source.objects.count() == before


def test_the_extractors_refuse_the_hostile_documents_with_precise_codes(tmp_path):
    """The same corpus without the worker: a billion-laughs DOCX used to escape as lxml's XMLSyntaxError and end
    `internal_error`."""
    for name, (make, (status, code)) in CORPUS.items():
        if status != FAILED or name == "zero.pdf":
            continue
        path = tmp_path / name
        path.write_bytes(make())
        kind = detect_file(path.read_bytes()[:8192], name).kind
        with pytest.raises(ExtractionError) as raised:
            extract_file(str(path), kind)
        assert raised.value.code == code, name


def test_a_zip_bomb_lying_about_its_sizes_is_refused_without_inflating_it_in_memory(tmp_path):
    """Its headers claim 1 KB for a 400 MB document.xml: python-docx read the entry whole (900 MB resident)
    before the CRC check failed; it is now inflated in bounded pieces and refused at the declared size."""
    path = tmp_path / "lying.docx"
    path.write_bytes(zip_bomb_docx(400, lie=True))
    tracemalloc.start()
    try:
        with pytest.raises(ExtractionError) as raised:
            extract_file(str(path), "docx")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert raised.value.code == "corrupt_file"
    assert peak < 50 * 1024 * 1024, peak


def add_upload(api, mind: Mind, name: str, content: bytes) -> str:
    uploaded = api.upload(f"{knowledge(mind)}/upload", name, content)
    assert uploaded.status_code == 201, (name, uploaded.json())
    assert uploaded.json()["category"] == "document", (name, uploaded.json())
    created = api.post(knowledge(mind), {"type": "document", "fileUrl": uploaded.json()["fileUrl"]})
    assert created.status_code == 201, (name, created.json())
    return created.json()["source"]["id"]


FAILED = "failed"
# name → (bytes, the final status and errorCode)
CORPUS = {
    "zip-bomb-400mb.docx": (lambda: zip_bomb_docx(400), (FAILED, "file_too_large")),
    "zip-bomb-lying-sizes.docx": (lambda: zip_bomb_docx(400, lie=True), (FAILED, "corrupt_file")),
    "billion-laughs.docx": (billion_laughs_docx, (FAILED, "corrupt_file")),
    "self-referencing-pages.pdf": (self_referencing_page_tree_pdf, (FAILED, "corrupt_file")),
    "looping-object-stream.pdf": (looping_object_stream_pdf, (FAILED, "corrupt_file")),
    "recursive-form-xobject.pdf": (recursive_form_xobject_pdf, ("ready", None)),
    "flate-bomb-content.pdf": (flate_bomb_pdf, (FAILED, "no_text_layer")),
    "ten-thousand-divs.html": (nested_html, (FAILED, "empty_content")),
    "lone-surrogate.md": (lambda: LONE_SURROGATE_MARKDOWN, ("ready", None)),
    # Bytes decide, never the name: a real PDF named .docx is read as the PDF it is.
    "really-a-pdf.docx": (realfiles.two_column_pdf, ("ready", None)),
    # The same empty bytes under every name are one stored upload (deduplicated): one source stands for them.
    "zero.pdf": (lambda: b"", (FAILED, "empty_content")),
}


def test_a_page_nested_beyond_the_parsers_depth_says_so():
    with pytest.raises(ExtractionError) as raised:
        extract_html(nested_html())
    assert raised.value.code == "empty_content"
    assert "nest 10003 levels deep" in raised.value.message and "no deeper than 256" in raised.value.message
    with pytest.raises(ExtractionError) as shallow:
        extract_html(b"<html><body><nav></nav></body></html>")
    assert shallow.value.message == "No readable text was found on the page."


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_hostile_files_fail_with_precise_codes_in_time_and_the_worker_survives(
    api, mind, settings, celery_worker
):
    settings.SSRF_ALLOW_LOOPBACK = True  # the API checks URLs too; the test worker allows the local site
    started = time.monotonic()
    ids = {name: add_upload(api, mind, name, make()) for name, (make, _) in CORPUS.items()}
    for name in ZERO_BYTE[1:]:  # every other empty file is the upload already stored (200, deduplicated)
        uploaded = api.upload(f"{knowledge(mind)}/upload", name, b"")
        assert uploaded.status_code == 200 and uploaded.json()["deduplicated"], uploaded.json()
    for name, content in ONE_BYTE.items():
        if name != "one.m4a":  # a NUL byte is not text: refused at upload (test above)
            ids[name] = add_upload(api, mind, name, content)
    with FakeSite() as site:
        site.route("/deep", nested_html(), content_type="text/html")
        ids["web:ten-thousand-divs"] = api.post(
            knowledge(mind), {"type": "url", "url": site.url("/deep")}
        ).json()["source"]["id"]
        # A normal source queued after all of them is still ready within its deadline.
        normal = api.post(knowledge(mind), {"type": "text", "content": "# Normal\n\nAn ordinary note."})
        ids["normal"] = normal.json()["source"]["id"]

        def finished():
            statuses = Source.objects.filter(id__in=ids.values()).values_list("status", flat=True)
            return all(status in ("ready", "failed") for status in statuses)

        wait_for(
            finished,
            timeout=DEADLINE_SECONDS,
            interval=0.3,
            what=f"sources to finish ({celery_worker.log_text()})",
        )
    elapsed = time.monotonic() - started
    outcomes = {
        name: (source.status, source.error_code or None)
        for name, sid in ids.items()
        for source in [Source.objects.get(id=sid)]
    }
    expected = {name: outcome for name, (_, outcome) in CORPUS.items()}
    expected |= {name: ("ready", None) for name in ONE_BYTE if name != "one.m4a"}
    expected |= {"one.md": (FAILED, "empty_content"), "one.html": (FAILED, "empty_content")}
    expected |= {"web:ten-thousand-divs": (FAILED, "empty_content"), "normal": ("ready", None)}
    assert outcomes == expected, celery_worker.log_text()
    assert elapsed < DEADLINE_SECONDS
    for name, sid in ids.items():  # each one's own processing took seconds, far from the stage time limit
        source = Source.objects.get(id=sid)
        took = ((source.ready_at or source.failed_at) - source.processing_started_at).total_seconds()
        assert 0 <= took < (60 if source.status == "ready" else 20), (name, took)  # ready ones embed
    assert celery_worker.proc.poll() is None  # the worker is alive
    assert Source.objects.get(id=ids["really-a-pdf.docx"]).mime_type == "application/pdf"
    assert Source.objects.get(id=ids["one.docx"]).mime_type == "text/plain"
