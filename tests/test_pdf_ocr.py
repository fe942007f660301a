"""Scanned PDFs through the PDF extractor and the pipeline: OCRed pages keep their numbers and are listed."""

import io
import shutil

import pytest
from django.test import override_settings
from pypdf import PdfReader, PdfWriter
from reportlab.lib.pagesizes import A4
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen import canvas

from knowledge.errors import ExtractionError
from knowledge.extractors import extract_file
from tests.scans import PAGES, scanned_page, token_recall, write_scanned_pdf

pytestmark = pytest.mark.skipif(
    shutil.which("tesseract") is None, reason="Debian's tesseract-ocr is not installed"
)

LAYER = "This first page has a real text layer, written by ReportLab, and needs no OCR at all."


def mixed_pdf(path, password: str | None = None):
    """Page 1 has a text layer, page 2 is a scan."""
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4)
    pdf.drawString(72, 770, LAYER)
    pdf.showPage()
    image = io.BytesIO()
    scanned_page(PAGES[1], seed=3).save(image, "JPEG", quality=85)
    image.seek(0)
    pdf.drawImage(ImageReader(image), 0, 0, width=A4[0], height=A4[1])
    pdf.showPage()
    pdf.save()
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(buffer.getvalue())))
    if password:
        writer.encrypt(password, algorithm="AES-256")
    with open(path, "wb") as handle:
        writer.write(handle)
    return path


def test_scanned_pdf_is_read_by_ocr_with_its_page_numbers(tmp_path):
    path = write_scanned_pdf(tmp_path / "scan.pdf", PAGES[:2])
    extracted = extract_file(str(path), "pdf")
    assert extracted.metadata["ocrPages"] == [1, 2]
    assert {segment.page for segment in extracted.segments} == {1, 2}
    for number in (1, 2):
        text = " ".join(s.text for s in extracted.segments if s.page == number)
        assert token_recall(PAGES[number - 1], text) >= 0.9


def test_only_the_scanned_page_of_an_encrypted_pdf_is_ocred(tmp_path):
    path = mixed_pdf(tmp_path / "mixed.pdf", password="harbour")
    extracted = extract_file(str(path), "pdf", password="harbour")
    assert extracted.metadata["ocrPages"] == [2]
    assert " ".join(s.text for s in extracted.segments if s.page == 1) == LAYER
    assert token_recall(PAGES[1], " ".join(s.text for s in extracted.segments if s.page == 2)) >= 0.9


def test_without_tesseract_a_scanned_pdf_fails_ocr_unavailable_and_a_mixed_one_keeps_its_text(tmp_path):
    with override_settings(OCR_TESSERACT_CMD="/nonexistent/tesseract"):
        with pytest.raises(ExtractionError) as caught:
            extract_file(str(write_scanned_pdf(tmp_path / "scan.pdf", PAGES[:1])), "pdf")
        assert caught.value.code == "ocr_unavailable"
        extracted = extract_file(str(mixed_pdf(tmp_path / "mixed.pdf")), "pdf")
    assert extracted.text == LAYER and "ocrPages" not in extracted.metadata


def test_scan_of_a_blank_page_still_fails_no_text_layer(tmp_path):
    path = write_scanned_pdf(tmp_path / "blank.pdf", [""])
    with pytest.raises(ExtractionError) as caught:
        extract_file(str(path), "pdf")
    assert caught.value.code == "no_text_layer" and "OCR found no text" in caught.value.message


def test_ocr_disabled_gives_no_text_layer_as_before(tmp_path):
    path = write_scanned_pdf(tmp_path / "scan.pdf", PAGES[:1])
    with override_settings(OCR_ENABLED=False):
        with pytest.raises(ExtractionError) as caught:
            extract_file(str(path), "pdf")
    assert caught.value.code == "no_text_layer"


def test_pages_past_the_ocr_budget_are_recorded_and_the_rest_is_indexed(tmp_path):
    # The budget is spent before the scanned page 2 is reached: the source keeps page 1's text and says what
    # it is missing.
    with override_settings(OCR_TOTAL_TIME_LIMIT_SECONDS=0):
        extracted = extract_file(str(mixed_pdf(tmp_path / "mixed.pdf")), "pdf")
    assert extracted.text == LAYER and "ocrPages" not in extracted.metadata
    assert extracted.metadata["ocrSkippedPages"] == "2" and extracted.metadata["ocrSkippedPageCount"] == 1
    note = extracted.metadata["ocrNote"]
    assert note.startswith("OCR read 0 of the 1 scanned pages") and "time limit (0 s)" in note


def test_scanned_pages_read_and_failed_are_both_listed(tmp_path, monkeypatch):
    # Page 2's rendering gets 1 ms (less than its process needs to start) and is killed; page 1 is read beside it.
    from knowledge.extractors import ocr

    path = write_scanned_pdf(tmp_path / "scan.pdf", PAGES[:2])
    real = ocr._render

    def page_2_past_its_limit(path, number, password, timeout):
        return real(path, number, password, 0.001 if number == 2 else timeout)

    monkeypatch.setattr(ocr, "_render", page_2_past_its_limit)
    extracted = extract_file(str(path), "pdf")
    assert extracted.metadata["ocrPages"] == [1] and extracted.metadata["ocrSkippedPages"] == "2"
    assert "pages 2 ran past their own time limit or failed" in extracted.metadata["ocrNote"]
    assert {segment.page for segment in extracted.segments} == {1}


def test_a_scan_ocr_could_not_read_in_time_fails_with_a_precise_code(tmp_path):
    path = write_scanned_pdf(tmp_path / "scan.pdf", PAGES[:2])
    with override_settings(OCR_TOTAL_TIME_LIMIT_SECONDS=0):
        with pytest.raises(ExtractionError) as spent:
            extract_file(str(path), "pdf")
    assert spent.value.code == "ocr_time_limit" and "pages 1-2 of the 2 scanned pages" in spent.value.message
    with override_settings(OCR_PAGE_TIME_LIMIT_SECONDS=0.001):
        with pytest.raises(ExtractionError) as failed:
            extract_file(str(path), "pdf")
    assert failed.value.code == "ocr_failed" and "(1-2)" in failed.value.message
