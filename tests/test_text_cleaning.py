"""Text no column can take never reaches the database: NUL, lone surrogates and other controls are removed from
every extractor's output in one place (knowledge/extractors/clean.py, applied by the pipeline before chunking).

A long LaTeX PDF once gave text with NUL bytes (Computer Modern puts Γ at code 0 and the PDF had no ToUnicode map);
the chunk insert raised DataError and the source failed `internal_error` after a minute of work. Each extractor
path below is fed such characters and ends `ready` with them gone and its real text kept.
"""

import io
import re
import zipfile

import pytest
from docx import Document
from lxml.etree import XMLSyntaxError
from pypdf import PdfReader
from youtube_transcript_api import FetchedTranscript, FetchedTranscriptSnippet, YouTubeTranscriptApi

from knowledge import tasks
from knowledge.extractors import extract_file
from knowledge.extractors.base import Extracted, Segment
from knowledge.extractors.clean import clean_extracted, clean_text
from knowledge.models import Chunk, Source
from minds.models import Mind
from tests.fakesite import FakeSite
from tests.realfiles import fixture
from tests.test_ingestion_e2e import wait_finished

# What must never be stored: NUL and the other C0 controls but \t \n \r, DEL, C1 controls, surrogates.
FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def knowledge(mind: Mind) -> str:
    return f"/api/v1/minds/{mind.id}/knowledge"


@pytest.fixture
def mind(workspace):
    return Mind.objects.create(workspace=workspace, name="Scrubber", slug="scrubber-clean")


# The function -------------------------------------------------------------------------------------------------------


def test_clean_text_drops_nul_controls_and_lone_surrogates_and_keeps_the_text():
    dirty = "Ti\x00dal\x01 power\x07 is\x1b st\x7feady\x85 and \x9fcheap \ud800here\udfff."
    assert clean_text(dirty) == "Tidal power is steady\n and cheap here."


def test_clean_text_keeps_whitespace_and_real_characters_and_joins_surrogate_pairs():
    assert clean_text("a\tb\nc\r\nd") == "a\tb\nc\r\nd"
    assert clean_text("page one\x0cpage two\x0bline") == "page one\npage two\nline"
    assert clean_text("café 日本語 ∑ \U0001f30a") == "café 日本語 ∑ \U0001f30a"
    assert (
        clean_text("wave \ud83c\udf0a") == "wave \U0001f30a"
    )  # a pair split into code points is one character
    clean = "An ordinary sentence."
    assert clean_text(clean) is clean


def test_clean_extracted_cleans_segments_headings_title_and_metadata_and_drops_what_empties():
    extracted = Extracted(
        segments=[
            Segment("Intro\x00duction", kind="heading", heading_path=("Intro\x00duction",)),
            Segment("\x00\x01\x02", heading_path=("Intro\x00duction",)),
            Segment("Body \ud800text.", heading_path=("Intro\x00duction",), page=3),
        ],
        title="Ti\x00tle",
        metadata={"author": "A\x01da", "nested": {"k\x00": ["v\x00", 1]}, "pages": 3},
    )
    cleaned = clean_extracted(extracted)
    assert [(s.text, s.heading_path, s.page) for s in cleaned.segments] == [
        ("Introduction", ("Introduction",), None),
        ("Body text.", ("Introduction",), 3),
    ]
    assert cleaned.title == "Title"
    assert cleaned.metadata == {"author": "Ada", "nested": {"k": ["v", 1]}, "pages": 3}


# Files whose extractors give such characters --------------------------------------------------------------------------

TOUNICODE = (
    b"/CIDInit /ProcSet findresource begin 12 dict begin begincmap /CIDSystemInfo << /Registry (Adobe) "
    b"/Ordering (UCS) /Supplement 0 >> def /CMapName /Adobe-Identity-UCS def /CMapType 2 def "
    b"1 begincodespacerange <00> <FF> endcodespacerange 3 beginbfchar <2A> <0000> <2B> <D800> <2C> <001B> "
    b"endbfchar endcmap CMapName currentdict /CMap defineresource pop end end"
)


