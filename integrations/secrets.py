"""Keys for encrypting secrets at rest (a document's password, a tool's secret headers), derived from SECRET_KEY.

Each use names a purpose label; HKDF-SHA256 derives a distinct 32-byte key per label, so no two uses share a key
and the raw SECRET_KEY (which also signs sessions and tokens) is never an encryption key itself. The values are
sealed with Fernet (AES-128-CBC + HMAC-SHA256, authenticated: a tampered ciphertext fails instead of decrypting to
garbage). Rotating SECRET_KEY makes everything sealed under the old key unreadable.
"""

import base64

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings


def fernet_for(purpose: bytes) -> Fernet:
    """The Fernet whose key is derived from SECRET_KEY under `purpose` (e.g. b"minds.tools.secret-headers.v1")."""
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(
        settings.SECRET_KEY.encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))
