"""One JSON reader for every body we accept (the API and the public chat).

The standard library parses what it is given and leaves three traps for later code: nesting deep enough to raise
RecursionError (a 500, not a ValueError), NUL characters and unpaired surrogates, which PostgreSQL text columns
and UTF-8 encoders refuse further down, after work has been done. All three are refused here, before any view runs.
"""

import json
import re
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_JSON_DEPTH = 64
# A lone surrogate is all that can be left in this range: json.loads joins valid pairs into one code point.
UNSTORABLE_TEXT = re.compile("[\x00\ud800-\udfff]")


class BodyNotAccepted(ValueError):
    pass


def _path(parent: str, key: Any) -> str:
    return f"{parent}[{key}]" if isinstance(key, int) else (f"{parent}.{key}" if parent else str(key))


def _check_structure(data: Any) -> None:
    """Walks the parsed value without recursion: depth and text that could not be stored."""
    stack = [(data, "", 1)]
    while stack:
        value, where, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise BodyNotAccepted(f"The JSON is nested deeper than {MAX_JSON_DEPTH} levels.")
        if isinstance(value, str):
            if UNSTORABLE_TEXT.search(value):
                raise BodyNotAccepted(
                    f"{where or 'The body'} contains a NUL character or an unpaired surrogate, "
                    "which text cannot hold."
                )
        elif isinstance(value, dict):
            for key, item in value.items():
                if UNSTORABLE_TEXT.search(key):
                    raise BodyNotAccepted("A field name contains a NUL character or an unpaired surrogate.")
                stack.append((item, _path(where, key), depth + 1))
        elif isinstance(value, list):
            stack.extend((item, _path(where, index), depth + 1) for index, item in enumerate(value))


def json_loads_checked(raw: bytes | str) -> Any:
    """Parses a request body; raises BodyNotAccepted with a readable reason."""
    try:
        data = json.loads(raw)
    except RecursionError as exc:
        raise BodyNotAccepted(f"The JSON is nested deeper than {MAX_JSON_DEPTH} levels.") from exc
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise BodyNotAccepted("The body is not valid JSON.") from exc
    _check_structure(data)
    return data


class CheckedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        try:
            return json_loads_checked(raw)
        except BodyNotAccepted as exc:
            raise ParseError(str(exc)) from exc


NUL_IN_URL = "The URL contains a NUL character."


def url_has_nul(request) -> bool:
    """PostgreSQL cannot compare text holding NUL, so a lookup by such a path or query value would raise."""
    return "\x00" in request.path or any("\x00" in k or "\x00" in v for k, v in request.GET.items())
