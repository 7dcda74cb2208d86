"""Per-account sign-in lockout, kept in the database so every worker and server agrees.

Each wrong password or PIN adds one to the account's failure count with a single UPDATE
(no read-modify-write race between workers); at MAX_FAILURES the account is locked for
LOCK_MINUTES and the count starts again. A correct sign-in clears the count. A locked
account refuses even the right secret until the lock ends or an admin unlocks it, so a
guesser gets MAX_FAILURES tries per LOCK_MINUTES whatever the number of IPs or workers.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from points.errors import AccountLockedError
from points.models import User

MAX_FAILURES = 5
LOCK_MINUTES = 15


def check_not_locked(user: User, *, now: datetime) -> None:
    """Raise AccountLockedError while `user` is locked out."""
    if user.locked_until is not None and user.locked_until > now:
        minutes = max(1, math.ceil((user.locked_until - now).total_seconds() / 60))
        raise AccountLockedError(minutes, user_id=user.id)


def record_failed_signin(
    session: Session,
    *,
    user: User,
    now: datetime,
    max_failures: int = MAX_FAILURES,
    lock_minutes: int = LOCK_MINUTES,
) -> bool:
    """Count a wrong secret for `user`; lock the account at `max_failures`. Return True if
    this failure locked it."""
    session.execute(
        update(User)
        .where(User.id == user.id)
        .values(failed_signins=User.failed_signins + 1)
        .execution_options(synchronize_session=False)
    )
    # Only the update that finds the count at the limit locks: concurrent failures in other
    # workers each add one, and one of them starts the lock.
    locked = session.execute(
        update(User)
        .where(User.id == user.id, User.failed_signins >= max_failures)
        .values(failed_signins=0, locked_until=now + timedelta(minutes=lock_minutes))
        .execution_options(synchronize_session=False)
    ).rowcount
    session.refresh(user, ["failed_signins", "locked_until"])
    return bool(locked)


def record_good_signin(session: Session, *, user: User) -> None:
    """Clear the failure count after a correct sign-in."""
    if user.failed_signins or user.locked_until is not None:
        user.failed_signins = 0
        user.locked_until = None
        session.flush()


def unlock(session: Session, *, user: User) -> bool:
    """Lift a lockout and clear the failure count (an admin's unlock). Return True when the
    account was locked or had failures."""
    was = bool(user.failed_signins) or user.locked_until is not None
    user.failed_signins = 0
    user.locked_until = None
    session.flush()
    return was
