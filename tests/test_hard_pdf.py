"""Hard PDFs: encrypted files (AES and RC4, owner-only or with a user password the source carries), text in a CFF
font, and pages set in two columns whose content stream draws rows across both columns.

The extractor runs on generated files; the end-to-end tests go through the API and the real worker. The password
is followed everywhere it could leak: the database row, every API answer, the audit log, the logs of the API and
of the worker.
"""

import io
import json
import logging
import re
import textwrap

import pytest
from pypdf import PdfReader, PdfWriter

from accounts.models import AuditLog
from bench.pdf_columns import lcs_ratio, sentences_whole, words
from bench.pdfwriter import _write, write_text_pdf, write_two_column_pdf
from knowledge.errors import ExtractionError
from knowledge.extractors.pdf import NEEDS_PASSWORD, WRONG_PASSWORD, extract_pdf, page_text
from knowledge.extractors.pdf_layout import TextStarts, may_have_columns
from knowledge.models import Chunk, Collection, Source
from knowledge.passwords import password_decrypt, password_encrypt
from minds.models import Mind
from tests.helpers import assert_error, wait_for

PASSWORD = "Tr0ub4dor&3-correct-horse"

LEFT = [
    "Rivers carry the snow of the mountains down to the sea, and every valley they cross is shaped by the water "
    "that ran through it in earlier ages. The oldest maps already show the great bends of the lower river.",
    "Farmers settled where the floods left fertile silt behind. Their villages moved whenever the river changed "
    "its bed, and the names of abandoned places still follow the old channels across the plain.",
]
RIGHT = [
    "Migrating birds follow the same valleys every autumn. They rest on the sandbanks at dusk and leave again "
    "before dawn, flying south along the coast until the winter is over.",
    "Sailors read the stars long before any instrument told them where they were. A clear night at sea was a map "
    "of its own, and every harbour kept a book of the stars that led to it.",
]
TITLE = "Water, Birds and Stars: Notes from a River Delta"
FOOTER = "Proceedings of the Delta Society, volume 7, pages 11 to 19, printed in two columns on letter paper"


def pdf_bytes(text: str) -> bytes:
    """A one-page PDF of `text` (bench/pdfwriter.py writes it: Helvetica, real text layer)."""
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".pdf") as handle:
        write_text_pdf(handle.name, [text], pages=1)
        return open(handle.name, "rb").read()


