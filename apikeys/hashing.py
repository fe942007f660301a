"""Key generation and hashing. Keys carry 190 bits of randomness, so a fast hash is safe to store."""

import hashlib
import secrets

from apikeys.models import KEY_PREFIX

KEY_RANDOM_LENGTH = 32


def generate_plaintext_key() -> str:
    # token_urlsafe(24) gives exactly 32 url-safe characters.
    return KEY_PREFIX + secrets.token_urlsafe(24)[:KEY_RANDOM_LENGTH]


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def looks_like_key(value: str) -> bool:
    return value.startswith(KEY_PREFIX) and len(value) == len(KEY_PREFIX) + KEY_RANDOM_LENGTH
