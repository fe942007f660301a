"""YouTube sources through the real pipeline code, with YouTube itself replaced at the library boundary
(youtube-transcript-api's fetch and yt-dlp's downloader; no network here). Runs in-process: the tasks are run
eagerly (`apply`) and what they queue after the commit is captured, so no worker can race for the source."""

import shutil
from pathlib import Path

import pytest
import yt_dlp
from youtube_transcript_api import FetchedTranscript, FetchedTranscriptSnippet, YouTubeTranscriptApi
from youtube_transcript_api._errors import TranscriptsDisabled

from knowledge import tasks
from knowledge.models import Chunk, Source
from minds.models import Mind
from tests.realfiles import fixture

pytestmark = pytest.mark.django_db


@pytest.fixture
def source(workspace):
    mind = Mind.objects.create(workspace=workspace, name="Viewer", slug="viewer-yt")
    return Source.objects.create(
        workspace=workspace,
        mind=mind,
        type="youtube",
        name="Talk",
        youtube_video_id="dQw4w9WgXcQ",
        url="https://www.youtube.com/watch?v=dQw4w9WgXcQ",
    )


def test_captions_first_with_timestamps_for_citations(
    source, monkeypatch, django_capture_on_commit_callbacks
):
    lines = [f"In part {i} the speaker explains how tides follow the moon." for i in range(30)]
    snippets = [FetchedTranscriptSnippet(text=t, start=i * 4.0, duration=4.0) for i, t in enumerate(lines)]
    monkeypatch.setattr(
        YouTubeTranscriptApi,
        "fetch",
        lambda self, video_id, languages=("en",), preserve_formatting=False: FetchedTranscript(
            snippets, video_id, "English", "en", False
        ),
    )
    with django_capture_on_commit_callbacks():
        assert tasks.source_process.apply((source.id,)).get() == "ready"
    source.refresh_from_db()
    chunks = list(Chunk.objects.filter(source=source).order_by("ordinal"))
    assert source.status == "ready" and source.metadata["captions"] == "youtube" and chunks
    assert chunks[0].start_seconds == 0.0
    assert all(c.url == f"https://youtu.be/dQw4w9WgXcQ?t={int(c.start_seconds)}" for c in chunks)


def test_without_captions_the_audio_is_downloaded_and_transcribed(
    source, monkeypatch, django_capture_on_commit_callbacks
):
    def no_captions(self, video_id, **kwargs):
        raise TranscriptsDisabled(video_id)

    class FakeDownloader:
        def __init__(self, options):
            self.target = Path(options["outtmpl"].replace("%(id)s.%(ext)s", "dQw4w9WgXcQ.wav"))

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def extract_info(self, url, download=True):
            shutil.copy(fixture("audio/sense_and_sensibility_01_austen_64kb-0870.wav"), self.target)
            return {"id": "dQw4w9WgXcQ", "ext": "wav"}

        def prepare_filename(self, info):
            return str(self.target)

    monkeypatch.setattr(YouTubeTranscriptApi, "fetch", no_captions)
    monkeypatch.setattr(yt_dlp, "YoutubeDL", FakeDownloader)
    with django_capture_on_commit_callbacks() as callbacks:
        assert tasks.source_process.apply((source.id,)).get() == "transcribing"
    assert len(callbacks) == 1  # the transcription task is queued after the commit
    source.refresh_from_db()
    assert source.status == "transcribing" and source.transcribing_started_at is not None
    with django_capture_on_commit_callbacks():
        claimed_at = source.processing_started_at.isoformat()
        assert tasks.source_transcribe.apply((source.id, claimed_at)).get() == "ready"
    source.refresh_from_db()
    text = " ".join(Chunk.objects.filter(source=source).values_list("content", flat=True)).lower()
    assert source.status == "ready" and "dashwood" in text and source.duration_seconds > 5