def encrypted(data: bytes, *, user_password: str, algorithm: str, owner_password: str = "owner-x") -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.encrypt(user_password=user_password, owner_password=owner_password, algorithm=algorithm)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def write_bytes(tmp_path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


# Encryption -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["AES-128", "AES-256", "RC4-128"])
def test_owner_restricted_pdf_opens_with_the_empty_user_password(tmp_path, algorithm):
    data = encrypted(
        pdf_bytes(f"Copy protected with {algorithm} but readable."), user_password="", algorithm=algorithm
    )
    assert PdfReader(io.BytesIO(data)).is_encrypted

    extracted = extract_pdf(write_bytes(tmp_path, "owner.pdf", data))

    assert f"Copy protected with {algorithm} but readable." in extracted.text
    assert extracted.page_count == 1


@pytest.mark.parametrize("algorithm", ["AES-256", "RC4-128"])
def test_user_password_pdf_needs_its_password(tmp_path, algorithm):
    data = encrypted(pdf_bytes("Behind a real password."), user_password=PASSWORD, algorithm=algorithm)
    path = write_bytes(tmp_path, "locked.pdf", data)

    with pytest.raises(ExtractionError) as missing:
        extract_pdf(path)
    with pytest.raises(ExtractionError) as wrong:
        extract_pdf(path, password="not-the-password")

    assert (missing.value.code, missing.value.message) == ("pdf_encrypted", NEEDS_PASSWORD)
    assert (wrong.value.code, wrong.value.message) == ("pdf_encrypted", WRONG_PASSWORD)
    assert "password" in NEEDS_PASSWORD and PASSWORD not in wrong.value.message
    assert "Behind a real password." in extract_pdf(path, password=PASSWORD).text
    assert "Behind a real password." in extract_pdf(path, password="owner-x").text  # the owner's opens it too


def test_password_ciphertext_is_fresh_each_time_and_decrypts_back():
    first, second = password_encrypt(PASSWORD), password_encrypt(PASSWORD)

    assert first != second and PASSWORD not in first
    assert password_decrypt(first) == password_decrypt(second) == PASSWORD
    assert password_decrypt("") is None


def test_password_stored_under_another_secret_key_fails_as_pdf_encrypted(settings):
    ciphertext = password_encrypt(PASSWORD)
    settings.SECRET_KEY = "a-rotated-secret-key"

    with pytest.raises(ExtractionError) as caught:
        password_decrypt(ciphertext)

    assert caught.value.code == "pdf_encrypted"


# CFF fonts --------------------------------------------------------------------------------------------------------


def cff_font_pdf(path: str, text: str) -> None:
    """A page whose font is an embedded CFF program (FontFile3 /Type1C) with its own encoding: the character codes
    are 1, 2, 3… and only the font program says which letter each draws, so the text reads right only when pypdf
    parses the CFF (with fontTools)."""
    from fontTools.fontBuilder import FontBuilder
    from fontTools.pens.t2CharStringPen import T2CharStringPen

    letters = sorted(set(text) - {" "})
    order = [".notdef", "space", *letters]
    charstrings = {}
    for glyph in order:
        pen = T2CharStringPen(500, None)
        if glyph not in (".notdef", "space"):
            pen.moveTo((50, 0))
            pen.lineTo((450, 0))
            pen.lineTo((450, 700))
            pen.lineTo((50, 700))
            pen.closePath()
        charstrings[glyph] = pen.getCharString()
    builder = FontBuilder(1000, isTTF=False)
    builder.setupGlyphOrder(order)
    builder.setupCharacterMap({ord(c): c for c in letters} | {32: "space"})
    builder.setupCFF("MindsTestCFF", {"FullName": "MindsTestCFF"}, charstrings, {})
    builder.setupHorizontalMetrics({glyph: (500, 0) for glyph in order})
    builder.setupHorizontalHeader(ascent=800, descent=-200)
    cff = builder.font["CFF "].cff
    encoding = [".notdef"] * 256
    encoding[32] = "space"
    codes = {" ": 32}
    for code, letter in enumerate(letters, start=1):
        encoding[code], codes[letter] = letter, code
    cff.topDictIndex[0].Encoding = encoding
    program = io.BytesIO()
    cff.compile(program, builder.font)
    font_data = program.getvalue()
    shown = "".join(f"{codes[c]:02x}" for c in text)
    content = f"BT /F1 12 Tf 72 700 Td <{shown}> Tj ET".encode()
    widths = b" ".join([b"500"] * 32)
    _write(
        path,
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /MindsTestCFF /FirstChar 1 /LastChar 32 /Widths ["
            + widths
            + b"] /FontDescriptor 4 0 R >>",
            b"<< /Type /FontDescriptor /FontName /MindsTestCFF /Flags 4 /FontBBox [0 -200 1000 800] /ItalicAngle 0 "
            b"/Ascent 800 /Descent -200 /CapHeight 700 /StemV 80 /FontFile3 5 0 R >>",
            b"<< /Subtype /Type1C /Length %d >>\nstream\n" % len(font_data) + font_data + b"\nendstream",
            b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> "
            b"/Contents 6 0 R >>",
        ],
        [7],
    )


def test_text_in_an_embedded_cff_font_reads_through_its_own_encoding(tmp_path):
    path = str(tmp_path / "cff.pdf")
    cff_font_pdf(path, "Hello from a compact font")

    assert extract_pdf(path).text == "Hello from a compact font"


# Two columns ------------------------------------------------------------------------------------------------------


@pytest.fixture
def row_order_page(tmp_path):
    """A paper page whose stream draws left line 1, right line 1, left line 2, …; and its known reading order."""
    path = str(tmp_path / "rows.pdf")
    known = write_two_column_pdf(path, TITLE, LEFT, RIGHT, row_order=True, footer=FOOTER)
    return path, known


def plain(path: str) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(path).pages)


def test_two_columns_drawn_row_by_row_come_out_column_by_column(row_order_page):
    path, known = row_order_page

    extracted = extract_pdf(path)

    # pypdf alone interleaves the columns: most sentences are cut in two.
    assert sentences_whole(known, plain(path)) < 0.5
    assert lcs_ratio(words(known), words(plain(path))) < 0.8
    assert sentences_whole(known, extracted.text) == 1.0
    assert lcs_ratio(words(known), words(extracted.text)) == 1.0
    texts = [segment.text for segment in extracted.segments]
    assert texts == [TITLE, *LEFT, *RIGHT, FOOTER]  # title first, paragraphs kept apart, footer last
    assert {segment.page for segment in extracted.segments} == {1}


def test_two_columns_drawn_a_column_at_a_time_keep_their_order(tmp_path):
    path = str(tmp_path / "columns.pdf")
    known = write_two_column_pdf(path, TITLE, LEFT, RIGHT, row_order=False, footer=FOOTER)

    assert [segment.text for segment in extract_pdf(path).segments] == [TITLE, *LEFT, *RIGHT, FOOTER]
    assert lcs_ratio(words(known), words(extract_pdf(path).text)) == 1.0


