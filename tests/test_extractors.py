"""Extractors and chunking on files the tests make themselves (the real files run end to end elsewhere)."""

import io
import zipfile

import pytest
from docx import Document
from pypdf import PdfReader, PdfWriter

from knowledge.chunking import chunk_segments
from knowledge.errors import ExtractionError
from knowledge.extractors import extract_file, extract_text
from knowledge.extractors.base import Segment
from knowledge.extractors.detect import detect_file
from knowledge.extractors.feed import latest_episode
from knowledge.extractors.youtube import video_id
from tests.realfiles import two_column_pdf


def words(text: str) -> int:
    return len(text.split())


def test_owner_password_only_pdf_opens_and_user_password_fails(tmp_path):
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(two_column_pdf())))
    writer.encrypt(user_password="", owner_password="owner-secret")
    owner_only = tmp_path / "owner.pdf"
    writer.write(owner_only)
    extracted = extract_file(str(owner_only), "pdf")
    assert extracted.page_count == 3 and "Lorem" in extracted.text

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(two_column_pdf())))
    writer.encrypt(user_password="user-secret", owner_password="owner-secret")
    locked = tmp_path / "locked.pdf"
    writer.write(locked)
    with pytest.raises(ExtractionError) as caught:
        extract_file(str(locked), "pdf")
    assert caught.value.code == "pdf_encrypted"


def test_truncated_pdf_fails_cleanly(tmp_path):
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n")
    with pytest.raises(ExtractionError) as caught:
        extract_file(str(broken), "pdf")
    assert caught.value.code in ("corrupt_file", "no_text_layer")


def test_docx_headings_lists_and_tables(tmp_path):
    document = Document()
    document.add_heading("Handbook", level=1)
    document.add_heading("Safety", level=2)
    document.add_paragraph("Wear goggles at all times.")
    document.add_paragraph("Check the valves", style="List Bullet")
    table = document.add_table(rows=2, cols=2)
    table.rows[0].cells[0].text, table.rows[0].cells[1].text = "Tool", "Torque"
    table.rows[1].cells[0].text, table.rows[1].cells[1].text = "Wrench", "40 Nm"
    path = tmp_path / "handbook.docx"
    document.save(path)
    extracted = extract_file(str(path), "docx")
    kinds = {s.kind for s in extracted.segments}
    assert {"heading", "paragraph", "list", "table"} <= kinds
    goggles = next(s for s in extracted.segments if "goggles" in s.text)
    assert goggles.heading_path == ("Handbook", "Safety")
    assert "Wrench | 40 Nm" in extracted.text and extracted.title == "Handbook"


def test_docx_zip_bomb_is_refused_before_parsing(tmp_path):
    path = tmp_path / "bomb.docx"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", b"<" + b"a" * (400 * 1024 * 1024) + b">")
    assert path.stat().st_size < 2 * 1024 * 1024
    with pytest.raises(ExtractionError) as caught:
        extract_file(str(path), "docx")
    assert caught.value.code == "file_too_large"


@pytest.mark.parametrize(
    "data",
    [
        "Ünïcödé café – naïve".encode(),
        "\ufeffÜnïcödé café – naïve".encode(),
        "Ünïcödé café – naïve".encode("utf-16"),
        "Ünïcödé café naïve".encode("latin-1"),
    ],
)
def test_text_encodings(data):
    assert "café" in extract_text(data).text and "Ünïcödé" in extract_text(data).text


def test_markdown_headings_become_structure():
    doc = b"# Guide\n\nIntro text.\n\n## Install\n\nRun make.\n\n```\ncode block\n```\n\nSetext\n------\n\nBody."
    extracted = extract_text(doc, markdown=True)
    run = next(s for s in extracted.segments if s.text == "Run make.")
    assert run.heading_path == ("Guide", "Install")
    assert any(s.kind == "code" and "code block" in s.text for s in extracted.segments)
    body = next(s for s in extracted.segments if s.text == "Body.")
    assert body.heading_path == ("Guide", "Setext") and extracted.title == "Guide"


def segments_of(markdown: str) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(s.kind, s.text, s.heading_path) for s in extract_text(markdown.encode(), markdown=True).segments]


def test_markdown_fences_keep_hash_lines_and_shorter_fences_as_code():
    # A Markdown example inside a code block: the inner ``` and the `#` lines are code, not fences and headings.
    doc = "# Doc\n\n~~~markdown\n```python\n# not a heading\n```\n~~~\n\n````\n```\n# nor this\n```\n````\n\nAfter."
    assert segments_of(doc) == [
        ("heading", "Doc", ("Doc",)),
        ("code", "```python\n# not a heading\n```", ("Doc",)),
        ("code", "```\n# nor this\n```", ("Doc",)),
        ("paragraph", "After.", ("Doc",)),
    ]


def test_markdown_setext_headings_span_lines_and_rules_are_not_text():
    doc = "Line one\nline two\n========\n\nBody.\n\n---\n\n* * *\n\nSub\n---\n\nEnd."
    assert segments_of(doc) == [
        ("heading", "Line one line two", ("Line one line two",)),
        ("paragraph", "Body.", ("Line one line two",)),
        ("heading", "Sub", ("Line one line two", "Sub")),
        ("paragraph", "End.", ("Line one line two", "Sub")),
    ]


