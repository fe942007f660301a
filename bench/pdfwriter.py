"""A minimal PDF writer (Helvetica text pages) so benchmarks and tests can build real-text PDFs without new packages:
long single-column documents, and two-column pages drawn in the order that interleaves naive extraction."""

import textwrap


def _escape(line: str) -> str:
    line = line.encode("latin-1", "replace").decode("latin-1")
    return line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def write_text_pdf(
    path: str, paragraphs: list[str], *, pages: int, lines_per_page: int = 52, width: int = 95
) -> int:
    """Lays `paragraphs` out on `pages` pages (repeating them if needed); returns the number of words written."""
    lines: list[str] = []
    index, words = 0, 0
    while len(lines) < pages * lines_per_page:
        paragraph = paragraphs[index % len(paragraphs)]
        index += 1
        wrapped = textwrap.wrap(paragraph, width=width) + [""]
        lines.extend(wrapped)
    lines = lines[: pages * lines_per_page]
    objects: list[bytes] = []
    page_ids = []
    font_id = 3
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(b"")  # pages, filled in below
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for page in range(pages):
        chunk = lines[page * lines_per_page : (page + 1) * lines_per_page]
        words += sum(len(line.split()) for line in chunk)
        stream = "BT /F1 10 Tf 14 TL 50 770 Td " + " ".join(f"({_escape(line)}) '" for line in chunk) + " ET"
        data = stream.encode("latin-1")
        objects.append(b"<< /Length %d >>\nstream\n" % len(data) + data + b"\nendstream")
        content_id = len(objects)
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 %d 0 R >> >> "
            b"/Contents %d 0 R >>" % (font_id, content_id)
        )
        page_ids.append(len(objects))
    _write(path, objects, page_ids)
    return words


def write_two_column_pdf(
    path: str,
    title: str,
    left: list[str],
    right: list[str],
    *,
    row_order: bool = True,
    width: int = 44,
    footer: str = "",
) -> str:
    """One page: a full-width `title`, then `left` and `right` paragraphs in two columns of `width` characters,
    and an optional full-width `footer` under them. With `row_order` the content stream draws the columns row by
    row (left line 1, right line 1, left line 2, ...), as some generators do; otherwise a column at a time. Returns
    the text in reading order (title, left column, right column, footer), paragraphs separated by blank lines."""
    columns = []
    for paragraphs in (left, right):
        lines: list[str] = []
        for paragraph in paragraphs:
            lines.extend(textwrap.wrap(paragraph, width=width) + [""])
        columns.append(lines[:-1])
    rows = max(len(columns[0]), len(columns[1]))
    top, leading = 700, 13
    draws = [(side, row) for row in range(rows) for side in (0, 1)]
    if not row_order:
        draws.sort()
    shows = []
    for side, row in draws:
        if row < len(columns[side]) and columns[side][row]:
            x = 50 if side == 0 else 316
            shows.append(f"1 0 0 1 {x} {top - row * leading} Tm ({_escape(columns[side][row])}) Tj")
    stream = (
        f"BT /F1 16 Tf 1 0 0 1 50 750 Tm ({_escape(title)}) Tj ET BT /F1 10 Tf " + " ".join(shows) + " ET"
    )
    if footer:
        stream += f" BT /F1 9 Tf 1 0 0 1 50 {top - (rows + 2) * leading} Tm ({_escape(footer)}) Tj ET"
    data = stream.encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n" % len(data) + data + b"\nendstream",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> "
        b"/Contents 4 0 R >>",
    ]
    _write(path, objects, [5])
    parts = [title, *left, *right] + ([footer] if footer else [])
    return "\n\n".join(parts)


def _write(path: str, objects: list[bytes], page_ids: list[int]) -> None:
    """Objects numbered from 1 (1: catalog, 2: the page tree, filled in here), an xref table and the trailer."""
    kids = " ".join(f"{i} 0 R" for i in page_ids).encode()
    objects[1] = b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % len(page_ids)
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    with open(path, "wb") as handle:
        handle.write(out)