def test_hyphenated_line_ends_rejoin_inside_a_column(tmp_path):
    path = str(tmp_path / "hyphen.pdf")
    hyphenated = (
        "Extraction keeps the order of words in every column of the extraordinarily long para-graph, so that each "
        "sentence reads whole."
    )
    # The column's line is cut at the word's hyphen.
    assert "column of the extraordinarily long para-" in textwrap.wrap(hyphenated, width=44)
    write_two_column_pdf(path, TITLE, [hyphenated, *LEFT], RIGHT, row_order=True, footer=FOOTER)

    text = extract_pdf(path).text

    assert "the extraordinarily long paragraph, so that each sentence reads whole." in text


def test_a_real_two_column_handbook_page_keeps_fractions_and_its_drop_cap_in_their_lines():
    from tests import realfiles

    text = extract_pdf(str(realfiles.fixture("pdf/faa-amt-handbook-page.pdf"))).text

    assert "No. 6 up to 1\u20444 inch" in text  # a fraction's raised 1 and lowered 4 stay in the line
    assert "The Boots self-locking nut is of one piece" in text  # the drop cap "T" joins its word
    assert "types; and the elastic stop nut, representing the fiber insert type." in text


def test_a_two_column_table_of_short_cells_is_not_read_as_columns(tmp_path):
    path = str(tmp_path / "table.pdf")
    labels = ["Name", "Height", "Weight", "Colour", "Habitat", "Diet"]
    values = ["Mallard", "60 cm", "1.2 kg", "Green head", "Ponds", "Plants"]
    write_two_column_pdf(path, TITLE, labels, values, row_order=True)

    text = extract_pdf(path).text

    assert words(text) == words(plain(path))  # row by row, as drawn
    assert "Name Mallard Height 60 cm" in text


def test_single_column_pages_keep_the_plain_text_and_are_not_read_twice(tmp_path):
    path = str(tmp_path / "single.pdf")
    paragraphs = LEFT + RIGHT
    write_text_pdf(path, paragraphs, pages=3)

    for page in PdfReader(path).pages:
        starts = TextStarts()
        expected = page.extract_text(visitor_operand_after=starts)
        assert not may_have_columns(starts, page)  # the fast path: no second reading of the page
        assert page_text(page) == expected == page.extract_text()


# End to end: the API and the real worker --------------------------------------------------------------------------


def knowledge(mind) -> str:
    return f"/api/v1/minds/{mind.id}/knowledge"


def upload(api, base: str, name: str, content: bytes) -> str:
    response = api.upload(f"{base}/upload", name, content)
    assert response.status_code == 201, response.json()
    return response.json()["fileUrl"]


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_encrypted_pdfs_through_the_worker_with_and_without_password(api, workspace, celery_worker, caplog):
    caplog.set_level(logging.DEBUG)
    mind = Mind.objects.create(workspace=workspace, name="Vault", slug="vault-hard-pdf")
    base = knowledge(mind)
    files = {
        f"owner-{algorithm}": (
            encrypted(pdf_bytes(f"Owner only {algorithm} text."), user_password="", algorithm=algorithm),
            None,
        )
        for algorithm in ("AES-128", "AES-256", "RC4-128")
    }
    for case, password in (("no-password", None), ("right", PASSWORD), ("wrong", "guess-1234")):
        content = pdf_bytes(f"Locked text for the {case} case.")
        files[case] = (encrypted(content, user_password=PASSWORD, algorithm="AES-256"), password)
    ids, answers = {}, []
    for case, (content, password) in files.items():
        body = {"type": "document", "fileUrl": upload(api, base, f"{case}.pdf", content)}
        if password:
            body["password"] = password
        created = api.post(base, body)
        assert created.status_code == 201, created.json()
        answers.append(created.content)
        ids[case] = created.json()["source"]["id"]

    def finished():
        return all(
            s in ("ready", "failed")
            for s in Source.objects.filter(id__in=ids.values()).values_list("status", flat=True)
        )

    wait_for(finished, timeout=240, interval=0.3, what="the encrypted PDFs to finish")
    sources = {case: api.get(f"{base}/{sid}").json()["source"] for case, sid in ids.items()}
    outcome = {case: (s["status"], s["errorCode"], s["errorMessage"]) for case, s in sources.items()}
    assert outcome == {
        "owner-AES-128": ("ready", None, None),
        "owner-AES-256": ("ready", None, None),
        "owner-RC4-128": ("ready", None, None),
        "no-password": ("failed", "pdf_encrypted", NEEDS_PASSWORD),
        "right": ("ready", None, None),
        "wrong": ("failed", "pdf_encrypted", WRONG_PASSWORD),
    }, celery_worker.log_text()
    for algorithm in ("AES-128", "AES-256", "RC4-128"):
        chunks = Chunk.objects.filter(source_id=ids[f"owner-{algorithm}"]).values_list("content", flat=True)
        assert f"Owner only {algorithm} text." in " ".join(chunks)
    assert "Locked text for the right case." in " ".join(
        Chunk.objects.filter(source_id=ids["right"]).values_list("content", flat=True)
    )

    # Reprocessing opens the file again with the stored password.
    again = api.post(f"{base}/{ids['right']}/reprocess")
    assert again.status_code in (200, 202), again.json()
    answers.append(again.content)
    wait_for(
        lambda: (
            Source.objects.filter(id=ids["right"], status="ready", attempts=1).exists()
            and Source.objects.get(id=ids["right"]).ready_at > Source.objects.get(id=ids["right"]).queued_at
        ),
        timeout=120,
        what="the reprocessed source to be ready",
    )

    # The password is nowhere but as ciphertext in its own column.
    row = Source.objects.get(id=ids["right"])
    assert row.password_ciphertext and PASSWORD not in row.password_ciphertext
    assert password_decrypt(row.password_ciphertext) == PASSWORD
    for case in ("right", "wrong"):
        values = Source.objects.filter(id=ids[case]).values().get()
        assert not any("guess-1234" in str(v) or PASSWORD in str(v) for v in values.values())
    answers += [
        api.get(base).content,
        api.get(f"{base}/{ids['right']}").content,
        api.get(f"{base}/{ids['wrong']}").content,
    ]
    for answer in answers:
        assert PASSWORD.encode() not in answer and b"guess-1234" not in answer
        assert b'"password"' not in answer
    audit = AuditLog.objects.filter(entity="source", entity_id=ids["right"], action="create").get()
    assert audit.changes["password"] == "[redacted]"
    everything = json.dumps(list(AuditLog.objects.values("changes", "entity_name")))
    assert PASSWORD not in everything and "guess-1234" not in everything
    logged = caplog.text + celery_worker.log_path.read_text(errors="replace")
    assert PASSWORD not in logged and "guess-1234" not in logged


