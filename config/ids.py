"""Opaque, type-prefixed identifiers (`mind_…`, `src_…`) as the API contract asks."""

import secrets
import string

_ALPHABET = string.ascii_letters + string.digits


def make_id(prefix: str, length: int = 16) -> str:
    return f"{prefix}_" + "".join(secrets.choice(_ALPHABET) for _ in range(length))
