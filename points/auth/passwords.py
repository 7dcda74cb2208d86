"""Password and PIN hashing with the standard library's scrypt (memory-hard, salted)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

# n=2**14, r=8, p=1: ~16 MB and ~50 ms per hash on a cheap laptop; stored in the hash string so
# that the parameters can be raised later without invalidating existing hashes.
_N, _R, _P = 2**14, 8, 1


def hash_password(password: str) -> str:
    """Return a salted scrypt hash string for `password`."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def check_password(stored: str | None, password: str) -> bool:
    """Return True when `password` matches the stored hash (constant-time comparison)."""
    if not stored:
        return False
    try:
        algo, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if algo != "scrypt":
        return False
    expected = base64.b64decode(digest)
    actual = hashlib.scrypt(
        password.encode(),
        salt=base64.b64decode(salt),
        n=int(n),
        r=int(r),
        p=int(p),
        dklen=len(expected),
    )
    return hmac.compare_digest(actual, expected)


def generate_password(length: int = 12) -> str:
    """Return a random password without look-alike characters (for printing on paper)."""
    alphabet = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()
