"""Two-column PDFs: reading order before and after column-aware extraction, and the cost on single-column pages.

1. Order: a two-column paper page (a full-width title, real SciFact abstracts in both columns, a full-width
   footer) written with bench/pdfwriter.py twice: its content stream drawing the columns row by row (left line 1,
   right line 1, …: the hard case) and a column at a time. Each is extracted with pypdf's plain `extract_text`
   (before) and with knowledge.extractors.pdf (after), and scored against the known text:
   - word LCS: longest common subsequence of words / words of the known text (1.0 = same order);
   - sentences: the share of the known sentences found whole (contiguous) in the output;
   and the CPU time of one such page, plain and column-aware (which reads a two-column page twice).
2. Speed: a single-column PDF of --pages pages (the pages bench/ingest.py uses), extracted page by page with the
   plain `extract_text` and with `page_text` (which watches for columns); best of --repeat runs each, in CPU
   time of this process (the machine may be busy).

Usage: .venv/bin/python bench/pdf_columns.py [--pages 500] [--repeat 3]
"""

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine, scifact_abstracts
from pdfwriter import write_text_pdf, write_two_column_pdf
from pypdf import PdfReader

from knowledge.extractors.pdf import _paragraphs, extract_pdf, page_text

FOOTER = (
    "Journal of Reproducible Benchmarks, volume 12, issue 3, pages 101 to 112, printed in two columns on letter "
    "paper"
)


def words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def lcs_ratio(known: list[str], found: list[str]) -> float:
    """Length of the longest common subsequence of words over the known text's length (one DP row at a time)."""
    if not known:
        return 1.0
    previous = [0] * (len(found) + 1)
    for word in known:
        current = [0]
        for j, other in enumerate(found, start=1):
            current.append(previous[j - 1] + 1 if word == other else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1] / len(known)


def sentences_whole(known: str, found: str) -> float:
    flat = " ".join(words(found))
    sentences = [" ".join(words(s)) for s in re.split(r"(?<=[.!?])\s+", known) if len(words(s)) >= 4]
    return sum(1 for s in sentences if s in flat) / len(sentences)


def plain_text(path: str) -> str:
    """What extraction gave before column ordering: pypdf's plain text, in paragraphs."""
    return "\n\n".join("\n\n".join(_paragraphs(page.extract_text() or "")) for page in PdfReader(path).pages)


def order(tmp: Path) -> list[str]:
    abstracts = [text for _, text in scifact_abstracts(limit=40) if 400 <= len(text) <= 900][:4]
    title = "Column order in extracted text: a two-column page"
    lines = ["## Reading order (two-column page: title, 2+2 SciFact abstracts, footer)"]
    lines.append("| content stream | extraction | word LCS | sentences whole |")
    lines.append("|---|---|---|---|")
    for row_order in (True, False):
        path = tmp / f"two-{row_order}.pdf"
        known = write_two_column_pdf(
            str(path), title, abstracts[:2], abstracts[2:], row_order=row_order, footer=FOOTER
        )
        stream = "rows across both columns" if row_order else "a column at a time"
        for label, text in (
            ("before (plain)", plain_text(str(path))),
            ("after", extract_pdf(str(path)).text),
        ):
            lines.append(
                f"| {stream} | {label} | {lcs_ratio(words(known), words(text)):.3f} | "
                f"{sentences_whole(known, text):.3f} |"
            )
    page = PdfReader(str(tmp / "two-True.pdf")).pages[0]
    plain_ms, column_ms = (
        min(_cpu(extract, page, 20) for _ in range(3)) * 1000 / 20
        for extract in (lambda p: p.extract_text(), page_text)
    )
    lines.append(f"- one two-column page: plain {plain_ms:.1f} ms, column-aware {column_ms:.1f} ms (CPU)")
    return lines


def _cpu(extract, page, times: int) -> float:
    start = time.process_time()
    for _ in range(times):
        extract(page)
    return time.process_time() - start


def speed(tmp: Path, pages: int, repeat: int) -> list[str]:
    path = tmp / "single.pdf"
    write_text_pdf(str(path), [text for _, text in scifact_abstracts(limit=200)], pages=pages)

    def run(extract) -> float:
        best = float("inf")
        for _ in range(repeat):
            start = time.process_time()
            for page in PdfReader(str(path)).pages:
                extract(page)
            best = min(best, time.process_time() - start)
        return best

    before = run(lambda page: page.extract_text())
    after = run(page_text)
    return [
        f"## Single-column speed ({pages} pages, CPU seconds of this process, best of {repeat})",
        f"- plain extract_text: {before:.2f} s ({pages / before:,.0f} pages/s)",
        f"- page_text (column-aware): {after:.2f} s ({pages / after:,.0f} pages/s)",
        f"- overhead: {(after / before - 1) * 100:+.1f}%",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        lines = [
            f"Machine: {machine()}",
            f"Command: `.venv/bin/python bench/pdf_columns.py --pages {args.pages}`",
            "",
        ]
        lines += order(Path(tmp))
        lines += [""] + speed(Path(tmp), args.pages, args.repeat)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
