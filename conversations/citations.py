"""`[n]` citation markers: kept when they point at a retrieved passage, removed (with their brackets) otherwise.

Works on a stream: MarkerFilter holds back only the few characters that might be the start of a marker, so the
text sent token by token is exactly the text saved.
"""

import re
from collections.abc import Callable, Iterator

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
