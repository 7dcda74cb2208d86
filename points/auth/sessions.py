"""Ending a user's sign-ins on the server: page sessions by epoch, bearer tokens by row.

A page session remembers the user's `session_epoch` from its sign-in and is honoured only
while the user still has that epoch; bumping the epoch ends every page session of the user,
on every device, even a copied cookie. Bearer tokens are rows: revoking marks them all.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from points.models import ApiToken, User


def end_page_sessions(session: Session, *, user: User) -> None:
    """End every page session of `user` (sign-out); bearer tokens stay valid."""
    session.execute(
        update(User).where(User.id == user.id).values(session_epoch=User.session_epoch + 1)
    )
    session.refresh(user, ["session_epoch"])


def revoke_all_sessions(session: Session, *, user: User, now: datetime) -> int:
    """End every page session and revoke every live bearer token of `user`.

    Used on sign-out everywhere, a password or PIN change or reset, and when an account is
    disabled. Returns how many tokens were revoked.
    """
    end_page_sessions(session, user=user)
    result = session.execute(
        update(ApiToken)
        .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


def session_is_current(user: User, epoch: object) -> bool:
    """Return True when a page session signed in under `epoch` is still honoured for `user`."""
    return isinstance(epoch, int) and not isinstance(epoch, bool) and epoch == user.session_epoch
