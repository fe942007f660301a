"""What a tool's answer becomes for the model: bounded text."""

import json

CUT_MARK = "\n[… cut: {total} characters in all]"


def cut(text: str, max_chars: int) -> str:
    """`text` within `max_chars` characters, the mark included, saying that the rest was cut."""
    if len(text) <= max_chars:
        return text
    mark = CUT_MARK.format(total=len(text))
    if max_chars <= len(mark):
        return text[:max_chars]
    return text[: max_chars - len(mark)] + mark


def json_text(value) -> str:
    """JSON for the model: readable (one level of indent) without the padding of a wide indent."""
    return json.dumps(value, ensure_ascii=False, indent=1, separators=(",", ": "))
