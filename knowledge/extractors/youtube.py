"""YouTube: the video id from any of the link forms, its captions with timestamps, or its audio for the transcriber."""

import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from django.conf import settings

from knowledge.errors import ExtractionError, TransientError
from knowledge.extractors.base import Extracted, Segment

VIDEO_ID = re.compile(r"^[A-Za-z0-9_-]{11}$")
HOSTS = {
    "youtube.com",
    "www.youtube.com",
    "m.youtube.com",
    "music.youtube.com",
    "youtube-nocookie.com",
    "www.youtube-nocookie.com",
}


def video_id(url: str) -> str | None:
    """watch?v=, youtu.be/, /embed/, /shorts/ (and /live/, /v/) on youtube.com, m., www., nocookie."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme not in ("http", "https"):
        return None
    host = (parts.hostname or "").lower()
    candidate = None
    if host == "youtu.be":
        candidate = parts.path.lstrip("/").split("/")[0]
    elif host in HOSTS:
        if parts.path == "/watch":
            candidate = (parse_qs(parts.query).get("v") or [""])[0]
        else:
            match = re.match(r"^/(embed|shorts|live|v)/([^/?#]+)", parts.path)
            candidate = match.group(2) if match else None
    return candidate if candidate and VIDEO_ID.match(candidate) else None


def fetch_captions(video: str) -> Extracted | None:
    """Captions (manual or generated) with timestamps; None when the video has none."""
    from youtube_transcript_api import YouTubeTranscriptApi
    from youtube_transcript_api._errors import (
        CouldNotRetrieveTranscript,
        NoTranscriptFound,
        TranscriptsDisabled,
        VideoUnavailable,
    )

    try:
        transcript = YouTubeTranscriptApi().fetch(video, languages=["en", "en-US", "en-GB"])
    except (NoTranscriptFound, TranscriptsDisabled):
        return None
    except VideoUnavailable as exc:
        raise ExtractionError(
            "fetch_failed", "The YouTube video is unavailable (private, removed or region-locked)."
        ) from exc
    except CouldNotRetrieveTranscript:
        return None
    except Exception as exc:  # network errors surface from requests
        raise TransientError(f"YouTube could not be reached: {exc.__class__.__name__}") from exc
    segments = [
        Segment(
            " ".join(s.text.split()),
            kind="transcript",
            start_seconds=float(s.start),
            end_seconds=float(s.start + s.duration),
        )
        for s in transcript
        if s.text.strip()
    ]
    if not segments:
        return None
    duration = max(s.end_seconds or 0 for s in segments)
    return Extracted(segments=segments, duration_seconds=duration, metadata={"captions": "youtube"})


def download_audio(video: str, workdir: str) -> str:
    """The best audio stream as it is (no ffmpeg post-processing), size-capped."""
    import yt_dlp

    options = {
        "format": "bestaudio/best",
        "outtmpl": str(Path(workdir) / "%(id)s.%(ext)s"),
        "quiet": True,
        "no_warnings": True,
        "noplaylist": True,
        "max_filesize": settings.MAX_AUDIO_BYTES,
        "socket_timeout": 30,
    }
    try:
        with yt_dlp.YoutubeDL(options) as ydl:
            info = ydl.extract_info(f"https://www.youtube.com/watch?v={video}", download=True)
            path = ydl.prepare_filename(info)
    except yt_dlp.utils.DownloadError as exc:
        message = str(exc).lower()
        if "unavailable" in message or "private" in message or "removed" in message:
            raise ExtractionError("fetch_failed", "The YouTube video is unavailable.") from exc
        raise TransientError("The YouTube audio could not be downloaded.") from exc
    if not Path(path).exists():
        raise ExtractionError(
            "fetch_failed", "The YouTube audio could not be downloaded (too large or not found)."
        )
    return path
