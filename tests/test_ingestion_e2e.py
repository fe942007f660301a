"""Ingestion end to end: the API, a real Celery worker, real parsers, the real local embedding model, pgvector.

Every real file (tests/realfiles.py) ends `ready` with chunks or `failed` with the right code; URL sources are served
by a local site (the SSRF guard lets the worker reach loopback only because the test worker sets
SSRF_ALLOW_LOOPBACK=1, which is off by default — tests/test_safe_http.py proves loopback is refused then).
"""

from pathlib import Path

import pytest
from django.db.models import Count

from knowledge import pipeline
from knowledge.models import Chunk, Source
from knowledge.pipeline import Result
from minds.models import Mind
from tests import realfiles
from tests.helpers import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

FINISHED = ("ready", "failed")


@pytest.fixture
def mind(workspace):
    return Mind.objects.create(workspace=workspace, name="Librarian", slug="librarian-e2e")


def knowledge(mind):
    return f"/api/v1/minds/{mind.id}/knowledge"


def add_file(api, mind, name: str, content: bytes) -> str:
    uploaded = api.upload(f"{knowledge(mind)}/upload", name, content)
    assert uploaded.status_code == 201, (name, uploaded.json())
    kind = "podcast" if uploaded.json()["category"] == "audio" else "document"
    created = api.post(knowledge(mind), {"type": kind, "fileUrl": uploaded.json()["fileUrl"]})
    assert created.status_code == 201, (name, created.json())
    return created.json()["source"]["id"]


def wait_finished(api, mind, source_ids: list[str], timeout: float = 240) -> dict[str, dict]:
    """Polls the database (the API's rate limit is per minute), then reads the final state through the API."""

    def all_finished():
        statuses = Source.objects.filter(id__in=source_ids).values_list("status", flat=True)
        return len(statuses) == len(source_ids) and all(status in FINISHED for status in statuses)

    wait_for(all_finished, timeout=timeout, interval=0.3, what=f"{len(source_ids)} sources to finish")
    return {sid: api.get(f"{knowledge(mind)}/{sid}").json()["source"] for sid in source_ids}


COMMITTED = [  # under tests/fixtures/
    "pdf/faa-amt-handbook-page.pdf",
    "pdf/malformed-broken-xref-issue297.pdf",
    "pdf/scanned-no-text-layer-ocr_test.pdf",
    "docx/word_sample-headings-table-image.docx",
    "docx/word_tables-merged-cells.docx",
    "markdown/pgvector-README.md",
    "audio/sense_and_sensibility_01_austen_64kb-0870.wav",
    "audio/jfk.flac",
]
GENERATED = {
    "two-column-lorem.pdf": realfiles.two_column_pdf,
    "encrypted-userpw-openpassword.pdf": realfiles.password_pdf,
    "company-article.md": realfiles.prose_markdown,
    "pasted-mojibake.txt": realfiles.mojibake_text,
    "edgecase-empty.txt": lambda: b"",
}


def real_files() -> dict[str, bytes]:
    """Upload name → content, for every committed and generated real file."""
    files = {Path(relative).name: realfiles.fixture(relative).read_bytes() for relative in COMMITTED}
    return files | {name: write() for name, write in GENERATED.items()}


OUTCOMES = {
    "two-column-lorem.pdf": ("ready", None),
    "faa-amt-handbook-page.pdf": ("ready", None),
    "malformed-broken-xref-issue297.pdf": ("ready", None),
    "encrypted-userpw-openpassword.pdf": ("failed", "pdf_encrypted"),
    "scanned-no-text-layer-ocr_test.pdf": ("ready", None),  # read by OCR
    "word_sample-headings-table-image.docx": ("ready", None),
    "word_tables-merged-cells.docx": ("ready", None),
    "pgvector-README.md": ("ready", None),
    "company-article.md": ("ready", None),
    "pasted-mojibake.txt": ("ready", None),
    "edgecase-empty.txt": ("failed", "empty_content"),
    "sense_and_sensibility_01_austen_64kb-0870.wav": ("ready", None),
    "jfk.flac": ("ready", None),
}


def chunk_text(source_id: str) -> str:
    return " ".join(
        Chunk.objects.filter(source_id=source_id).order_by("ordinal").values_list("content", flat=True)
    )


