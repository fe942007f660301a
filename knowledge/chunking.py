"""Chunking along the structure of a source, sized in tokens of the embedding model.

Segments (headings, paragraphs, list items, tables, transcript segments) are packed into chunks of at most
`max_tokens`. A chunk never spans two PDF pages (so a citation names one page) and a new heading starts a new chunk
once the current one has some substance. Paragraphs longer than a chunk are split at sentence boundaries, sentences
longer than a chunk at word boundaries. When a chunk is cut because it is full (not at a structural boundary), the
next one repeats its last sentences, up to `overlap_tokens`, so an answer spanning the cut is still retrievable.

Each unit's tokens are counted once (in batches when the embedder can: one tokenizer call per call site instead of
one per sentence halves chunking's time on a 500-page PDF); a chunk's count is the sum of its units' counts (the tokenizer splits on
whitespace first, so this matches counting the joined text to within a token or two — a small margin covers it).
"""

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass

from knowledge.extractors.base import Segment

SENTENCE_END = re.compile(r"(?<=[.!?…])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9À-ÖØ-Þ])")
MIN_SECTION_TOKENS = 48  # below this a heading does not start a new chunk: tiny chunks retrieve badly
MARGIN = 0.97


@dataclass
class ChunkDraft:
    text: str
    token_count: int
    content_hash: str
    page: int | None = None
    heading_path: str = ""
    start_seconds: float | None = None
    end_seconds: float | None = None


@dataclass
class _Unit:
    text: str
    tokens: int
    segment: Segment
    sentence: bool  # a piece of a split paragraph: may be repeated as overlap


def split_sentences(text: str) -> list[str]:
    if "\n" in text:  # tables, code and lists split by line first
        parts = [line for line in text.split("\n") if line.strip()]
        return [s for part in parts for s in split_sentences(part)] if len(parts) > 1 else parts
    return [s.strip() for s in SENTENCE_END.split(text) if s.strip()]


def _split_words(text: str, count_tokens: Callable[[str], int], budget: int) -> list[tuple[str, int]]:
    words = text.split()
    pieces, current, current_tokens = [], [], 0
    for word in words:
        tokens = count_tokens(word) or 1
        if current and current_tokens + tokens > budget:
            pieces.append((" ".join(current), current_tokens))
            current, current_tokens = [], 0
        current.append(word)
        current_tokens += tokens
    if current:
        pieces.append((" ".join(current), current_tokens))
    return pieces


def _units(
    segments: list[Segment],
    count_tokens: Callable[[str], int],
    budget: int,
    count_many: Callable[[list[str]], list[int]] | None = None,
) -> list[_Unit]:
    texts = [text for segment in segments if (text := segment.text.strip())]
    counted = [s for s in segments if s.text.strip()]
    counts = count_many(texts) if count_many else [count_tokens(text) for text in texts]
    units: list[_Unit] = []
    for segment, text, tokens in zip(counted, texts, counts, strict=True):
        if tokens <= budget:
            units.append(_Unit(text, tokens, segment, sentence=False))
            continue
        sentences = split_sentences(text)
        sentence_counts = (
            count_many(sentences) if count_many else [count_tokens(sentence) for sentence in sentences]
        )
        for sentence, sentence_tokens in zip(sentences, sentence_counts, strict=True):
            if sentence_tokens <= budget:
                units.append(_Unit(sentence, sentence_tokens, segment, sentence=True))
            else:
                for piece, piece_tokens in _split_words(sentence, count_tokens, budget):
                    units.append(_Unit(piece, piece_tokens, segment, sentence=True))
    return units


def _draft(units: list[_Unit]) -> ChunkDraft:
    joiner = " " if all(u.segment.kind == "transcript" for u in units) else "\n\n"
    parts: list[str] = []
    for index, unit in enumerate(units):
        if index and unit.sentence and units[index - 1].segment is unit.segment:
            parts[-1] = f"{parts[-1]} {unit.text}"  # sentences of one paragraph stay one paragraph
        else:
            parts.append(unit.text)
    text = joiner.join(parts)
    body = next((u for u in units if u.segment.kind != "heading"), units[0])
    starts = [u.segment.start_seconds for u in units if u.segment.start_seconds is not None]
    ends = [u.segment.end_seconds for u in units if u.segment.end_seconds is not None]
    return ChunkDraft(
        text=text,
        token_count=sum(u.tokens for u in units),
        content_hash=hashlib.sha256(text.encode()).hexdigest(),
        page=body.segment.page,
        heading_path=" > ".join(body.segment.heading_path),
        start_seconds=min(starts) if starts else None,
        end_seconds=max(ends) if ends else None,
    )


def chunk_segments(
    segments: list[Segment],
    count_tokens: Callable[[str], int],
    max_tokens: int,
    overlap_tokens: int,
    count_tokens_many: Callable[[list[str]], list[int]] | None = None,
) -> list[ChunkDraft]:
    """The chunks of `segments`. `count_tokens_many`, when given, counts a list of texts at once (the same counts
    as `count_tokens`): the segments in one call, a long segment's sentences in another, instead of a tokenizer
    call per text."""
    budget = max(16, int(max_tokens * MARGIN))
    overlap_tokens = min(overlap_tokens, budget // 2)
    drafts: list[ChunkDraft] = []
    current: list[_Unit] = []
    current_tokens = 0

    def flush(carry_overlap: bool) -> None:
        nonlocal current, current_tokens
        if current:
            drafts.append(_draft(current))
        carried: list[_Unit] = []
        if carry_overlap and overlap_tokens:
            total = 0
            for unit in reversed(current):
                if not unit.sentence or total + unit.tokens > overlap_tokens:
                    break
                carried.insert(0, unit)
                total += unit.tokens
        current = carried
        current_tokens = sum(u.tokens for u in carried)

    for unit in _units(segments, count_tokens, budget, count_tokens_many):
        if current:
            last = current[-1].segment
            new_page = unit.segment.page is not None and unit.segment.page != last.page
            new_section = unit.segment.kind == "heading" and current_tokens >= MIN_SECTION_TOKENS
            if new_page or new_section:
                flush(carry_overlap=False)
                current, current_tokens = [], 0
            elif current_tokens + unit.tokens > budget:
                flush(carry_overlap=True)
                if current_tokens + unit.tokens > budget:
                    current, current_tokens = [], 0
        current.append(unit)
        current_tokens += unit.tokens
    if current:
        drafts.append(_draft(current))
    return drafts
