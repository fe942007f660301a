"""The knowledge endpoints without a worker: validation, type detection, limits, duplicates, scoping, SSRF."""

import io

import pytest
from django.core.files.storage import default_storage
from docx import Document

from config.api.errors import ValidationFailed
from knowledge import services
from knowledge.models import Chunk, Source, UploadedFile
from minds.models import Mind
from tests.helpers import KeyedClient, assert_error, make_key
from tests.realfiles import fixture, two_column_pdf

pytestmark = pytest.mark.django_db


@pytest.fixture
def mind(workspace):
    return Mind.objects.create(workspace=workspace, name="Ada", slug="ada-test")


def base(mind):
    return f"/api/v1/minds/{mind.id}/knowledge"


def upload(api, mind, name, content):
    return api.upload(f"{base(mind)}/upload", name, content)


def docx_bytes(text="Hello from a Word document."):
    document = Document()
    document.add_heading("Title", level=1)
    document.add_paragraph(text)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def test_text_source_is_created_pending_with_retry_after(api, mind):
    response = api.post(base(mind), {"type": "text", "name": "Notes", "content": "Grace Hopper wrote COBOL."})
    assert response.status_code == 201, response.json()
    source = response.json()["source"]
    assert source["status"] == "pending" and source["type"] == "text" and source["name"] == "Notes"
    assert source["id"].startswith("src_") and source["contentHash"]
    assert response["Retry-After"] == "5"
    detail = api.get(f"{base(mind)}/{source['id']}")
    assert detail.status_code == 200 and detail["Retry-After"] == "5"


def test_every_type_validates_its_fields(api, mind):
    assert_error(api.post(base(mind), {"type": "url"}), 400, "validation_error")
    assert_error(api.post(base(mind), {"type": "text", "content": "   "}), 400, "validation_error")
    assert_error(
        api.post(base(mind), {"type": "youtube", "youtubeUrl": "https://vimeo.com/1"}),
        400,
        "validation_error",
    )
    assert_error(api.post(base(mind), {"type": "podcast"}), 400, "validation_error")
    both = {
        "type": "podcast",
        "audioUrl": "https://example.com/a.mp3",
        "feedUrl": "https://example.com/f.xml",
    }
    assert_error(api.post(base(mind), both), 400, "validation_error")
    assert_error(
        api.post(base(mind), {"type": "text", "content": "x", "url": "https://e.com"}),
        400,
        "validation_error",
    )
    assert_error(api.post(base(mind), {"type": "video", "url": "https://e.com"}), 400, "validation_error")
    assert_error(api.post(base(mind), {"type": "text", "content": "x", "colour": 1}), 400, "validation_error")
    body = assert_error(
        api.post(base(mind), {"type": "document", "fileUrl": "https://cdn.example.com/x.pdf"}),
        400,
        "validation_error",
    )
    assert "fileUrl" in body["details"]["fields"]
    assert Source.objects.count() == 0


def test_source_create_without_the_input_of_its_type_gives_a_validation_error(mind):
    """Callers other than the API (the ingest command) get the domain error the API would give, not a crash."""
    with pytest.raises(ValidationFailed) as missing:
        services.source_create(mind=mind, kind="url")
    assert missing.value.details == {"fields": {"url": ["Required for a url source."]}}
    source = services.source_create(mind=mind, kind="text", content="  First line\nSecond line")
    assert source.name == "First line" and source.status == "pending"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/admin",
        "http://localhost:8000/",
        "http://10.0.0.5/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "ftp://example.com/file",
        "file:///etc/passwd",
    ],
)
def test_urls_that_reach_inside_are_refused(api, mind, url):
    assert_error(api.post(base(mind), {"type": "url", "url": url}), 400, "url_not_allowed")
    assert_error(
        api.post(base(mind), {"type": "text", "content": "x", "callbackUrl": url}), 400, "url_not_allowed"
    )
    assert Source.objects.count() == 0


def test_youtube_url_forms_give_the_video_id(api, mind):
    forms = [
        "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
        "https://youtu.be/dQw4w9WgXcQ",
        "https://www.youtube.com/embed/dQw4w9WgXcQ",
        "https://www.youtube.com/shorts/dQw4w9WgXcQ",
    ]
    first = api.post(base(mind), {"type": "youtube", "youtubeUrl": forms[0]})
    assert first.status_code == 201, first.json()
    assert first.json()["source"]["youtubeVideoId"] == "dQw4w9WgXcQ"
    for form in forms[1:]:  # the same video in any form is the same source
        assert_error(api.post(base(mind), {"type": "youtube", "youtubeUrl": form}), 400, "duplicate_source")