def test_every_real_file_ends_ready_with_chunks_or_failed_with_its_code(api, mind, celery_worker):
    ids = {name: add_file(api, mind, name, content) for name, content in real_files().items()}
    sources = wait_finished(api, mind, list(ids.values()), timeout=300)
    outcomes = {name: (sources[sid]["status"], sources[sid]["errorCode"]) for name, sid in ids.items()}
    assert outcomes == OUTCOMES, celery_worker.log_text()
    for name, source_id in ids.items():
        source = sources[source_id]
        chunks = Chunk.objects.filter(source_id=source_id)
        if source["status"] == "ready":
            assert source["chunkCount"] == chunks.count() > 0, name
            assert source["tokenCount"] > 0 and source["embeddingModel"], name
            assert source["readyAt"] and source["processingStartedAt"] and source["attempts"] == 1
            assert not chunks.filter(search_vector__isnull=True).exists()
        else:
            assert chunks.count() == 0 and source["failedAt"], name
            assert source["errorMessage"] and "Traceback" not in source["errorMessage"]

    two_column = Chunk.objects.filter(source_id=ids["two-column-lorem.pdf"])
    assert sources[ids["two-column-lorem.pdf"]]["pageCount"] == 3
    assert set(two_column.values_list("page", flat=True)) == {1, 2, 3}
    text = chunk_text(ids["two-column-lorem.pdf"])
    markers = ["Alpha1", "Beta1", "Alpha2", "Beta2", "Alpha3", "Beta3"]
    assert [text.index(m) for m in markers] == sorted(text.index(m) for m in markers)  # column by column
    assert "test example" in chunk_text(ids["malformed-broken-xref-issue297.pdf"]).lower()
    assert "elastic stop nut" in chunk_text(ids["faa-amt-handbook-page.pdf"]).lower()
    scanned = ids["scanned-no-text-layer-ocr_test.pdf"]
    assert "docling bundles pdf document conversion" in chunk_text(scanned).lower()
    assert sources[scanned]["metadata"]["ocrPages"] == [1] and sources[scanned]["pageCount"] == 1
    assert set(Chunk.objects.filter(source_id=scanned).values_list("page", flat=True)) == {1}
    headings = Chunk.objects.filter(source_id=ids["pgvector-README.md"]).exclude(heading_path="")
    assert headings.exists()
    assert Chunk.objects.filter(
        source_id=ids["company-article.md"], heading_path="The Company > Research"
    ).exists()
    assert "|" in chunk_text(ids["word_sample-headings-table-image.docx"])  # the table survived as rows
    assert "derby" in chunk_text(ids["pasted-mojibake.txt"])

    # Audio: transcribed with timestamps, containing the reference words (tests/fixtures/audio/transcripts.tsv).
    references = {
        "sense_and_sensibility_01_austen_64kb-0870.wav": ["dashwood", "leisure", "prudently"],
        "jfk.flac": ["fellow americans", "ask not", "your country"],
    }
    for name, words in references.items():
        source = sources[ids[name]]
        assert source["durationSeconds"] and source["durationSeconds"] > 3
        transcript = chunk_text(ids[name]).lower()
        for word in words:
            assert word in transcript, (name, transcript)
        first = Chunk.objects.filter(source_id=ids[name]).order_by("ordinal").first()
        assert first.start_seconds is not None and first.end_seconds > first.start_seconds
    assert Source.objects.get(id=ids["jfk.flac"]).transcribing_started_at is not None


def test_text_source_processing_twice_gives_the_same_chunks(api, mind, celery_worker):
    paragraphs = [
        f"Paragraph {i}: the lighthouse keeper counted {i} ships passing the northern cape."
        for i in range(60)
    ]
    created = api.post(knowledge(mind), {"type": "text", "name": "Log", "content": "\n\n".join(paragraphs)})
    source_id = created.json()["source"]["id"]
    first = wait_finished(api, mind, [source_id])[source_id]
    assert first["status"] == "ready", first
    before = list(
        Chunk.objects.filter(source_id=source_id).order_by("ordinal").values_list("content_hash", "ordinal")
    )

    # A duplicate delivery of the same task finds nothing to claim and changes nothing.
    assert pipeline.source_process(source_id).result is Result.NOT_CLAIMED
    assert Chunk.objects.filter(source_id=source_id).count() == len(before)

    # Reprocess: the chunk set is replaced, not appended to.
    assert api.post(f"{knowledge(mind)}/{source_id}/reprocess").status_code == 200
    second = wait_finished(api, mind, [source_id])[source_id]
    after = list(
        Chunk.objects.filter(source_id=source_id).order_by("ordinal").values_list("content_hash", "ordinal")
    )
    assert second["status"] == "ready" and after == before
    duplicates = Chunk.objects.values("source_id", "ordinal").annotate(n=Count("id")).filter(n__gt=1)
    assert not duplicates.exists()


def test_ingest_command_uploads_a_folder_and_reports_each_file(mind, celery_worker, tmp_path):
    from io import StringIO

    from django.core.management import call_command

    (tmp_path / "notes.md").write_text("# Tides\n\nThe moon pulls the sea twice a day.\n")
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "program.exe").write_bytes(b"MZ\x90\x00" + b"\x00" * 100)
    out = StringIO()
    with pytest.raises(Exception) as failed:  # one file fails: the command says so with a non-zero exit
        call_command("ingest", "--mind", mind.slug, str(tmp_path), "--timeout", "120", stdout=out)
    assert "did not become ready" in str(failed.value)
    report = out.getvalue()
    assert "Ingestion summary" in report and "notes.md" in report and "ready" in report
    assert "unsupported_file_type" in report and "empty_content" in report
    statuses = dict(Source.objects.filter(mind=mind).values_list("name", "status"))
    assert statuses == {"notes.md": "ready", "empty.txt": "failed"}
