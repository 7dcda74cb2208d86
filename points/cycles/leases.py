"""Named, expiring leases in the database: which process may act as the scheduler right now."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import case, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from points.models import Lease


def take_lease(session: Session, *, name: str, holder: str, now: datetime, seconds: int) -> bool:
    """Take or renew the lease `name` for `seconds`; False while another holder's is unexpired.

    One conditional UPDATE (ours, or expired) and else one INSERT that does nothing on conflict:
    both are atomic in the database, so two servers racing for it never both get it.
    """
    expires = now + timedelta(seconds=seconds)
    renewed = session.execute(
        update(Lease)
        .where(Lease.name == name, or_(Lease.holder == holder, Lease.expires_at <= now))
        .values(
            holder=holder,
            expires_at=expires,
            acquired_at=case((Lease.holder == holder, Lease.acquired_at), else_=now),
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if renewed:
        return True
    dialect = session.get_bind().dialect.name
    ins = (
        (postgresql if dialect == "postgresql" else sqlite)
        .insert(Lease.__table__)
        .values(name=name, holder=holder, acquired_at=now, expires_at=expires)
    )
    stmt = ins.on_conflict_do_nothing(index_elements=["name"]).returning(Lease.__table__.c.name)
    return session.connection().execute(stmt).scalar_one_or_none() is not None


def release_lease(session: Session, *, name: str, holder: str) -> None:
    """Give the lease up now if `holder` has it, so another process need not wait it out."""
    session.execute(Lease.__table__.delete().where(Lease.name == name, Lease.holder == holder))
