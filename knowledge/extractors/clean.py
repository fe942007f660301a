"""Characters no stored text may hold, removed in one place: every extractor's output passes through `clean_extracted`
before it is chunked (knowledge/pipeline.py), whichever parser produced it.

PostgreSQL text and jsonb refuse NUL (0x00); a lone surrogate (U+D800–U+DFFF, from a broken ToUnicode map, UTF-16
garbage or a JSON escape) cannot be encoded as UTF-8, so neither the database driver nor the tokenizer takes it.
Other C0 and C1 controls are not text either: they are dropped, except the whitespace ones (tab, newline, carriage
return kept; vertical tab and form feed, which separate lines and pages, become newlines).
"""

import re
from dataclasses import replace

from knowledge.extractors.base import Extracted

# NUL and the other C0 controls but \t \n \r, DEL and the C1 controls, any surrogate code point.
UNWANTED = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
SURROGATE_PAIR = re.compile("[\ud800-\udbff][\udc00-\udfff]")
LINE_BREAKING = "\x0b\x0c\x85"  # vertical tab, form feed, next line: become newlines


def _join_pair(match: re.Match) -> str:
    high, low = (ord(ch) for ch in match.group(0))
    return chr(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))


def clean_text(text: str) -> str:
    """`text` without the characters above; a high and low surrogate in sequence are the character they encode."""
    if not UNWANTED.search(text):
        return text  # the common case: one scan, no copy
    text = SURROGATE_PAIR.sub(_join_pair, text)
    for char in LINE_BREAKING:
        text = text.replace(char, "\n")
    return UNWANTED.sub("", text)


def clean_value(value):
    """Strings cleaned inside metadata values (dicts, lists and tuples walked); other values as they are."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(k) if isinstance(k, str) else k: clean_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(clean_value(v) for v in value)
    return value


def clean_extracted(extracted: Extracted) -> Extracted:
    """A copy of `extracted` whose segments, headings, title and metadata hold only storable text; a segment left
    empty by the cleaning is dropped."""
    segments = []
    for segment in extracted.segments:
        text = clean_text(segment.text)
        if not text.strip():
            continue
        headings = tuple(clean_text(heading) for heading in segment.heading_path)
        segments.append(replace(segment, text=text, heading_path=headings))
    return replace(
        extracted,
        segments=segments,
        title=clean_text(extracted.title),
        metadata=clean_value(extracted.metadata),
    )
