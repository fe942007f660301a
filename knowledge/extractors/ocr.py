"""OCR of scanned PDF pages: pypdfium2 renders a page, Tesseract reads it, offline on the CPU.

The PDF extractor calls it from its page loop: `page_needs_ocr` on each page's text layer, then `ocr_pdf_pages`
for the pages that need it. OCR is best effort page by page (a page that fails or runs past its time limit is
left out and logged, the others are kept), but a missing engine is a precise, permanent failure
(`ocr_unavailable`), not a silent `no_text_layer`.
"""

import logging
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import unicodedata
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from pypdf import PageObject

from knowledge.errors import ExtractionError
from knowledge.extractors import ocr_render

logger = logging.getLogger(__name__)

# A page's text layer with fewer letters and digits than this is a scan, or a scan with a stamped page number, header or
# "Scanned by" line. The bar errs high: a near-empty real page costs one needless OCR, a missed scan loses a page.
MIN_ALNUM = 40
# Past these shares the text layer is garbage: a font without a Unicode map gives "(cid:12)" runs, symbols or
# private-use code points; a font with a wrong map gives letters that form no words ("Wkh txlfn eurzq").
MIN_ALNUM_SHARE = 0.5
MAX_BAD_CHAR_SHARE = 0.1
MIN_WORDLIKE_SHARE = 0.4
MIN_VOWEL_SHARE = 0.25
MIN_JUDGED_CHARS = 10
# How deep page_has_image looks into forms drawn inside forms.
MAX_FORM_DEPTH = 8
# A page rendered for OCR is capped at this many pixels (an A4 page at 300 DPI is 8.7 million): a PDF may declare
# a poster-sized page, and its bitmap must not exhaust memory. Larger pages are rendered at a lower DPI.
MAX_PAGE_PIXELS = 40_000_000
# The address space of the process rendering one page (ocr_render.py): Python with PDFium takes some 150 MB, a
# 40-million-pixel page 160 MB more while PDFium draws it; a page that needs more is left out.
RENDER_MEMORY_BYTES = 1024 * 1024 * 1024
RENDERER = Path(ocr_render.__file__)
# Pages read at once: each runs its renderer, then Tesseract with one thread, so two pages fill the two cores of
# a worker (bench/ocr.py measures it); a third only queues behind them.
PARALLEL_PAGES = max(1, min(2, os.cpu_count() or 1))

_CID = re.compile(r"\(cid:\d+\)")
_TOKEN = re.compile(r"\S+")
_ASCII_WORD = re.compile(r"[A-Za-z]+")
_VOWELS = set("aeiouyAEIOUY")
_CONSONANT_RUN = re.compile(r"[^aeiouyAEIOUY]{5,}")
_VOWEL = re.compile(r"[aeiouyAEIOUY]")
_SPACE = re.compile(r"\s+")  # str.isspace's characters
_ALNUM = re.compile(r"[^\W_]")  # str.isalnum's characters
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
# The ASCII control characters that are not white space (\t to \r and \x1c to \x1f are).
_ASCII_BAD = re.compile(r"[\x00-\x08\x0e-\x1b\x7f]")


def page_needs_ocr(text: str, page: PageObject | None = None) -> bool:
    """True when OCR would read a page better than its text layer: the layer is missing or clearly garbage.

    Given the page (pypdf's), one with (almost) no text layer needs OCR only if it draws an image, as a scan does:
    a page of vector drawing alone has nothing to read, and rendering it can cost much (a content stream that
    inflates to hundreds of MB). A garbage layer needs OCR either way: its glyphs are drawn, only their map is
    wrong."""
    if _is_garbage(text):
        return True
    # Digits count with letters (a table of figures is text), and a Chinese or Japanese character, about as much
    # as a short word, counts twice.
    alnum = len(_ALNUM.findall(text)) + sum(
        1 for c in _NON_ASCII.findall(text) if c.isalnum() and unicodedata.east_asian_width(c) in "WF"
    )
    if alnum < MIN_ALNUM:
        return page is None or page_has_image(page)
    return False


