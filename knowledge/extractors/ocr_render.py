"""Renders one PDF page for OCR, in a process of its own: `python -I ocr_render.py PATH INDEX DPI MAX_PIXELS MEMORY`.

ocr.py runs it for each page, with the password (if any) on stdin, never in the arguments other processes can read.
A hostile page can hold PDFium for long in C code: a content stream that inflates to 300 MB of path operators
took 45 s and 700 MB to render. No exception reaches a C call in progress, so the page is rendered here, where the
page's time limit kills the process and an address-space limit caps its memory. It imports nothing of the project
(Django, the extractors) to start fast.

Writes the DPI used on the first line of stdout, then the page as a greyscale PGM (uncompressed: the quickest for
Tesseract to read). Exit status: 0 rendered, 3 the password does not open the PDF, 4 PDFium cannot read the PDF or
the page, 5 no such page.
"""

import resource
import sys

WRONG_PASSWORD, UNREADABLE, NO_SUCH_PAGE = 3, 4, 5


def main() -> int:
    path, index, dpi, max_pixels, memory = sys.argv[1], *map(int, sys.argv[2:6])
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    password = sys.stdin.read() or None
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(path, password=password)
    except pdfium.PdfiumError as exc:
        print(f"cannot open the PDF: {exc}", file=sys.stderr)
        return WRONG_PASSWORD if "password" in str(exc).lower() else UNREADABLE
    if not 0 <= index < len(pdf):
        print(f"no page {index + 1}: the PDF has {len(pdf)}", file=sys.stderr)
        return NO_SUCH_PAGE
    try:
        page = pdf[index]
        width, height = page.get_size()  # in points, 72 to the inch
        # A poster-sized page is rendered at a lower DPI rather than as a bitmap of gigabytes.
        if width * height * (dpi / 72) ** 2 > max_pixels:
            dpi = int(72 * (max_pixels / (width * height)) ** 0.5)
        image = page.render(scale=dpi / 72, grayscale=True).to_pil().convert("L")
    except (pdfium.PdfiumError, MemoryError, ValueError) as exc:
        print(f"cannot render page {index + 1}: {exc}", file=sys.stderr)
        return UNREADABLE
    out = sys.stdout.buffer
    out.write(b"%d\n" % dpi)
    image.save(out, "PPM")
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
