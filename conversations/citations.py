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


def clean_text(text: str, valid: Callable[[int], bool]) -> str:
    cleaned = MARKER.sub(lambda m: rewrite_marker(m.group(1), valid), text)
    return re.sub(r"[ \t]+([.,;:!?])", r"\1", cleaned)


class MarkerFilter:
    """Feed it pieces of text; it yields cleaned pieces and reports each valid number the first time it appears."""

    def __init__(self, valid: Callable[[int], bool], on_cited: Callable[[int], None]):
        self.valid = valid
        self.on_cited = on_cited
        self.buffer = ""

    def _emit_marker(self, body: str) -> str:
        out = rewrite_marker(body, self.valid)
        for n in numbers_in(out):
            self.on_cited(n)
        return out

    def feed(self, piece: str) -> Iterator[str]:
        self.buffer += piece
        out = []
        while self.buffer:
            start = self.buffer.find("[")
            if start == -1:
                out.append(self.buffer)
                self.buffer = ""
                break
            out.append(self.buffer[:start])
            rest = self.buffer[start:]
            match = MARKER.match(rest)
            if match:
                out.append(self._emit_marker(match.group(1)))
                self.buffer = rest[match.end() :]
                continue
            if PARTIAL.match(rest) and len(rest) < MAX_MARKER:
                self.buffer = rest  # maybe a marker still arriving: hold it back
                break
            out.append("[")
            self.buffer = rest[1:]
        text = "".join(out)
        if text:
            yield text

    def flush(self) -> Iterator[str]:
        if self.buffer:
            text, self.buffer = self.buffer, ""
            yield text
