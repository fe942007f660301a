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