def control_pdf() -> bytes:
    """One page in two fonts: F1 has no ToUnicode map, so the string's NUL, BEL and ESC bytes come out as they are
    (as a pdfTeX PDF's code-0 Γ does); F2's ToUnicode map sends `*`, `+` and `,` to U+0000, a lone U+D800 and ESC."""
    content = (
        b"BT /F1 12 Tf 50 700 Td (The tidal\\000 barrage\\007 turns\\033 twice a day.) Tj "
        b"0 -20 Td (Its\\000 turbines feed the northern grid.) Tj "
        b"/F2 12 Tf 0 -20 Td (Spring*tides+give,the most power.) Tj ET"
    )
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 5 0 R /F2 6 0 R >> >> /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /ToUnicode 7 0 R >>",
        b"<< /Length %d >>\nstream\n" % len(TOUNICODE) + TOUNICODE + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def control_docx() -> bytes:
    """python-docx refuses to write control characters, so they are put into document.xml by hand, raw and as
    character references (&#0; &#x1B; &#xD800;), as some report generators write them; XML forbids both."""
    document = Document()
    document.add_heading("Harbour log", level=1)
    document.add_paragraph("PLACEHOLDER-ONE")
    document.add_paragraph("PLACEHOLDER-TWO")
    buffer = io.BytesIO()
    document.save(buffer)
    source = zipfile.ZipFile(io.BytesIO(buffer.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in source.namelist():
            data = source.read(name)
            if name == "word/document.xml":
                data = data.replace(
                    b"PLACEHOLDER-ONE", b"The ferry\x00 left\x01 at dawn\x1f with forty cars."
                )
                data = data.replace(b"PLACEHOLDER-TWO", b"Fog&#0; delayed&#x1B; the&#xD800; return crossing.")
            archive.writestr(name, data)
    return out.getvalue()


def control_text() -> bytes:
    """UTF-8 text with NUL past the first 8 KB (the head decides it is text), a C1 control, DEL and a surrogate
    written as CESU-8 bytes (ED A0 80), as a Java or MySQL export of a broken string would."""
    filler = "Harbour records list every vessel by name and tonnage. " * 160  # > 8 KB
    return (
        filler.encode()
        + b"\n\nThe pilot boat\x00 met the tanker\x85 at the outer\x7f buoy.\n\n"
        + b"Its captain\xed\xa0\x80 signed the log.\n"
    )


def control_utf16_markdown() -> bytes:
    """UTF-16 with a BOM whose text holds a lone high surrogate and NUL characters."""
    text = "# Tide tables\n\nHigh water\x00 at six, low water\x01 at noon.\n\nNeap tides are weakest.\n"
    data = b"\xff\xfe" + text.encode("utf-16-le")
    at = data.index("Neap".encode("utf-16-le"))
    return data[:at] + b"\x00\xd8" + data[at:]  # U+D800 alone, before "Neap"


CONTROL_HTML = (
    b"<!doctype html><html><head><title>Lock\x01 keeper</title></head><body><nav>Home</nav><article>"
    b"<h1>The lock\x02 keeper</h1>"
    + b"<p>The lock keeper opens the gates&#0; twice an hour\x07 for the barges.</p>" * 6
    + b"<p>At night\x1b the gates stay shut.</p></article></body></html>"
)


def test_pypdf_really_gives_nul_surrogates_and_controls_for_the_generated_pdf():
    text = PdfReader(io.BytesIO(control_pdf())).pages[0].extract_text()
    assert "\x00" in text and "\ud800" in text and "\x07" in text and "\x1b" in text


def test_a_docx_with_characters_xml_forbids_is_read_without_them(tmp_path):
    path = tmp_path / "log.docx"
    path.write_bytes(control_docx())
    with pytest.raises(XMLSyntaxError):  # python-docx alone refuses the whole document
        Document(str(path))
    texts = [segment.text for segment in extract_file(str(path), "docx").segments]
    assert texts == [
        "Harbour log",
        "The ferry left at dawn with forty cars.",
        "Fog delayed the return crossing.",
    ]


def assert_clean(source_id: str, *kept: str) -> str:
    chunks = list(Chunk.objects.filter(source_id=source_id).order_by("ordinal"))
    assert chunks, source_id
    for chunk in chunks:
        assert not FORBIDDEN.search(chunk.content), repr(chunk.content)
        assert not FORBIDDEN.search(chunk.heading_path), repr(chunk.heading_path)
    source = Source.objects.get(id=source_id)
    for key, value in source.metadata.items():
        assert not (isinstance(value, str) and FORBIDDEN.search(value)), (key, value)
    text = " ".join(" ".join(chunk.content.split()) for chunk in chunks)
    for phrase in kept:
        assert phrase in text, (phrase, text[-500:])
    return text


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_every_extractor_path_ends_ready_without_control_characters(api, mind, settings, celery_worker):
    settings.SSRF_ALLOW_LOOPBACK = True  # the API checks URLs too; the test worker allows the local site
    files = {
        "latex-like.pdf": control_pdf(),
        "harbour-log.docx": control_docx(),
        "export.txt": control_text(),
        "tides.md": control_utf16_markdown(),
        "lock-keeper.html": CONTROL_HTML,
    }
    ids = {}
    for name, data in files.items():
        uploaded = api.upload(f"{knowledge(mind)}/upload", name, data)
        assert uploaded.status_code == 201, (name, uploaded.json())
        created = api.post(knowledge(mind), {"type": "document", "fileUrl": uploaded.json()["fileUrl"]})
        assert created.status_code == 201, (name, created.json())
        ids[name] = created.json()["source"]["id"]
    with FakeSite() as site:
        site.route("/lock", CONTROL_HTML, content_type="text/html; charset=utf-8")
        site.route("/jfk.flac", fixture("audio/jfk.flac").read_bytes(), content_type="audio/flac")
        feed = (
            '<?xml version="1.0"?><rss version="2.0"><channel><title>Speeches</title>'
            "<item><title>Inaugural\x00 address\x01</title><pubDate>Mon, 02 Nov 2026 10:00:00 GMT</pubDate>"
            f'<enclosure url="{site.url("/jfk.flac")}" type="audio/flac" length="1"/></item></channel></rss>'
        ).encode()
        site.route("/feed.xml", feed, content_type="application/rss+xml")
        for name, body in (
            ("web:lock", {"type": "url", "url": site.url("/lock")}),
            ("feed", {"type": "podcast", "feedUrl": site.url("/feed.xml")}),
        ):
            created = api.post(knowledge(mind), body)
            assert created.status_code == 201, (name, created.json())
            ids[name] = created.json()["source"]["id"]
        sources = wait_finished(api, mind, list(ids.values()), timeout=300)
    outcomes = {name: (sources[sid]["status"], sources[sid]["errorCode"]) for name, sid in ids.items()}
    assert outcomes == {name: ("ready", None) for name in ids}, (outcomes, celery_worker.log_text())

    pdf = assert_clean(ids["latex-like.pdf"], "Its turbines feed the northern grid.")
    assert "tidal barrage turns twice a day." in pdf and "Spring" in pdf and "the most power." in pdf
    assert_clean(
        ids["harbour-log.docx"],
        "Harbour log",
        "The ferry left at dawn with forty cars.",
        "Fog delayed the return crossing.",
    )
    assert_clean(ids["export.txt"], "The pilot boat met the tanker", "at the outer buoy.", "signed the log.")
    assert_clean(ids["tides.md"], "High water at six, low water at noon.", "Neap tides are weakest.")
    for name in ("lock-keeper.html", "web:lock"):
        assert_clean(ids[name], "for the barges.", "At night the gates stay shut.")
    assert_clean(ids["feed"], "ask not what your country can do for you")
    assert Source.objects.get(id=ids["feed"]).metadata["episodeTitle"] == "Inaugural address"


@pytest.mark.django_db
def test_youtube_captions_with_nul_and_surrogates_end_ready_cleaned(
    workspace, mind, monkeypatch, django_capture_on_commit_callbacks
):
    """YouTube replaced at the library boundary, as in test_youtube_source.py (the pipeline runs in-process)."""
    source = Source.objects.create(
        workspace=workspace,
        mind=mind,
        type="youtube",
        name="Harbour talk",
        youtube_video_id="dQw4w9WgXcQ",
        url="https://www.youtube.com/watch?v=dQw4w9WgXcQ",
    )
    lines = [f"Part {i}\x00 of the talk\ud800 explains\x07 the harbour cranes." for i in range(12)]
    snippets = [FetchedTranscriptSnippet(text=t, start=i * 4.0, duration=4.0) for i, t in enumerate(lines)]
    monkeypatch.setattr(
        YouTubeTranscriptApi,
        "fetch",
        lambda self, video_id, languages=("en",), preserve_formatting=False: FetchedTranscript(
            snippets, video_id, "English", "en", False
        ),
    )
    with django_capture_on_commit_callbacks():
        assert tasks.source_process.apply((source.id,)).get() == "ready"
    assert_clean(source.id, "Part 0 of the talk explains the harbour cranes.", "Part 11 of the talk")
