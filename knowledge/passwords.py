"""A document's password at rest: encrypted, so a copy of the database alone does not give it away.

The worker must read the password back to open the PDF (at every reprocess), so it cannot be hashed like an API
key: it is encrypted with Fernet (AES-128-CBC + HMAC-SHA256, authenticated, so a tampered row fails instead of
decrypting to garbage). The key is derived from SECRET_KEY with HKDF-SHA256 under a purpose label: no new setting
to deploy, and the raw SECRET_KEY (which also signs sessions and tokens) is never used as an encryption key itself.
Rotating SECRET_KEY makes stored passwords unreadable; such a source fails `pdf_encrypted` until it is added again
with its password.
"""

from cryptography.fernet import Fernet, InvalidToken

from integrations.secrets import fernet_for
from knowledge.errors import ExtractionError

# Changing the label changes the key: it names what the key is for, so no other use of SECRET_KEY shares it.
_PURPOSE = b"minds.knowledge.document-password.v1"

MAX_PASSWORD_CHARS = 1024


def _fernet() -> Fernet:
    return fernet_for(_PURPOSE)


def password_encrypt(password: str) -> str:
    """The ciphertext to store for `password` (a new random IV each time, so equal passwords do not look equal)."""
    return _fernet().encrypt(password.encode("utf-8")).decode("ascii")


def password_decrypt(ciphertext: str) -> str | None:
    """The password back, for the worker opening the document; None when none is stored. A ciphertext the current
    key does not open (SECRET_KEY changed, or the row was altered) fails the source: it cannot be opened."""
    if not ciphertext:
        return None
    try:
        return _fernet().decrypt(ciphertext.encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeError) as exc:
        raise ExtractionError(
            "pdf_encrypted",
            "The stored password of this document can no longer be read; add the source again with its password.",
        ) from exc