def test_duplicate_text_and_normalised_url(api, mind):
    assert api.post(base(mind), {"type": "text", "content": "Same   text\n here"}).status_code == 201
    body = assert_error(
        api.post(base(mind), {"type": "text", "content": "Same text here"}), 400, "duplicate_source"
    )
    assert body["details"]["existingSourceId"].startswith("src_")
    assert (
        api.post(
            base(mind), {"type": "url", "url": "https://Example.com/page?b=2&a=1&utm_source=x"}
        ).status_code
        == 201
    )
    assert_error(
        api.post(base(mind), {"type": "url", "url": "https://example.com/page?a=1&b=2#top"}),
        400,
        "duplicate_source",
    )


def test_same_content_in_another_mind_is_not_a_duplicate(api, mind, workspace):
    other = Mind.objects.create(workspace=workspace, name="Other", slug="other-test")
    assert api.post(base(mind), {"type": "text", "content": "Shared fact."}).status_code == 201
    assert api.post(base(other), {"type": "text", "content": "Shared fact."}).status_code == 201


def test_per_mind_and_workspace_source_limits(api, mind, workspace):
    mind.source_limit = 2
    mind.save()
    for i in range(2):
        assert api.post(base(mind), {"type": "text", "content": f"fact {i}"}).status_code == 201
    body = assert_error(api.post(base(mind), {"type": "text", "content": "fact 3"}), 400, "limit_exceeded")
    assert body["details"]["limit"] == "sourceLimit"
    workspace.sources_limit = 2
    workspace.save()
    other = Mind.objects.create(workspace=workspace, name="Other", slug="other-test")
    body = assert_error(api.post(base(other), {"type": "text", "content": "fact 4"}), 400, "limit_exceeded")
    assert body["details"]["limit"] == "sourcesLimit"


def test_upload_decides_type_from_content_and_document_source_uses_it(api, mind):
    pdf = two_column_pdf()
    response = upload(api, mind, "renamed.txt", pdf)  # the name lies; the bytes are a PDF
    assert response.status_code == 201, response.json()
    data = response.json()
    assert (
        data["mimeType"] == "application/pdf"
        and data["category"] == "document"
        and data["fileSize"] == len(pdf)
    )
    stored = UploadedFile.objects.get(id=data["fileId"])
    assert default_storage.exists(stored.file.name)
    created = api.post(base(mind), {"type": "document", "fileUrl": data["fileUrl"]})
    assert created.status_code == 201, created.json()
    assert created.json()["source"]["fileName"] == stored.file_name
    assert_error(
        api.post(base(mind), {"type": "document", "fileUrl": data["fileUrl"]}), 400, "duplicate_source"
    )
    download = api.get(data["fileUrl"].split("127.0.0.1:8000", 1)[-1])
    assert download.status_code == 200 and b"".join(download.streaming_content) == pdf


def test_upload_docx_and_audio_categories(api, mind):
    doc = upload(api, mind, "notes.bin", docx_bytes())
    assert doc.status_code == 201, doc.json()
    assert doc.json()["mimeType"] == "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    wav = upload(
        api,
        mind,
        "speech.wav",
        fixture("audio/sense_and_sensibility_01_austen_64kb-0870.wav").read_bytes(),
    )
    assert wav.status_code == 201 and wav.json()["category"] == "audio"
    # An audio file is not a document, and a document is not a podcast.
    assert_error(
        api.post(base(mind), {"type": "document", "fileUrl": wav.json()["fileUrl"]}), 400, "validation_error"
    )
    assert_error(
        api.post(base(mind), {"type": "podcast", "fileUrl": doc.json()["fileUrl"]}), 400, "validation_error"
    )
    podcast = api.post(base(mind), {"type": "podcast", "fileUrl": wav.json()["fileUrl"]})
    assert podcast.status_code == 201, podcast.json()