# The API: the password field --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_password_is_accepted_only_on_document_sources_and_up_to_1024_characters(api, workspace):
    mind = Mind.objects.create(workspace=workspace, name="Strict", slug="strict-hard-pdf")
    base = knowledge(mind)
    file_url = upload(api, base, "locked.pdf", pdf_bytes("Short text."))

    on_url = api.post(base, {"type": "url", "url": "https://example.com/a", "password": "x"})
    too_long = api.post(base, {"type": "document", "fileUrl": file_url, "password": "p" * 1025})
    blank = api.post(base, {"type": "document", "fileUrl": file_url, "password": ""})

    assert assert_error(on_url, 400, "validation_error")["details"]["fields"]["password"]
    assert assert_error(too_long, 400, "validation_error")["details"]["fields"]["password"]
    assert "p" * 100 not in too_long.content.decode()
    assert_error(blank, 400, "validation_error")
    assert not Source.objects.filter(mind=mind).exists()
    longest = api.post(base, {"type": "document", "fileUrl": file_url, "password": "p" * 1024})
    assert longest.status_code == 201, longest.json()
    assert password_decrypt(Source.objects.get(mind=mind).password_ciphertext) == "p" * 1024


@pytest.mark.django_db
def test_a_collection_document_source_keeps_its_password_encrypted(api, workspace):
    collection = Collection.objects.create(workspace=workspace, name="Vault", slug="vault-collection")
    base = f"/api/v1/collections/{collection.id}/knowledge"
    file_url = upload(api, base, "locked.pdf", pdf_bytes("Collection text."))

    created = api.post(base, {"type": "document", "fileUrl": file_url, "password": PASSWORD})

    assert created.status_code == 201, created.json()
    assert PASSWORD.encode() not in created.content and "password" not in created.json()["source"]
    source = Source.objects.get(collection=collection)
    assert password_decrypt(source.password_ciphertext) == PASSWORD


@pytest.mark.django_db
def test_openapi_documents_the_write_only_password_of_a_source_body(client):
    document = json.loads(client.get("/api/v1/openapi.json").content)
    bodies = [
        operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        for route in ("/api/v1/minds/{mind_id}/knowledge", "/api/v1/collections/{collection_id}/knowledge")
        for operation in [document["paths"][route]["post"]]
    ]
    for ref in set(bodies):
        schema = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
        password = schema["properties"]["password"]
        assert password["writeOnly"] is True and password["maxLength"] == 1024
        assert re.search("encrypted", password["description"])
    source = document["components"]["schemas"]["Source"]
    assert "password" not in source["properties"]
