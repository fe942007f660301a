"""Ingestion end to end: the API, a real Celery worker, real parsers, the real local embedding model, pgvector.

Every file of the shared corpus ends `ready` with chunks or `failed` with the right code; URL sources are served
by a local site (the SSRF guard lets the worker reach loopback only because the test worker sets
SSRF_ALLOW_LOOPBACK=1, which is off by default — tests/test_safe_http.py proves loopback is refused then).
"""

import pytest
from django.db.models import Count

from knowledge import pipeline
from knowledge.models import Chunk, Source
from minds.models import Mind
from tests.corpus import corpus_file
from tests.helpers import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

FINISHED = ("ready", "failed")


@pytest.fixture
def mind(workspace):
    return Mind.objects.create(workspace=workspace, name="Librarian", slug="librarian-e2e")


def knowledge(mind):
    return f"/api/v1/minds/{mind.id}/knowledge"


def add_file(api, mind, relative: str) -> str:
    path = corpus_file(relative)
    uploaded = api.upload(f"{knowledge(mind)}/upload", path.name, path.read_bytes())
    assert uploaded.status_code == 201, (relative, uploaded.json())
    kind = "podcast" if uploaded.json()["category"] == "audio" else "document"
    created = api.post(knowledge(mind), {"type": kind, "fileUrl": uploaded.json()["fileUrl"]})
    assert created.status_code == 201, (relative, created.json())
    return created.json()["source"]["id"]


def wait_finished(api, mind, source_ids: list[str], timeout: float = 240) -> dict[str, dict]:
    """Polls the database (the API's rate limit is per minute), then reads the final state through the API."""

    def all_finished():
        statuses = Source.objects.filter(id__in=source_ids).values_list("status", flat=True)
        return len(statuses) == len(source_ids) and all(status in FINISHED for status in statuses)

    wait_for(all_finished, timeout=timeout, interval=0.3, what=f"{len(source_ids)} sources to finish")
    return {sid: api.get(f"{knowledge(mind)}/{sid}").json()["source"] for sid in source_ids}


CORPUS_OUTCOMES = {
    "pdf/two-column-lorem.pdf": ("ready", None),
    "pdf/faa-amt-handbook-page.pdf": ("ready", None),
    "pdf/malformed-broken-xref-issue297.pdf": ("ready", None),
    "pdf/encrypted-userpw-openpassword.pdf": ("failed", "pdf_encrypted"),
    "pdf/scanned-no-text-layer-ocr_test.pdf": ("failed", "no_text_layer"),
    "docx/word_sample-headings-table-image.docx": ("ready", None),
    "docx/word_tables-merged-cells.docx": ("ready", None),
    "markdown/pgvector-README.md": ("ready", None),
    "markdown/wikipedia-ibm-excerpt.md": ("ready", None),
    "txt/wikipedia-iwan-roberts-mojibake.txt": ("ready", None),
    "txt/edgecase-empty.txt": ("failed", "empty_content"),
    "audio/sense_and_sensibility_01_austen_64kb-0870.wav": ("ready", None),
    "audio/jfk.flac": ("ready", None),
}


def test_every_corpus_file_ends_ready_with_chunks_or_failed_with_its_code(api, mind, celery_worker):
    ids = {relative: add_file(api, mind, relative) for relative in CORPUS_OUTCOMES}
    sources = wait_finished(api, mind, list(ids.values()), timeout=300)
    outcomes = {rel: (sources[sid]["status"], sources[sid]["errorCode"]) for rel, sid in ids.items()}
    assert outcomes == CORPUS_OUTCOMES, celery_worker.log_text()
    for relative, source_id in ids.items():
        source = sources[source_id]
        chunks = Chunk.objects.filter(source_id=source_id)
        if source["status"] == "ready":
            assert source["chunkCount"] == chunks.count() > 0, relative
            assert source["tokenCount"] > 0 and source["embeddingModel"], relative
            assert source["readyAt"] and source["processingStartedAt"] and source["attempts"] == 1
            assert not chunks.filter(search_vector__isnull=True).exists()
        else:
            assert chunks.count() == 0 and source["failedAt"], relative
            assert source["errorMessage"] and "Traceback" not in source["errorMessage"]

    two_column = Chunk.objects.filter(source_id=ids["pdf/two-column-lorem.pdf"])
    assert sources[ids["pdf/two-column-lorem.pdf"]]["pageCount"] == 3
    assert set(two_column.values_list("page", flat=True)) == {1, 2, 3}
    malformed = " ".join(
        Chunk.objects.filter(source_id=ids["pdf/malformed-broken-xref-issue297.pdf"]).values_list(
            "content", flat=True
        )
    )
    assert "test example" in malformed.lower()
    headings = Chunk.objects.filter(source_id=ids["markdown/pgvector-README.md"]).exclude(heading_path="")
    assert headings.exists()
    docx_text = " ".join(
        Chunk.objects.filter(source_id=ids["docx/word_sample-headings-table-image.docx"]).values_list(
            "content", flat=True
        )
    )
    assert "|" in docx_text  # the table survived as rows

    # Audio: transcribed with timestamps, containing the reference words.
    references = {
        "audio/sense_and_sensibility_01_austen_64kb-0870.wav": ["dashwood", "leisure", "prudently"],
        "audio/jfk.flac": ["fellow americans", "ask not", "your country"],
    }
    for relative, words in references.items():
        source = sources[ids[relative]]
        assert source["durationSeconds"] and source["durationSeconds"] > 3
        transcript = " ".join(
            Chunk.objects.filter(source_id=ids[relative]).values_list("content", flat=True)
        ).lower()
        for word in words:
            assert word in transcript, (relative, transcript)
        first = Chunk.objects.filter(source_id=ids[relative]).order_by("ordinal").first()
        assert first.start_seconds is not None and first.end_seconds > first.start_seconds
    assert Source.objects.get(id=ids["audio/jfk.flac"]).transcribing_started_at is not None


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
    assert pipeline.source_process(source_id) == "not-claimed"
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