def page_has_image(page: PageObject) -> bool:
    """Whether the page's resources, or those of the forms it draws, hold an image: a scan's page always does.

    Only the resource dictionaries are read, never the content stream, so a page's size costs nothing here. A page
    whose resources cannot be read is taken to have one (OCR then tries, within its limits)."""
    try:
        return _has_image(page.get("/Resources"), depth=0, seen=set())
    except Exception:  # a damaged resource tree: let the renderer decide
        logger.warning("pdf page resources could not be read", exc_info=True)
        return True


def _has_image(resources, *, depth: int, seen: set) -> bool:
    resources = resources.get_object() if resources is not None else None
    if not isinstance(resources, dict) or depth > MAX_FORM_DEPTH:
        return False
    xobjects = resources.get("/XObject")
    xobjects = xobjects.get_object() if xobjects is not None else {}
    for reference in xobjects.values() if isinstance(xobjects, dict) else ():
        xobject = reference.get_object()
        subtype = xobject.get("/Subtype") if isinstance(xobject, dict) else None
        if subtype == "/Image":
            return True
        # A form may draw itself, or forms share forms (a hostile file): each object is looked into once.
        key = getattr(reference, "idnum", None) or id(xobject)
        if subtype == "/Form" and key not in seen:
            seen.add(key)
            if _has_image(xobject.get("/Resources"), depth=depth + 1, seen=seen):
                return True
    return False


def _is_garbage(text: str) -> bool:
    if len(_CID.findall(text)) >= 3:
        return True
    # Counted by regular expressions (C loops): this runs on every page of every PDF. \S is not str.isspace,
    # [^\W_] is str.isalnum; only the few non-ASCII characters are looked up one by one.
    chars = len(_SPACE.sub("", text))
    if chars < MIN_JUDGED_CHARS:  # a page number or a stamp: too little to call garbage
        return False
    bad = len(_ASCII_BAD.findall(text)) + sum(
        1 for c in _NON_ASCII.findall(text) if not c.isspace() and _is_bad_char(c)
    )
    if bad / chars > MAX_BAD_CHAR_SHARE:
        return True
    if len(_ALNUM.findall(text)) / chars < MIN_ALNUM_SHARE:
        return True
    return _wordlike_share(text) < MIN_WORDLIKE_SHARE


def _is_bad_char(char: str) -> bool:
    # Cc: control characters, Co: private use (unmapped glyphs), Cn: unassigned; U+FFFD: undecodable bytes.
    return char == "\ufffd" or unicodedata.category(char) in {"Cc", "Co", "Cn"}


def _wordlike_share(text: str) -> float:
    """The share of Latin-letter tokens that could be words; 1.0 for text in other scripts, which it cannot judge.

    A font with a shifted map turns words into letters that still look word-shaped ("Wkh txlfn eurzq"), but its
    vowels are rare: every Latin-script language has more than a quarter of its letters vowels, garbage far fewer."""
    words = [
        w
        for token in _TOKEN.findall(text)
        if (w := token.strip(".,;:!?()[]{}\"'«»“”‘’-")) and _ASCII_WORD.fullmatch(w)
    ]
    if len(words) < 5:
        return 1.0
    letters = "".join(words)
    if len(_VOWEL.findall(letters)) / len(letters) < MIN_VOWEL_SHARE:
        return 0.0
    return sum(1 for w in words if _is_wordlike(w)) / len(words)


def _is_wordlike(word: str) -> bool:
    if len(word) == 1:
        return word in "aAI"
    if not (word.islower() or word.isupper() or word.istitle()):
        return False
    return any(c in _VOWELS for c in word) and not _CONSONANT_RUN.search(word)


@dataclass(frozen=True)
class OcrResult:
    """What OCR made of a document's pages: the text of the pages it read, by 1-based page number, and the pages it
    did not: `skipped`, never tried because the document's time budget was spent; `failed`, tried but past their own
    time limit or broken. A page that was read and held no text (a blank scan) is in none of them."""

    texts: dict[int, str] = field(default_factory=dict)
    skipped: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    budget_seconds: float = 0.0


