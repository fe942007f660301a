"""OCR of scanned PDF pages (knowledge/extractors/ocr.py) with the real Tesseract on generated scans."""

import io
import logging
import shutil

import pytest
from django.test import override_settings
from pypdf import PdfReader, PdfWriter
from reportlab.lib.pagesizes import A4
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen import canvas

from knowledge.errors import ExtractionError
from knowledge.extractors.ocr import ocr_pages, ocr_pdf_pages, page_has_image, page_needs_ocr, page_ranges
from tests.scans import PAGES, scanned_page, token_recall, write_scanned_pdf
from tests.trust.test_hostile_files import flate_bomb_pdf, recursive_form_xobject_pdf

needs_tesseract = pytest.mark.skipif(
    shutil.which("tesseract") is None,
    reason="Debian's tesseract-ocr is not installed (make test installs it)",
)

ENGLISH = (
    "The river rose steadily through the night, and by morning the lower road was closed to traffic while the "
    "council decided what to do."
)


@pytest.fixture(scope="module")
def scanned_pdf(tmp_path_factory):
    return write_scanned_pdf(tmp_path_factory.mktemp("ocr") / "scan.pdf", PAGES[:2])


@pytest.fixture(scope="module")
def mixed_encrypted_pdf(tmp_path_factory):
    """Page 1 has a text layer, page 2 is a scan; the file opens only with the password "harbour"."""
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4)
    pdf.drawString(72, 770, ENGLISH[:90])
    pdf.showPage()
    image = io.BytesIO()
    scanned_page(PAGES[2], seed=7).save(image, "JPEG", quality=85)  # as a scanner saves it
    image.seek(0)
    pdf.drawImage(ImageReader(image), 0, 0, width=A4[0], height=A4[1])
    pdf.showPage()
    pdf.save()
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(buffer.getvalue())))
    writer.encrypt("harbour", algorithm="AES-256")
    path = tmp_path_factory.mktemp("ocr") / "mixed.pdf"
    with open(path, "wb") as handle:
        writer.write(handle)
    return path


# page_needs_ocr ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n\n  ",
        "12",  # a scan with a stamped page number
        "CONFIDENTIAL  Page 3 of 10",  # a stamped header
        "Scanned by CamScanner\n\nPage 3 of 10",
        "(cid:12)(cid:5)(cid:33)(cid:18) (cid:40)(cid:7)(cid:9) and some (cid:3)(cid:4) words around them",
        "§¶•… ©®™ ±×÷ «»‹› ¤¦¨ ¬¯° ¹²³ †‡ ‰ ∑∏ ◊ ♦♣♠ ≈≠≤≥ ∞ ∂∆ √∫ abc def",
        "\ue001\ue002\ue003 \ue004\ue005 " * 10 + "Introduction to the harbour survey of the year",
        "\ufffd\ufffd\ufffd\ufffd \ufffd\ufffd " * 5 + "The committee met in March",
        # a font whose map shifts every letter by three: "The quick brown fox jumps over the lazy dog..."
        "Wkh txlfn eurzq ira mxpsv ryhu wkh odcb grj dqg wkhq uxqv edfn wr wkh kduerxu zdoo",
        "xQzKp tRwVb mNxLs qWrTz pLkJh gFdSa zXcVb nMqWe rTyUi oPaSd",
    ],
)
def test_page_needs_ocr_for_missing_or_garbage_text(text):
    assert page_needs_ocr(text) is True


@pytest.mark.parametrize(
    "text",
    [
        ENGLISH,
        "Der Ausschuss trat am Morgen des 14. März zusammen, um die Vermessung des Hafens zu prüfen.",
        "Le comité s'est réuni le matin du 14 mars pour examiner le relevé du port et ses réparations.",
        "Комитет собрался утром четырнадцатого марта, чтобы рассмотреть обследование гавани.",
        "委员会于三月十四日上午开会，审议港口调查报告，并同意在秋季之前修复北防波堤的裂缝。",
        # a table of figures is a good text layer, not garbage
        "Quarter Revenue Costs Margin\nQ1 2024 1,234,500 980,200 20.6%\nQ2 2024 1,402,300 1,011,000 27.9%\n"
        "Q3 2024 1,377,800 1,020,400 25.9%\nQ4 2024 1,511,900 1,090,700 27.9%\nTotal 5,526,500 4,102,300 25.8%",
        "NASA and the ESA signed the MoU in 2019; see https://example.org/report-2019.pdf for details.",
    ],
)
def test_page_needs_no_ocr_for_real_text(text):
    assert page_needs_ocr(text) is False


