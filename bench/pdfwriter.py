"""A minimal PDF writer (Helvetica text pages) so benchmarks can build a long real-text PDF without new packages."""

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
    kids = " ".join(f"{i} 0 R" for i in page_ids).encode()
    objects[1] = b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % pages
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
    return words