def ocr_pdf_pages(
    path: str,
    page_numbers: list[int],
    password: str | None = None,
    *,
    budget_seconds: float | None = None,
) -> dict[int, str]:
    """The OCR text of the given 1-based pages, by page number (ocr_pages' `texts`)."""
    return ocr_pages(path, page_numbers, password, budget_seconds=budget_seconds).texts


def ocr_pages(
    path: str,
    page_numbers: list[int],
    password: str | None = None,
    *,
    budget_seconds: float | None = None,
) -> OcrResult:
    """OCR of the given 1-based pages; pages that fail, time out or read empty have no text.

    Each page gets OCR_PAGE_TIME_LIMIT_SECONDS for its rendering and its Tesseract together; pages still waiting
    once `budget_seconds` (default OCR_TOTAL_TIME_LIMIT_SECONDS) have passed are skipped, so a long scan cannot
    run the ingestion stage past its own time limit. PARALLEL_PAGES pages are read at once (each in processes of
    its own, one core each). Raises ExtractionError `ocr_unavailable` when OCR is enabled but Tesseract or one of
    OCR_LANGUAGES is not installed, and `pdf_encrypted` when the password does not open the PDF.
    """
    budget = settings.OCR_TOTAL_TIME_LIMIT_SECONDS if budget_seconds is None else budget_seconds
    if not settings.OCR_ENABLED or not page_numbers:
        return OcrResult(budget_seconds=budget)
    languages = _languages()
    _check_engine(languages)
    deadline = time.monotonic() + budget
    texts: dict[int, str] = {}
    failed: list[int] = []
    waiting = list(page_numbers)
    running: dict[Future, int] = {}
    pool = ThreadPoolExecutor(max_workers=PARALLEL_PAGES, thread_name_prefix="ocr")
    try:
        while waiting or running:
            while waiting and len(running) < PARALLEL_PAGES and time.monotonic() < deadline:
                number = waiting.pop(0)
                running[pool.submit(_ocr_page, path, number, password, languages)] = number
            if not running:
                break  # the budget is spent and nothing is left running
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                number = running.pop(future)
                text = future.result()  # an ExtractionError (a wrong password) ends the document
                if text is None:
                    failed.append(number)
                elif text:
                    texts[number] = text
    finally:
        # On any exception (the stage's soft time limit included) the pages in progress are killed, not awaited.
        _kill_running()
        pool.shutdown(wait=True, cancel_futures=True)
    if waiting:
        logger.warning(
            "ocr of %s: budget of %ss spent; pages %s left out", path, budget, page_ranges(waiting)
        )
    return OcrResult(texts=texts, skipped=waiting, failed=sorted(failed), budget_seconds=budget)


def page_ranges(numbers: list[int]) -> str:
    """Page numbers as ranges a person reads: [1, 2, 3, 7, 9, 10] → "1-3, 7, 9-10"."""
    parts: list[str] = []
    ordered = sorted(set(numbers))
    start = previous = None
    for number in [*ordered, None]:
        if previous is not None and number == previous + 1:
            previous = number
            continue
        if start is not None:
            parts.append(str(start) if start == previous else f"{start}-{previous}")
        start = previous = number
    return ", ".join(parts)


def _languages() -> str:
    # Tesseract joins languages with "+"; a comma-separated setting is accepted as well.
    return "+".join(part.strip() for part in re.split(r"[+,]", settings.OCR_LANGUAGES) if part.strip())


_installed_languages: dict[str, set[str]] = {}


def _check_engine(languages: str) -> None:
    command = settings.OCR_TESSERACT_CMD
    installed = _installed_languages.get(command)
    if installed is None:
        installed = _list_languages(command)
        # Only a working engine is remembered: one installed while the worker runs is found on the next document.
        _installed_languages[command] = installed
    missing = [lang for lang in languages.split("+") if lang not in installed]
    if missing:
        raise ExtractionError(
            "ocr_unavailable",
            f"The PDF needs OCR, but Tesseract's language data for {', '.join(missing)} is not installed.",
        )