@pytest.mark.parametrize(
    "name,content",
    [
        ("evil.pdf", b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 200),
        ("image.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 200),
        ("archive.docx", b"PK\x03\x04" + b"\x00" * 200),
    ],
)
def test_upload_refuses_unsupported_bytes(api, mind, name, content):
    assert_error(upload(api, mind, name, content), 415, "unsupported_file_type")
    assert UploadedFile.objects.count() == 0


def test_upload_over_the_document_limit_is_413(api, mind, settings):
    settings.MAX_DOCUMENT_BYTES = 1000
    body = assert_error(upload(api, mind, "big.txt", b"word " * 400), 413, "file_too_large")
    assert body["details"]["maxBytes"] == 1000
    assert UploadedFile.objects.count() == 0


def test_upload_needs_multipart_with_one_file(api, mind):
    response = api.post(f"{base(mind)}/upload", {"file": "not a file"})
    assert response.status_code == 415 and response.json()["status"] == "error"
    assert_error(
        api.post(f"{base(mind)}/upload", {}, content_type="multipart/form-data; boundary=x"),
        400,
        "validation_error",
    )


def test_file_of_another_mind_cannot_be_used(api, mind, workspace):
    other = Mind.objects.create(workspace=workspace, name="Other", slug="other-test")
    data = upload(api, other, "a.txt", b"Some text in another mind.").json()
    assert_error(
        api.post(base(mind), {"type": "document", "fileUrl": data["fileUrl"]}), 400, "validation_error"
    )


def test_list_filters_and_pagination(api, mind):
    for i in range(3):
        api.post(base(mind), {"type": "text", "content": f"fact number {i}"})
    api.post(base(mind), {"type": "url", "url": "https://example.com/a"})
    Source.objects.filter(type="url").update(status="failed", error_code="fetch_failed")
    page = api.get(base(mind), {"limit": 2}).json()
    assert page["pagination"] == {"page": 1, "limit": 2, "total": 4, "totalPages": 2}
    assert len(page["sources"]) == 2
    assert [s["type"] for s in api.get(base(mind), {"type": "url"}).json()["sources"]] == ["url"]
    assert [s["status"] for s in api.get(base(mind), {"status": "failed"}).json()["sources"]] == ["failed"]
    assert_error(api.get(base(mind), {"status": "done"}), 400, "validation_error")
    finished = api.get(f"{base(mind)}/{Source.objects.get(type='url').id}")
    assert "Retry-After" not in finished


def test_reprocess_and_busy_conflict(api, mind):
    source_id = api.post(base(mind), {"type": "text", "content": "A fact."}).json()["source"]["id"]
    Source.objects.filter(id=source_id).update(status="processing")
    assert_error(api.post(f"{base(mind)}/{source_id}/reprocess"), 409, "source_busy")
    Source.objects.filter(id=source_id).update(
        status="failed", error_code="fetch_failed", error_message="x", attempts=3
    )
    response = api.post(f"{base(mind)}/{source_id}/reprocess")
    assert response.status_code == 200
    source = response.json()["source"]
    assert source["status"] == "pending" and source["errorCode"] is None and source["attempts"] == 0


def test_delete_removes_source_chunks_and_file(api, mind):
    data = upload(api, mind, "a.txt", b"Delete me with my chunks.").json()
    source_id = api.post(base(mind), {"type": "document", "fileUrl": data["fileUrl"]}).json()["source"]["id"]
    source = Source.objects.get(id=source_id)
    Chunk.objects.create(
        workspace=mind.workspace,
        mind=mind,
        source=source,
        ordinal=0,
        content="x",
        content_hash="h",
        embedding=[0.0] * 383 + [1.0],
        embedding_model="m",
    )
    name = UploadedFile.objects.get(id=data["fileId"]).file.name
    with pytest.MonkeyPatch.context():
        from django.test import TestCase

        with TestCase.captureOnCommitCallbacks(execute=True):
            response = api.delete(f"{base(mind)}/{source_id}")
    assert response.json() == {"status": "success", "deleted": True, "id": source_id}
    assert not Source.objects.filter(id=source_id).exists() and not Chunk.objects.exists()
    assert not UploadedFile.objects.exists() and not default_storage.exists(name)
    assert_error(api.get(f"{base(mind)}/{source_id}"), 404, "not_found")


def test_scopes_and_other_workspaces(api, mind, workspace, other_api):
    source_id = api.post(base(mind), {"type": "text", "content": "Private."}).json()["source"]["id"]
    assert_error(other_api.get(base(mind)), 404, "not_found")
    assert_error(other_api.get(f"{base(mind)}/{source_id}"), 404, "not_found")
    assert_error(other_api.delete(f"{base(mind)}/{source_id}"), 404, "not_found")
    assert_error(other_api.post(base(mind), {"type": "text", "content": "Intrusion."}), 404, "not_found")
    reader = KeyedClient(make_key(workspace, scopes=["minds:read"]))
    assert reader.get(base(mind)).status_code == 200
    body = assert_error(
        reader.post(base(mind), {"type": "text", "content": "No."}), 403, "insufficient_scope"
    )
    assert "minds:write" in body["message"]
    assert_error(reader.post(f"{base(mind)}/{source_id}/reprocess"), 403, "insufficient_scope")
    assert_error(reader.delete(f"{base(mind)}/{source_id}"), 403, "insufficient_scope")
    assert_error(KeyedClient(None).get(base(mind)), 401, "missing_api_key")
    assert Source.objects.count() == 1
