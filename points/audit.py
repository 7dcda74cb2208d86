"""The audit log: every write records who did what to which object, when and from where."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select
from sqlalchemy.orm import Session

from points.direct import Direct
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
    note = Note(
        actor_id=actor_id,
        village_id=village_id,
        action=action,
        object_type=object_type,
        summary=summary,
        details=details,
        remote_addr=remote_addr,
        now=now,
    )
    note.append(session, object_id)


@dataclass(frozen=True)
class Note:
    """An audit event for a write still to be made, appended by the code that makes it
    (recording appends it with the claim's own INSERT): the event's object is the written row,
    and `summary` may be a function of it (its points are decided by the write)."""

    actor_id: int | None
    village_id: int | None
    action: str
    object_type: str
    summary: str | Callable[[Any], str] = ""
    details: dict | None = None
    remote_addr: str | None = None
    now: datetime | None = None

    def values(self, obj) -> dict:
        """The event's columns for the written row `obj` (`object_id` its id, or `obj` itself
        when it has no id: a code, a number)."""
        summary = self.summary(obj) if callable(self.summary) else self.summary
        object_id = getattr(obj, "id", obj)
        return {
            "village_id": self.village_id,
            "actor_id": self.actor_id,
            "action": self.action,
            "object_type": self.object_type,
            "object_id": None if object_id is None else str(object_id),
            "summary": summary,
            "details": self.details,
            "remote_addr": self.remote_addr,
            "created_at": self.now,
        }

    def append(self, session: Session, obj) -> None:
        """Append the event for `obj` (written: it has its id) in this transaction."""
        _APPEND.rows(session.connection(), self.values(obj))


# One event with every column (`Note.values`), on the driver's cursor (decision 0032).
_APPEND = Direct(
    insert(AuditEvent.__table__).values(
        {c.key: bindparam(c.key, type_=c.type) for c in AuditEvent.__table__.c if c.key != "id"}
    )
)


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