def _list_languages(command: str) -> set[str]:
    unavailable = ExtractionError(
        "ocr_unavailable",
        "The PDF needs OCR (it looks scanned), but the OCR engine (Tesseract) is not installed on the server.",
    )
    if shutil.which(command) is None:
        raise unavailable
    try:
        result = subprocess.run(
            [command, "--list-langs"], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise unavailable from exc
    if result.returncode != 0:
        raise unavailable
    # The first line is a header ("List of available languages in ...").
    return {line.strip() for line in result.stdout.splitlines()[1:] if line.strip()}


def _ocr_page(path: str, number: int, password: str | None, languages: str) -> str | None:
    """The page's text ("" when it holds none), None when it could not be read within its limit."""
    started = time.monotonic()
    limit = settings.OCR_PAGE_TIME_LIMIT_SECONDS
    try:
        image, dpi = _render(path, number, password, limit)
        text = _tesseract(image, dpi, languages, max(limit - (time.monotonic() - started), 0.001))
    except subprocess.TimeoutExpired:
        logger.warning(
            "ocr of page %s: timeout after %.1fs; page left out", number, time.monotonic() - started
        )
        return None
    except OSError as exc:
        logger.warning("ocr of page %s failed (%s); page left out", number, exc)
        return None
    logger.info("ocr of page %s: %s characters in %.1fs", number, len(text), time.monotonic() - started)
    return unicodedata.normalize("NFKC", text).strip()


def _render(path: str, number: int, password: str | None, timeout: float) -> tuple[bytes, int]:
    """The page as a greyscale PGM and the DPI it was rendered at, from ocr_render.py in a process of its own."""
    result = _run(
        [sys.executable, "-I", str(RENDERER), path, str(number - 1), str(settings.OCR_DPI)]
        + [str(MAX_PAGE_PIXELS), str(RENDER_MEMORY_BYTES)],
        (password or "").encode(),
        timeout,
    )
    if result.returncode == ocr_render.WRONG_PASSWORD:
        raise ExtractionError(
            "pdf_encrypted", "The PDF is protected by a password, and the one given does not open it."
        )
    if result.returncode != 0:
        raise OSError(f"rendering exited {result.returncode}: {_tail(result.stderr)}")
    header, _, image = result.stdout.partition(b"\n")
    return image, int(header)


def _tesseract(image: bytes, dpi: int, languages: str, timeout: float) -> str:
    """Tesseract's text of one page image, run directly rather than through pytesseract, for two reasons.

    Its OpenMP threads: one Tesseract spreads over every core and, on a worker whose cores are busy, reads a page
    three times slower than with one thread (bench/ocr.py, docs/bench/ocr.md). OMP_THREAD_LIMIT=1 is set for the
    Tesseract process alone (an OMP_THREAD_LIMIT in the worker's environment wins): in the worker's own
    environment it would also cap the OpenMP of the speech model. And cleanup: _run kills Tesseract at the page's
    limit, and ocr_pages kills it on any exception, the stage's soft time limit included, where pytesseract kills
    it only on its own timeout.
    """
    result = _run(
        [settings.OCR_TESSERACT_CMD, "stdin", "stdout", "-l", languages, "--dpi", str(dpi)],
        image,
        timeout,
        env={"OMP_THREAD_LIMIT": "1", **os.environ},
    )
    if result.returncode != 0:
        raise OSError(f"tesseract exited {result.returncode}: {_tail(result.stderr)}")
    return result.stdout.decode("utf-8", errors="replace")


_live: set[subprocess.Popen] = set()
_live_lock = threading.Lock()


def _run(
    command: list[str], stdin: bytes, timeout: float, *, env: dict | None = None
) -> subprocess.CompletedProcess:
    """subprocess.run for a page's worker thread, its process registered so the calling thread can kill it."""
    with subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    ) as process:
        with _live_lock:
            _live.add(process)
        try:
            stdout, stderr = process.communicate(stdin, timeout=timeout)
        except BaseException:
            process.kill()
            process.communicate()
            raise
        finally:
            with _live_lock:
                _live.discard(process)
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def _kill_running() -> None:
    with _live_lock:
        processes = list(_live)
    for process in processes:
        try:
            process.kill()
        except OSError:  # it ended meanwhile
            pass


def _tail(stderr: bytes) -> str:
    return stderr.decode(errors="replace").strip()[-300:]
