"""OCR benchmark: speed and token recall of knowledge/extractors/ocr.py on scanned pages of a known text.

The pages are typeset and "scanned" offline by tests/scans.py (A4, DejaVu Serif at 11 pt with a 0.6° skew, or
at 8 pt with 1.5°; 300 DPI, grey paper, noise, dust, blur) and saved as a PDF with no text layer; ocr_pdf_pages
reads them back as the ingestion stage would. Figures: characters of OCR text per second of wall time (rendering included) and the share
of the known text's tokens found (lower-cased words and numbers, repeats counted).

Usage: .venv/bin/python bench/ocr.py [--pages 4] [--write docs/bench/ocr.md]
"""

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine, publish

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("MINDS_DEV_RUN", "1")


def run(
    pdf: Path, texts: list[str], *, dpi: int, omp_threads: str | None, parallel: int | None = None
) -> dict:
    from django.test import override_settings

    from knowledge.extractors import ocr
    from knowledge.extractors.ocr import ocr_pdf_pages
    from tests.scans import token_recall

    # Tesseract's OpenMP threads: ocr.py runs it with one unless OMP_THREAD_LIMIT says otherwise.
    if omp_threads is None:
        os.environ.pop("OMP_THREAD_LIMIT", None)
    else:
        os.environ["OMP_THREAD_LIMIT"] = omp_threads
    default_parallel = ocr.PARALLEL_PAGES
    ocr.PARALLEL_PAGES = parallel or default_parallel
    try:
        with override_settings(OCR_DPI=dpi):
            started, cpu = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
            found = ocr_pdf_pages(str(pdf), list(range(1, len(texts) + 1)))
            seconds = time.perf_counter() - started
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
    finally:
        ocr.PARALLEL_PAGES = default_parallel
    recalls = [token_recall(text, found.get(number, "")) for number, text in enumerate(texts, start=1)]
    chars = sum(len(text) for text in found.values())
    return {
        "seconds": seconds,
        "chars": chars,
        # CPU time of the renderers and Tesseracts: what a page costs whatever else runs on the machine.
        "cpu_seconds": (after.ru_utime - cpu.ru_utime) + (after.ru_stime - cpu.ru_stime),
        "read": len(found),
        "recall": sum(recalls) / len(recalls),
        "worst": min(recalls),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--pages", type=int, default=4, help="scanned pages (the four texts of tests/scans.py, repeated)"
    )
    parser.add_argument("--write", help="write the results as Markdown to this file")
    args = parser.parse_args()
    if shutil.which("tesseract") is None:
        print("bench/ocr.py: tesseract is not installed; run `make ocr`", file=sys.stderr)
        raise SystemExit(2)

    import django

    django.setup()
    from django.conf import settings

    from tests.scans import PAGES, write_scanned_pdf

    # Full pages, as a scanned report has: each holds the four paragraphs, starting from a different one.
    texts = [" ".join(PAGES[(i + k) % len(PAGES)] for k in range(len(PAGES))) for i in range(args.pages)]
    version = subprocess.run(["tesseract", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    lines = [
        "# OCR benchmark",
        "",
        f"Machine: {machine()}, {version}; load average at the start {os.getloadavg()[0]:.1f}",
        f"Command: `.venv/bin/python bench/ocr.py --pages {args.pages}`",
        "",
        "Figures are provisional: measured while other work ran on the machine.",
        "",
        f"{args.pages} scanned A4 pages of a known text ({sum(len(t) for t in texts):,} characters), read back with"
        " `ocr_pdf_pages` (each page rendered by PDFium in a process of its own, then Tesseract, language `eng`;"
        f" page time limit {settings.OCR_PAGE_TIME_LIMIT_SECONDS:.0f} s).",
        "",
        "| scan | render DPI | Tesseract threads | pages at once | pages read | seconds | s/page | CPU s/page |"
        " characters/s | token recall (mean / worst) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        normal, small = "11 pt, 0.6° skew", "8 pt, 1.5° skew"
        scans = {
            normal: write_scanned_pdf(Path(tmp) / "normal.pdf", texts),
            small: write_scanned_pdf(
                Path(tmp) / "small.pdf", texts, seed=50, font_points=8, skew_degrees=1.5
            ),
        }
        # Untimed: the first run reads Tesseract's language data from disk.
        run(scans[normal], texts[:1], dpi=300, omp_threads=None)
        every_core = str(os.cpu_count())
        from knowledge.extractors.ocr import PARALLEL_PAGES as default

        for scan, dpi, threads, parallel in (
            (normal, 300, None, 1),
            (normal, 300, None, None),
            (normal, 300, every_core, 1),
            (normal, 200, None, None),
            (small, 300, None, None),
            (small, 200, None, None),
        ):
            result = run(scans[scan], texts, dpi=dpi, omp_threads=threads, parallel=parallel)
            late = (
                f" ({args.pages - result['read']} past the page limit)" if result["read"] < args.pages else ""
            )
            row = (
                f"| {scan} | {dpi} | {threads or '1 (default)'} | {parallel or f'{default} (default)'} |"
                f" {result['read']}/{args.pages}{late} |"
                f" {result['seconds']:.1f} | {result['seconds'] / args.pages:.1f} |"
                f" {result['cpu_seconds'] / args.pages:.1f} |"
                f" {result['chars'] / result['seconds']:.0f} | {result['recall']:.3f} / {result['worst']:.3f} |"
            )
            print(row, flush=True)
            lines.append(row)
    lines += [
        "",
        "ocr.py reads PARALLEL_PAGES pages at once (the cores, at most 2), each with one Tesseract thread: on a quiet",
        "machine two pages at once halve the seconds and leave the CPU per page as it is.",
        "The pages are scanned at 300 DPI; the 200 DPI rows render them for OCR at 200 (`OCR_DPI=200`), trading",
        "recall on small print for speed. ocr.py runs Tesseract with one OpenMP thread (`OMP_THREAD_LIMIT=1` for",
        "its process unless the environment sets it): one thread per core competes with everything else on a busy",
        "worker, as the all-cores row shows.",
        "Generated scans are kinder than real ones (no bleed-through, curved pages or handwriting): read the recall",
        "as an upper bound, the speed as typical of printed pages.",
    ]
    publish(lines, args.write)


if __name__ == "__main__":
    main()
