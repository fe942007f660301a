"""Plain text and Markdown, with encoding detection; Markdown headings become the structure of the chunks."""

import re

from charset_normalizer import from_bytes

from knowledge.errors import ExtractionError
from knowledge.extractors.base import Extracted, Segment

ATX = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
SETEXT = re.compile(r"^(=+|-+)\s*$")
FENCE = re.compile(r"^(```|~~~)")


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
    lines = _clean(text).split("\n")
    segments: list[Segment] = []
    headings: list[tuple[int, str]] = []
    buffer: list[str] = []
    title = ""
    in_code = False
    code: list[str] = []

    def path() -> tuple[str, ...]:
        return tuple(h[1] for h in headings)

    def flush() -> None:
        if buffer:
            text = " ".join(" ".join(buffer).split())
            if text:
                kind = (
                    "list"
                    if text.startswith(("- ", "* ", "+ ")) or re.match(r"^\d+[.)] ", text)
                    else "paragraph"
                )
                if text.startswith("|"):
                    kind = "table"
                    text = "\n".join(line.strip() for line in buffer if line.strip())
                segments.append(Segment(text, kind=kind, heading_path=path()))
            buffer.clear()

    def heading(level: int, text: str) -> None:
        nonlocal headings, title
        flush()
        headings = [h for h in headings if h[0] < level] + [(level, text)]
        title = title or text
        segments.append(Segment(text, kind="heading", heading_path=path()))

    for index, line in enumerate(lines):
        if FENCE.match(line.strip()):
            if in_code:
                if any(c.strip() for c in code):
                    segments.append(Segment("\n".join(code).strip("\n"), kind="code", heading_path=path()))
                code = []
                in_code = False
            else:
                flush()
                in_code = True
            continue
        if in_code:
            code.append(line)
            continue
        atx = ATX.match(line)
        if atx:
            heading(len(atx.group(1)), atx.group(2).strip())
            continue
        next_line = lines[index + 1] if index + 1 < len(lines) else ""
        if (
            line.strip()
            and SETEXT.match(next_line)
            and not buffer
            and not line.lstrip().startswith(("-", "*", "|"))
        ):
            heading(1 if next_line.strip().startswith("=") else 2, line.strip())
            lines[index + 1] = ""
            continue
        if not line.strip():
            flush()
            continue
        if (
            re.match(r"^\s*([-*+]|\d+[.)])\s+", line)
            and buffer
            and not buffer[0].lstrip().startswith(("-", "*", "+"))
        ):
            flush()
        if re.match(r"^\s*([-*+]|\d+[.)])\s+", line) and buffer:
            flush()
        buffer.append(line)
    flush()
    if in_code and any(c.strip() for c in code):
        segments.append(Segment("\n".join(code), kind="code", heading_path=path()))
    return Extracted(segments=segments, title=title)


def extract_text(data: bytes, markdown: bool = False, declared_charset: str | None = None) -> Extracted:
    text = decode(data, declared_charset)
    extracted = extract_markdown(text) if markdown else extract_plain(text)
    if not extracted.segments:
        raise ExtractionError("empty_content", "The document contains no text.")
    return extracted
