"""Secret header values at rest (HTTP tools, MCP servers, the context endpoint): encrypted, never returned.

The values ({header name: value}, as JSON) are sealed with Fernet under a key derived from SECRET_KEY for this
purpose alone (integrations/secrets.py, the scheme of a document's password in knowledge/passwords.py). Only the
names are kept in clear (`secret_header_names`), so the API and the admin can say which headers are set without
ever reading a value back. A row whose ciphertext the current key does not open (SECRET_KEY rotated, or the row
altered) raises SecretsUnreadable: a tool call then fails with an outcome that asks the owner to set the headers
again, and nothing is sent without them.
"""

import json
import re

from cryptography.fernet import InvalidToken

from config.api.errors import ValidationFailed
from integrations.secrets import fernet_for

# Changing the label changes the key: it names what the key is for.
_PURPOSE = b"minds.tools.secret-headers.v1"

MAX_HEADERS = 20
MAX_VALUE_CHARS = 4096
# RFC 9110 token characters.
HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,100}$")
# Set by the client itself: a tool may not forge the request's framing or its target.
RESERVED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection", "te", "upgrade"})


class SecretsUnreadable(Exception):
    """The stored ciphertext cannot be opened with the current key."""


def headers_encrypt(headers: dict[str, str]) -> str:
    """The ciphertext to store for `headers` ("" when there are none)."""
    if not headers:
        return ""
    plain = json.dumps(headers, separators=(",", ":"), sort_keys=True).encode("utf-8")
    return fernet_for(_PURPOSE).encrypt(plain).decode("ascii")


def headers_decrypt(ciphertext: str) -> dict[str, str]:
    """The headers back, to send with a call; {} when none are stored. Raises SecretsUnreadable."""
    if not ciphertext:
        return {}
    try:
        plain = fernet_for(_PURPOSE).decrypt(ciphertext.encode("ascii"))
        value = json.loads(plain.decode("utf-8"))
    except (InvalidToken, UnicodeError, ValueError) as exc:
        raise SecretsUnreadable("The stored secret headers cannot be read with the current key.") from exc
    if not isinstance(value, dict):
        raise SecretsUnreadable("The stored secret headers are not an object.")
    return {str(k): str(v) for k, v in value.items()}


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, details={"fields": {field: [message]}})


def validate_headers(headers, *, field: str = "headers") -> dict[str, str]:
    """{name: value} as a client sent it, checked: token names, no line breaks in values, a bounded size. The
    messages name the offending header, never its value."""
    if not isinstance(headers, dict):
        raise _invalid(field, "Must be an object of header names to values.")
    if len(headers) > MAX_HEADERS:
        raise _invalid(field, f"At most {MAX_HEADERS} headers.")
    checked: dict[str, str] = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not HEADER_NAME.match(name):
            raise _invalid(field, f"{str(name)[:100]!r} is not a valid header name.")
        if name.lower() in RESERVED_HEADERS:
            raise _invalid(field, f"The header {name} is set by the client and cannot be set.")
        if not isinstance(value, str):
            raise _invalid(field, f"The value of {name} must be a string.")
        if len(value) > MAX_VALUE_CHARS or any(c in value for c in "\r\n\0"):
            raise _invalid(
                field, f"The value of {name} must be one line of at most {MAX_VALUE_CHARS} characters."
            )
        if any(existing.lower() == name.lower() for existing in checked):
            raise _invalid(field, f"The header {name} is given twice.")
        checked[name] = value
    return checked


def secret_headers_set(row, headers: dict[str, str]) -> None:
    """Stores `headers` (already validated) on a Tool, McpServer or ContextEndpoint; {} removes them all."""
    row.secret_headers_ciphertext = headers_encrypt(headers)
    row.secret_header_names = sorted(headers)


def secret_headers_of(row) -> dict[str, str]:
    """The secret headers of a row, decrypted to send; {} when none. Raises SecretsUnreadable."""
    return headers_decrypt(row.secret_headers_ciphertext)
