"""Honours that last: 星级文明户, party 评星定级, yearly 表彰 and the 道德模范 roll.

One list per village, kind and year moves like a 红黑榜 board (draft → approved → published,
then withdrawn or superseded by a correction); its entries are edited while it is a draft; a
published list's `snapshot` is what everyone sees. Residents appeal entries about their
household. 民主评议 records are the branch's yearly input to a party member's stars.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from points.db import Base, intpk


class HonourKind(StrEnum):
    HOUSEHOLD_STARS = "household_stars"  # 星级文明户
    PARTY_STARS = "party_stars"  # 党员评星定级
    AWARDS = "awards"  # 年度表彰: 优秀群众 / 优秀党员 / 最美家庭
    MODELS = "models"  # 道德模范 roll


class HonourStatus(StrEnum):
    DRAFT = "draft"
    APPROVED = "approved"
    PUBLISHED = "published"
    WITHDRAWN = "withdrawn"
    SUPERSEDED = "superseded"


class HonourList(Base):
    """One village's honour list of one kind for one year (or, for 星级文明户 under a per-period
    cadence, one scoring period of it); one live list per (kind, year, period)."""

    __tablename__ = "honour_lists"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('household_stars', 'party_stars', 'awards', 'models')", name="kind_known"
        ),
        CheckConstraint(
            "status IN ('draft', 'approved', 'published', 'withdrawn', 'superseded')",
            name="status_known",
        ),
        CheckConstraint(
            "status IN ('draft', 'approved') OR "
            "(head_seq IS NOT NULL AND head_hash IS NOT NULL AND snapshot IS NOT NULL)",
            name="published_has_head",
        ),
        Index(
            "uq_honour_lists_live",
            "village_id",
            "kind",
            "year",
            "period",
            unique=True,
            sqlite_where=text("status IN ('draft', 'approved', 'published')"),
            postgresql_where=text("status IN ('draft', 'approved', 'published')"),
        ),
    )

    id: Mapped[intpk]
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    year: Mapped[int]
    # The scoring period's key ('2025-Q3') of a per-period 星级文明户 list; '' for a yearly list.
    period: Mapped[str] = mapped_column(String(16), default="", server_default="")
    status: Mapped[str] = mapped_column(String(16), default=HonourStatus.DRAFT)
    created_at: Mapped[datetime]
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    approved_at: Mapped[datetime | None]
    approved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    published_at: Mapped[datetime | None]
    published_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    head_seq: Mapped[int | None]
    head_hash: Mapped[str | None] = mapped_column(String(64))
    privacy_mode: Mapped[str | None] = mapped_column(String(16))
    snapshot: Mapped[dict | None] = mapped_column(JSON)
    withdrawn_at: Mapped[datetime | None]
    withdrawn_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    withdraw_reason: Mapped[str | None] = mapped_column(Text)
    correction_of: Mapped[int | None] = mapped_column(ForeignKey("honour_lists.id"))
    corrected_by: Mapped[int | None] = mapped_column(ForeignKey("honour_lists.id"))

    entries: Mapped[list[HonourEntry]] = relationship(
        order_by="HonourEntry.id", foreign_keys="HonourEntry.list_id"
    )


class HonourEntry(Base):
    """One honoured household or person on a list; a removal keeps the row with its reason."""

    __tablename__ = "honour_entries"
    __table_args__ = (
        CheckConstraint("NOT removed OR removed_reason IS NOT NULL", name="removal_has_reason"),
        CheckConstraint("stars IS NULL OR (stars >= 0 AND stars <= 5)", name="stars_range"),
    )

    id: Mapped[intpk]
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"))
    list_id: Mapped[int] = mapped_column(ForeignKey("honour_lists.id"), index=True)
    # stars | 优秀群众 | 优秀党员 | 最美家庭 | 道德模范
    title: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16))  # auto | nomination
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id"), index=True)
    resident_id: Mapped[int | None] = mapped_column(ForeignKey("residents.id"))
    score: Mapped[int | None]  # the average period score the stars came from
    review_score: Mapped[int | None]  # 民主评议, for party stars
    stars: Mapped[int | None]
    text: Mapped[str] = mapped_column(Text, default="")
    # 道德模范: the honoured person agreed to be named in public (who recorded it, how).
    consent_note: Mapped[str | None] = mapped_column(Text)
    removed: Mapped[bool] = mapped_column(Boolean, default=False)
    removed_reason: Mapped[str | None] = mapped_column(Text)
    removed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class HonourAppeal(Base):
    """A resident's appeal against an entry about their household on a published list."""

    __tablename__ = "honour_appeals"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'upheld', 'dismissed')", name="status_known"),
    )

    id: Mapped[intpk]
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"), index=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("honour_lists.id"))
    entry_id: Mapped[int] = mapped_column(ForeignKey("honour_entries.id"), index=True)
    raised_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open")
    resolution: Mapped[str | None] = mapped_column(Text)
    resolved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    resolved_at: Mapped[datetime | None]
    correction_list_id: Mapped[int | None] = mapped_column(ForeignKey("honour_lists.id"))
    created_at: Mapped[datetime]


class PartyReview(Base):
    """The branch's 民主评议 of one party member for one year: a 0–100 score or a grade."""

    __tablename__ = "party_reviews"
    __table_args__ = (
        UniqueConstraint("village_id", "resident_id", "year"),
        CheckConstraint("score IS NULL OR (score >= 0 AND score <= 100)", name="score_range"),
        CheckConstraint("score IS NOT NULL OR grade IS NOT NULL", name="score_or_grade"),
    )

    id: Mapped[intpk]
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"), index=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"))
    year: Mapped[int]
    score: Mapped[int | None]
    grade: Mapped[str | None] = mapped_column(String(8))  # 优秀 / 合格 / 基本合格 / 不合格
    recorded_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[datetime]


class HonourRecord(Base):
    """A household's public honour record: the opaque reference its door plaque's QR carries
    (a household number or id in a URL would say more than the privacy mode allows)."""

    __tablename__ = "honour_records"
    __table_args__ = (UniqueConstraint("village_id", "household_id"), UniqueConstraint("ref"))

    id: Mapped[intpk]
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"), index=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id"))
    ref: Mapped[str] = mapped_column(String(24))
