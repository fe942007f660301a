"""Plain text and Markdown, with encoding detection; Markdown headings become the structure of the chunks."""

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from charset_normalizer import from_bytes
from markdown_it import MarkdownIt
from markdown_it.token import Token

from knowledge.errors import ExtractionError
from knowledge.extractors.base import Extracted, Segment

MARKDOWN = MarkdownIt("commonmark").enable(["table", "strikethrough"])
HTML_TAG = re.compile(r"<!--.*?-->|<[^>]*>", re.DOTALL)


def decode(data: bytes, declared: str | None = None) -> str:
    """UTF-8 (with or without BOM), UTF-16 with BOM, else the declared or detected encoding (Latin-1 last)."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if declared:
        try:
            return data.decode(declared)
        except (LookupError, UnicodeDecodeError):
            pass
    match = from_bytes(data).best()
    if match is not None and not _single_byte(match.encoding):
        return str(match)
    # Single-byte guesses on short texts are unreliable (Latin-1 is often taken for Central European code
    # pages); Windows-1252, the superset of Latin-1 most files in the wild really are, decodes them best.
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return str(match) if match is not None else data.decode("latin-1")


def _single_byte(encoding: str) -> bool:
    name = encoding.lower().replace("-", "_")
    return name.startswith(("cp125", "latin", "iso8859", "windows_125", "mac_", "cp437", "cp850"))


MOJIBAKE = re.compile(r"[\u00c2-\u00f4][\u0080-\u00bf]{1,3}")


def repair_mojibake(text: str) -> str:
    """UTF-8 that was once decoded as Latin-1 ("â\x80\x93" for "–"): re-decode those runs when they are valid."""

    def fix(match: re.Match) -> str:
        try:
            return match.group(0).encode("latin-1").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            return match.group(0)

    return MOJIBAKE.sub(fix, text)


def _clean(text: str) -> str:
    text = repair_mojibake(text)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    return re.sub(r"[\x01-\x08\x0b\x0e-\x1f\x7f\u200b-\u200d\u2060\ufeff]", "", text)


def paragraphs_of(text: str) -> list[str]:
    return [" ".join(block.split()) for block in re.split(r"\n\s*\n", text) if block.strip()]


def extract_plain(text: str) -> Extracted:
    segments = [Segment(p) for p in paragraphs_of(_clean(text))]
    return Extracted(segments=segments)


def extract_markdown(text: str) -> Extracted:
    """Headings, paragraphs, list items, tables and code from markdown-it's token stream (CommonMark + tables).

    Segments hold the text a reader sees, not the markup: `**x**` is `x`, a link is its text, a table row is
    `cell | cell`. Each list item is one segment starting with its marker; a nested list's items follow their
    parent's. Every segment carries the path of the headings above it.
    """
    segments: list[Segment] = []
    headings: list[tuple[int, str]] = []
    items: list[_ListItem] = []  # the open list items, innermost last
    rows: list[list[str]] = []

    def add(kind: str, body: str) -> None:
        segments.append(Segment(body, kind=kind, heading_path=tuple(h[1] for h in headings)))

    def flush_item() -> None:
        # An item's text is written before whatever block follows inside it (a nested list, code), so order holds.
        if items and items[-1].parts:
            add("list", items[-1].marker + " ".join(items[-1].parts))
            items[-1].marker, items[-1].parts = "", []

    text = _clean(text)
    tokens = MARKDOWN.parse(text)
    if any(token.level >= MARKDOWN.options["maxNesting"] - 1 for token in tokens):
        # markdown-it skips whatever is nested deeper than maxNesting (a list ten levels deep, say); such a
        # document is read as plain paragraphs rather than lose that text.
        return Extracted(segments=[Segment(p) for p in paragraphs_of(text)])
    for index, token in enumerate(tokens):
        if token.type == "heading_open":
            flush_item()
            heading = _inline_text(tokens[index + 1])
            if heading:
                level = int(token.tag[1:])
                headings = [h for h in headings if h[0] < level] + [(level, heading)]
                add("heading", heading)
        elif token.type == "paragraph_open":
            body = _inline_text(tokens[index + 1])
            if body and items:
                items[-1].parts.append(body)
            elif body:
                add("paragraph", body)
        elif token.type in ("bullet_list_open", "ordered_list_open"):
            flush_item()
        elif token.type == "list_item_open":
            items.append(_ListItem(f"{token.info}{token.markup} "))
        elif token.type == "list_item_close":
            flush_item()
            items.pop()
        elif token.type in ("fence", "code_block"):
            flush_item()
            if token.content.strip():
                add("code", token.content.strip("\n"))
        elif token.type == "table_open":
            flush_item()
            rows = []
        elif token.type == "tr_open":
            rows.append([])
        elif token.type in ("th_open", "td_open"):
            rows[-1].append(_inline_text(tokens[index + 1]))
        elif token.type == "table_close" and any(any(row) for row in rows):
            add("table", "\n".join(" | ".join(row) for row in rows if any(row)))
        elif token.type == "html_block":
            flush_item()
            body = " ".join(HTML_TAG.sub(" ", token.content).split())
            if body:
                add("paragraph", body)
    title = next((s.text for s in segments if s.kind == "heading"), "")
    return Extracted(segments=segments, title=title)


@dataclass
class _ListItem:
    marker: str  # "- ", "1. ": written once, before the item's first text
    parts: list[str] = field(default_factory=list)


def _inline_text(token: Token) -> str:
    """The visible text of an inline token: text, code spans and image descriptions; tags and URLs dropped."""

    def walk(children: list[Token]) -> Iterator[str]:
        for child in children:
            if child.type in ("text", "code_inline"):
                yield child.content
            elif child.type in ("softbreak", "hardbreak"):
                yield " "
            elif child.type == "image":
                yield from walk(child.children or [])

    return " ".join("".join(walk(token.children or [])).split())


def extract_text(data: bytes, markdown: bool = False, declared_charset: str | None = None) -> Extracted:
    text = decode(data, declared_charset)
    extracted = extract_markdown(text) if markdown else extract_plain(text)
    if not extracted.segments:
        raise ExtractionError("empty_content", "The document contains no text.")
    return extracted
