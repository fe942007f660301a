"""`[n]` citation markers: kept when they point at a retrieved passage, removed (with their brackets) otherwise;
and the Citation each kept number stands for.

Works on a stream: MarkerFilter holds back only the few characters that might be the start of a marker, so the
text sent token by token is exactly the text saved.
"""

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from knowledge.search import SearchHit

SNIPPET_CHARS = 240
MARKER = re.compile(r"\[(\s*\d+\s*(?:[,;]\s*\d+\s*)*)\]")
PARTIAL = re.compile(r"\[[\d,;\s]*$")
MAX_MARKER = 24


def numbers_in(marker_body: str) -> list[int]:
    return [int(n) for n in re.findall(r"\d+", marker_body)]


def rewrite_marker(body: str, valid: Callable[[int], bool]) -> str:
    kept = [n for n in numbers_in(body) if valid(n)]
    return "".join(f"[{n}]" for n in dict.fromkeys(kept))


class MarkerFilter:
    """Feed it pieces of text; it yields cleaned pieces and reports each valid number the first time it appears.

    Trailing spaces are held back until the next text, so a dropped marker leaves no stray space before the
    punctuation that follows it ("tall [9]." becomes "tall.", not "tall .").
    """

    def __init__(self, valid: Callable[[int], bool], on_cited: Callable[[int], None]):
        self.valid = valid
        self.on_cited = on_cited
        self.buffer = ""
        self.held = ""
        self.just_dropped = False
        self.out: list[str] = []

    def _push(self, text: str) -> None:
        if not text:
            return
        if self.just_dropped and self.held and (text[0] in ".,;:!?" or text[0].isspace()):
            self.held = ""
        self.just_dropped = False
        combined = self.held + text
        kept = combined.rstrip(" \t")
        self.held = combined[len(kept) :]
        self.out.append(kept)

    def _marker(self, body: str) -> None:
        rewritten = rewrite_marker(body, self.valid)
        if not rewritten:
            self.just_dropped = True
            return
        for n in numbers_in(rewritten):
            self.on_cited(n)
        self._push(rewritten)

    def _drain(self) -> Iterator[str]:
        text = "".join(self.out)
        self.out = []
        if text:
            yield text

    def feed(self, piece: str) -> Iterator[str]:
        self.buffer += piece
        while self.buffer:
            start = self.buffer.find("[")
            if start == -1:
                self._push(self.buffer)
                self.buffer = ""
                break
            self._push(self.buffer[:start])
            rest = self.buffer[start:]
            match = MARKER.match(rest)
            if match:
                self._marker(match.group(1))
                self.buffer = rest[match.end() :]
                continue
            if PARTIAL.match(rest) and len(rest) < MAX_MARKER:
                self.buffer = rest  # maybe a marker still arriving: hold it back
                break
            self._push("[")
            self.buffer = rest[1:]
        yield from self._drain()

    def flush(self) -> Iterator[str]:
        if self.buffer:
            self._push(self.buffer)
            self.buffer = ""
        yield from self._drain()
        self.held = ""


TOOL_SOURCE_TYPE = "tool"


@dataclass(frozen=True)
class Citation:
    """The passage an answer cites as [index]: where it comes from and what it says. A tool's result the answer
    cites is one too (`source_type` "tool", `source_name` the tool's name, and the call's arguments)."""

    index: int
    source_id: str
    source_name: str
    source_type: str
    chunk_id: str
    snippet: str
    url: str | None
    page: int | None
    start_seconds: float | None
    score: float
    tool_arguments: dict | None = field(default=None, compare=False)

    @classmethod
    def of_tool(cls, index: int, *, tool_id: str, name: str, arguments: str, content: str) -> "Citation":
        """A tool's result, cited as [index]: no chunk, page or URL; the snippet is the start of what it said."""
        try:
            parsed = json.loads(arguments or "{}")
        except ValueError:
            parsed = {"raw": arguments}
        snippet = " ".join(content.split())
        return cls(
            index=index,
            source_id=tool_id,
            source_name=name,
            source_type=TOOL_SOURCE_TYPE,
            chunk_id="",
            snippet=snippet[:SNIPPET_CHARS] + ("…" if len(snippet) > SNIPPET_CHARS else ""),
            url=None,
            page=None,
            start_seconds=None,
            score=0.0,
            tool_arguments=parsed if isinstance(parsed, dict) else {"value": parsed},
        )

    @classmethod
    def of_hit(cls, index: int, hit: SearchHit) -> "Citation":
        chunk = hit.chunk
        source = chunk.source
        url = chunk.url or source.url or None
        if source.type == "youtube" and source.youtube_video_id:
            url = f"https://youtu.be/{source.youtube_video_id}" + (
                f"?t={int(chunk.start_seconds)}" if chunk.start_seconds is not None else ""
            )
        snippet = " ".join(chunk.content.split())
        return cls(
            index=index,
            source_id=source.id,
            source_name=source.name,
            source_type=source.type,
            chunk_id=chunk.id,
            snippet=snippet[:SNIPPET_CHARS] + ("…" if len(snippet) > SNIPPET_CHARS else ""),
            url=url,
            page=chunk.page,
            start_seconds=chunk.start_seconds,
            score=round(hit.score, 4),
        )

    def as_json(self) -> dict:
        """The form kept in Message.citations. Every surface sends citations in this form too (the stored ones
        come back unchanged in conversation details), so there is one shape to document, not one per surface."""
        return {
            "index": self.index,
            "sourceId": self.source_id,
            "sourceName": self.source_name,
            "sourceType": self.source_type,
            "chunkId": self.chunk_id,
            "snippet": self.snippet,
            "url": self.url,
            "page": self.page,
            "startSeconds": self.start_seconds,
            "score": self.score,
            # Only a tool's citation has these (the passages' JSON is unchanged).
            **(
                {"toolName": self.source_name, "toolArguments": self.tool_arguments}
                if self.source_type == TOOL_SOURCE_TYPE
                else {}
            ),
        }