def test_page_with_no_text_needs_ocr_only_when_it_draws_an_image(scanned_pdf, mixed_encrypted_pdf, tmp_path):
    scan = PdfReader(scanned_pdf).pages[0]
    assert page_has_image(scan) and page_needs_ocr("", scan)
    mixed = PdfReader(mixed_encrypted_pdf)
    mixed.decrypt("harbour")
    text_page, scanned_page_ = mixed.pages
    assert not page_has_image(text_page) and page_has_image(scanned_page_)
    assert not page_needs_ocr("", text_page) and page_needs_ocr("", scanned_page_)
    # vector-only hostile pages: a 300 MB content stream is never read, a form drawing itself is looked into once
    bomb = PdfReader(io.BytesIO(flate_bomb_pdf())).pages[0]
    forever = PdfReader(io.BytesIO(recursive_form_xobject_pdf())).pages[0]
    assert not page_needs_ocr("", bomb) and not page_needs_ocr("Hello", forever)
    # a garbage layer needs OCR even without an image: its glyphs are drawn, only their map is wrong
    assert page_needs_ocr("(cid:1)(cid:2)(cid:3)(cid:4) (cid:5)", text_page)


# ocr_pdf_pages ----------------------------------------------------------------------------------------------------


@needs_tesseract
def test_scanned_pages_are_read_with_their_page_numbers(scanned_pdf):
    # The scan really has no text layer: this is the PDF pypdf's extractor calls no_text_layer.
    assert all(not (page.extract_text() or "").strip() for page in PdfReader(scanned_pdf).pages)

    texts = ocr_pdf_pages(str(scanned_pdf), [1, 2])

    assert sorted(texts) == [1, 2]
    for number, text in texts.items():
        assert token_recall(PAGES[number - 1], text) >= 0.9, text
        assert not page_needs_ocr(text)
    assert "breakwater" in texts[1] and "salinity" in texts[2]


@needs_tesseract
def test_only_the_scanned_page_of_an_encrypted_mixed_pdf_is_read(mixed_encrypted_pdf):
    reader = PdfReader(mixed_encrypted_pdf)
    reader.decrypt("harbour")
    layers = [page.extract_text() or "" for page in reader.pages]
    assert [page_needs_ocr(text) for text in layers] == [False, True]

    texts = ocr_pdf_pages(str(mixed_encrypted_pdf), [2], password="harbour")

    assert list(texts) == [2]
    assert token_recall(PAGES[2], texts[2]) >= 0.9, texts[2]


@needs_tesseract
def test_wrong_password_gives_pdf_encrypted(mixed_encrypted_pdf):
    with pytest.raises(ExtractionError) as caught:
        ocr_pdf_pages(str(mixed_encrypted_pdf), [2], password="wrong")
    assert caught.value.code == "pdf_encrypted"


@needs_tesseract
def test_page_past_its_time_limit_is_left_out_and_logged(scanned_pdf, caplog):
    caplog.set_level(logging.WARNING, logger="knowledge.extractors.ocr")
    # A millisecond is far less than Tesseract needs to start, let alone read a page: both pages time out.
    with override_settings(OCR_PAGE_TIME_LIMIT_SECONDS=0.001):
        texts = ocr_pdf_pages(str(scanned_pdf), [1, 2])

    assert texts == {}
    assert sum("timeout" in record.getMessage() for record in caplog.records) == 2


