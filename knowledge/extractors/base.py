"""What every extractor returns: structured segments of text with their positions.

Chunking works on segments (headings, paragraphs, list items, tables, transcript segments), so the
structure of the source survives into the chunks and their citations.
"""

from dataclasses import dataclass, field


@dataclass
class Segment:
    text: str
    kind: str = "paragraph"  # heading | paragraph | list | table | code | transcript
    page: int | None = None  # 1-based PDF page
    heading_path: tuple[str, ...] = ()  # enclosing headings, outermost first
    start_seconds: float | None = None  # audio / video position
    end_seconds: float | None = None


@dataclass
class Extracted:
    segments: list[Segment]
    title: str = ""
    page_count: int | None = None
    duration_seconds: float | None = None
    metadata: dict = field(default_factory=dict)

    @property
    def text(self) -> str:
        return "\n\n".join(segment.text for segment in self.segments)


class ExtractionError(Exception):
    """A permanent failure of a source, with a stable code and a message a user can act on.

    Codes: empty_content, pdf_encrypted, no_text_layer, corrupt_file, unsupported_file_type, file_too_large,
    url_not_allowed, fetch_failed, no_captions, transcription_failed, feed_invalid.
    """

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class TransientError(Exception):
    """A failure worth retrying (network timeout, 5xx, connection reset)."""
