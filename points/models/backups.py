"""Backups taken of the whole database, and the id maps of villages moved between databases."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from points.db import Base, intpk


class Backup(Base):
    """One backup of the database (with the evidence photos) and every village's head then.

    A backup is of the whole database, not of a village, so it is guarded by its own `slot`
    rather than by `cycle_runs` (which is keyed per village): the daily backup's slot is
    `daily:<local date>`, UNIQUE, inserted first in the same transaction as the copy, so two
    schedulers (or a restart) take it once a day. Other backups (manual, before a migration or a
    period close) have no slot. Rotation deletes old files and stamps `pruned_at`; rows stay.
    """

    __tablename__ = "backups"

    id: Mapped[intpk]
    taken_at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(String(16))  # daily, manual, migration, period_close
    slot: Mapped[str | None] = mapped_column(String(40), unique=True)
    location: Mapped[str] = mapped_column(String(500))  # the backup file's path
    size: Mapped[int] = mapped_column(default=0)
    heads: Mapped[dict] = mapped_column(JSON, default=dict)  # {village code: [seq, hash]}
    pruned_at: Mapped[datetime | None]


class VillageMove(Base):
    """A village imported from another database: its chain up to `through_seq` was hashed there.

    The hash of an entry covers the ids it names (village, scheme, household, resident, actor,
    reversed entry, rule, claim, posting accounts), and an import gives every row a new id. The
    entries and their hashes are copied unchanged; `moved_ids` maps each new id back to the id
    the entry was hashed with, and verify hashes imported entries through that map.
    """

    __tablename__ = "village_moves"

    id: Mapped[intpk]
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"), index=True)
    moved_at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(200))  # where it came from (file name, database)
    through_seq: Mapped[int]  # the head seq at export: entries up to it use the id map
    through_hash: Mapped[str] = mapped_column(String(64))


class MovedId(Base):
    """New id -> the id an imported entry was hashed with, per village and table; a bijection."""

    __tablename__ = "moved_ids"
    __table_args__ = (UniqueConstraint("village_id", "kind", "old_id"),)

    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)  # the table name
    new_id: Mapped[int] = mapped_column(primary_key=True)
    old_id: Mapped[int]
