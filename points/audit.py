"""The audit log: every write records who did what to which object, when and from where."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from points.models import AuditEvent, Village


def record(
    session: Session,
    *,
    actor_id: int | None,
    village_id: int | None,
    action: str,
    object_type: str,
    object_id: object = None,
    summary: str = "",
    details: dict | None = None,
    remote_addr: str | None = None,
    now: datetime,
) -> None:
    """Append an audit event (in the caller's transaction: it lands only if the write does).

    A Core INSERT on the session's connection, not an ORM object and a flush: every write
    request appends one, and nothing reads the row back in the same unit of work."""
    session.connection().execute(
        _INSERT,
        {
            "village_id": village_id,
            "actor_id": actor_id,
            "action": action,
            "object_type": object_type,
            "object_id": None if object_id is None else str(object_id),
            "summary": summary,
            "details": details,
            "remote_addr": remote_addr,
            "created_at": now,
        },
    )


_INSERT = AuditEvent.__table__.insert()


def list_events(
    session: Session,
    *,
    village: Village,
    action: str | None = None,
    limit: int = 200,
    before_id: int | None = None,
) -> list[AuditEvent]:
    """Return the village's audit events, newest first."""
    stmt = select(AuditEvent).where(AuditEvent.village_id == village.id)
    if action:
        stmt = stmt.where(AuditEvent.action == action)
    if before_id:
        stmt = stmt.where(AuditEvent.id < before_id)
    return list(session.execute(stmt.order_by(AuditEvent.id.desc()).limit(limit)).scalars())
