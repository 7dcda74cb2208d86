"""Credentials: password and PIN hashing, which PINs are refused, ending a user's sessions
server-side, and the per-account sign-in lockout.

Other features use the names below (this package's public API)."""

from points.auth.lockout import (
    LOCK_MINUTES,
    MAX_FAILURES,
    check_not_locked,
    record_failed_signin,
    record_good_signin,
    unlock,
)
from points.auth.passwords import check_password, generate_password, hash_password
from points.auth.pins import PIN_RE, check_new_pin, weak_pin_reason
from points.auth.sessions import end_page_sessions, revoke_all_sessions, session_is_current

__all__ = [
    "LOCK_MINUTES",
    "MAX_FAILURES",
    "PIN_RE",
    "check_new_pin",
    "check_not_locked",
    "check_password",
    "end_page_sessions",
    "generate_password",
    "hash_password",
    "record_failed_signin",
    "record_good_signin",
    "revoke_all_sessions",
    "session_is_current",
    "unlock",
    "weak_pin_reason",
]