@needs_tesseract
def test_hostile_page_is_rendered_apart_and_left_out_at_its_time_limit(tmp_path, caplog):
    # Its content stream inflates to 300 MB of path operators: PDFium needs tens of seconds and hundreds of MB
    # for it, in C code no exception interrupts. The page's own process is killed at the limit instead.
    path = tmp_path / "bomb.pdf"
    path.write_bytes(flate_bomb_pdf())
    caplog.set_level(logging.WARNING, logger="knowledge.extractors.ocr")
    with override_settings(OCR_PAGE_TIME_LIMIT_SECONDS=2):
        assert ocr_pdf_pages(str(path), [1]) == {}
    assert any("timeout" in record.getMessage() for record in caplog.records)


@needs_tesseract
def test_page_drawing_itself_forever_ends(tmp_path):
    path = tmp_path / "recursive.pdf"
    path.write_bytes(recursive_form_xobject_pdf())
    with override_settings(OCR_PAGE_TIME_LIMIT_SECONDS=20):
        texts = ocr_pdf_pages(str(path), [1])
    assert set(texts) <= {1}


@needs_tesseract
def test_pages_past_the_document_budget_are_left_out(scanned_pdf, caplog):
    caplog.set_level(logging.WARNING, logger="knowledge.extractors.ocr")
    assert ocr_pdf_pages(str(scanned_pdf), [1, 2], budget_seconds=0) == {}
    assert any("left out" in record.getMessage() for record in caplog.records)


@needs_tesseract
def test_pages_the_pdf_does_not_have_are_skipped(scanned_pdf):
    assert ocr_pdf_pages(str(scanned_pdf), [0, 9]) == {}


@needs_tesseract
def test_ocr_pages_tells_the_pages_read_from_those_skipped_and_those_failed(scanned_pdf):
    spent = ocr_pages(str(scanned_pdf), [1, 2], budget_seconds=0)
    assert spent.texts == {} and spent.skipped == [1, 2] and spent.failed == [] and spent.budget_seconds == 0
    # Page 9 does not exist: its rendering fails, while page 1 (read beside it) is read.
    mixed = ocr_pages(str(scanned_pdf), [9, 1])
    assert set(mixed.texts) == {1} and mixed.failed == [9] and mixed.skipped == []
    assert token_recall(PAGES[0], mixed.texts[1]) >= 0.9
    with override_settings(OCR_PAGE_TIME_LIMIT_SECONDS=0.001):
        timed_out = ocr_pages(str(scanned_pdf), [1, 2])
    assert timed_out.texts == {} and timed_out.failed == [1, 2] and timed_out.skipped == []


@pytest.mark.parametrize(
    "numbers, ranges",
    [
        ([], ""),
        ([7], "7"),
        ([3, 1, 2], "1-3"),
        ([1, 2, 3, 7, 9, 10], "1-3, 7, 9-10"),
        ([401, *range(402, 501)], "401-500"),
    ],
)
def test_page_ranges(numbers, ranges):
    assert page_ranges(numbers) == ranges


def test_missing_tesseract_gives_ocr_unavailable(scanned_pdf):
    with override_settings(OCR_TESSERACT_CMD="/nonexistent/bin/tesseract"):
        with pytest.raises(ExtractionError) as caught:
            ocr_pdf_pages(str(scanned_pdf), [1])
    assert caught.value.code == "ocr_unavailable"
    assert "Tesseract" in caught.value.message


@needs_tesseract
def test_missing_language_data_gives_ocr_unavailable(scanned_pdf):
    with override_settings(OCR_LANGUAGES="eng+xyz"):
        with pytest.raises(ExtractionError) as caught:
            ocr_pdf_pages(str(scanned_pdf), [1])
    assert caught.value.code == "ocr_unavailable"
    assert "xyz" in caught.value.message


def test_ocr_disabled_reads_nothing_even_without_tesseract(scanned_pdf):
    with override_settings(OCR_ENABLED=False, OCR_TESSERACT_CMD="/nonexistent/bin/tesseract"):
        assert ocr_pdf_pages(str(scanned_pdf), [1, 2]) == {}