def test_markdown_nested_lists_tables_without_edge_pipes_and_inline_markup():
    doc = (
        "# Doc\n\n- parent with **bold** and a [link](https://x.test/)\n  - child\n\n    ```sh\n    # install\n"
        "    make\n    ```\n- second\n\n1. first `code`\n2. second\n\nName | Value\n--- | ---\nfoo | 1\n"
    )
    assert [(kind, text) for kind, text, _ in segments_of(doc)] == [
        ("heading", "Doc"),
        ("list", "- parent with bold and a link"),
        ("list", "- child"),
        ("code", "# install\nmake"),
        ("list", "- second"),
        ("list", "1. first code"),
        ("list", "2. second"),
        ("table", "Name | Value\nfoo | 1"),
    ]


def test_markdown_nested_past_the_parser_limit_keeps_its_text():
    # markdown-it skips what is nested deeper than its limit; the text must still reach the chunks.
    doc = "# Doc\n\n" + "".join("  " * depth + f"- level{depth}\n" for depth in range(15)) + "\nAfter.\n"
    text = extract_text(doc.encode(), markdown=True).text
    assert "level14" in text and "After." in text


@pytest.mark.parametrize("data", [b"", b"   \n\n\t", "\u200b".encode()])
def test_empty_text_fails_as_empty_content(data):
    with pytest.raises(ExtractionError) as caught:
        extract_text(data)
    assert caught.value.code == "empty_content"


def test_detection_uses_bytes_not_names():
    pdf = two_column_pdf()[:8192]
    assert detect_file(pdf, "notes.txt").kind == "pdf"
    assert detect_file(b"# Title\n\ntext", "readme.md").kind == "md"
    assert detect_file(b"# Title\n\ntext", "readme.pdf").kind == "txt"
    for data in (
        b"MZ\x90\x00" + b"\x00" * 64,
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 64,
        b"\x7fELF" + b"\x00" * 64,
    ):
        with pytest.raises(ExtractionError) as caught:
            detect_file(data, "file.pdf")
        assert caught.value.code == "unsupported_file_type"


@pytest.mark.parametrize(
    "url",
    [
        "https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=42",
        "https://youtu.be/dQw4w9WgXcQ?si=abc",
        "https://www.youtube.com/embed/dQw4w9WgXcQ",
        "https://youtube.com/shorts/dQw4w9WgXcQ",
        "https://m.youtube.com/watch?v=dQw4w9WgXcQ",
        "https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ",
    ],
)
def test_youtube_link_forms(url):
    assert video_id(url) == "dQw4w9WgXcQ"


@pytest.mark.parametrize(
    "url",
    [
        "https://vimeo.com/123",
        "https://www.youtube.com/watch?v=short",
        "https://youtube.com/channel/x",
        "not a url",
    ],
)
def test_not_youtube_videos(url):
    assert video_id(url) is None


def test_feed_latest_episode_and_invalid_feed():
    feed = b"""<rss version="2.0"><channel><title>T</title>
      <item><title>Old</title><pubDate>Mon, 05 Oct 2026 10:00:00 GMT</pubDate><enclosure url="https://x.test/old.mp3" type="audio/mpeg"/></item>
      <item><title>New</title><pubDate>Mon, 09 Nov 2026 10:00:00 GMT</pubDate><enclosure url="https://x.test/new.mp3" type="audio/mpeg"/></item>
    </channel></rss>"""
    assert latest_episode(feed) == ("New", "https://x.test/new.mp3")
    for bad in (
        b"<html>not a feed</html>",
        b"<rss><channel><item><title>No audio</title></item></channel></rss>",
    ):
        with pytest.raises(ExtractionError) as caught:
            latest_episode(bad)
        assert caught.value.code == "feed_invalid"


def test_chunking_respects_size_pages_overlap_and_is_deterministic():
    sentences = [f"Sentence number {i} talks about topic {i % 7} in some detail." for i in range(200)]
    segments = [Segment(" ".join(sentences[:100]), page=1), Segment(" ".join(sentences[100:]), page=2)]
    first = chunk_segments(segments, words, max_tokens=120, overlap_tokens=20)
    assert first == chunk_segments(segments, words, max_tokens=120, overlap_tokens=20)
    assert all(c.token_count <= 120 for c in first)
    assert {c.page for c in first} == {1, 2}
    assert all(("Sentence number 99 " in c.text) <= (c.page == 1) for c in first)  # no chunk spans pages
    same_page = [c for c in first if c.page == 1]
    last_sentence = same_page[0].text.split(". ")[-1].rstrip(".")
    assert last_sentence in same_page[1].text  # the next chunk repeats the tail (overlap)


def test_chunking_keeps_headings_and_transcript_times():
    segments = [
        Segment("Install", kind="heading", heading_path=("Guide", "Install")),
        Segment("Run make install. " * 30, heading_path=("Guide", "Install")),
        Segment("Usage", kind="heading", heading_path=("Guide", "Usage")),
        Segment("Run make dev. " * 30, heading_path=("Guide", "Usage")),
    ]
    chunks = chunk_segments(segments, words, max_tokens=200, overlap_tokens=0)
    assert [c.heading_path for c in chunks] == ["Guide > Install", "Guide > Usage"]
    assert chunks[1].text.startswith("Usage")
    transcript = [
        Segment(f"line {i} of the talk", kind="transcript", start_seconds=i * 2.0, end_seconds=i * 2.0 + 2)
        for i in range(50)
    ]
    timed = chunk_segments(transcript, words, max_tokens=60, overlap_tokens=0)
    assert timed[0].start_seconds == 0.0 and timed[1].start_seconds == timed[0].end_seconds
