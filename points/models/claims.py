"""Claims: recorded or declared acts on their way through review and public notice (公示)."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import Boolean, CheckConstraint, Date, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from points.db import Base, intpk

if TYPE_CHECKING:
    from points.models.catalog import CatalogRule


class ClaimStatus(StrEnum):
    PENDING_REVIEW = "pending_review"  # waits for a reviewer (评议)
    IN_NOTICE = "in_notice"  # approved, on public notice until notice_until (公示)
    POSTED = "posted"  # in the ledger (入账)
    REJECTED = "rejected"  # refused in review, or an objection was upheld


class Channel(StrEnum):
    RECORDED = "recorded"  # a grid worker or staff member recorded it
    DECLARED = "declared"  # the resident declared it with a photo (农户申报)
    BATCH = "batch"  # one of many recorded for an event
    AUTOMATIC = "automatic"  # earned by a state-based rule, evaluated by the scheduler


class ObjectionStatus(StrEnum):
    OPEN = "open"
    UPHELD = "upheld"  # the claim is rejected
    DISMISSED = "dismissed"  # the claim continues


class ClaimBatch(Base):
    """One event (a clean-up, a patrol, a meeting) recorded for many people at once."""

    __tablename__ = "claim_batches"

    id: Mapped[intpk]
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    rule_id: Mapped[int] = mapped_column(ForeignKey("catalog_rules.id"))
    occurred_on: Mapped[date] = mapped_column(Date)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime]
    # A group or event award (小组被评为卫生示范组): one notice row, one review, one objection
    # for all its claims (one per member household). NULL: an ordinary event batch.
    grouped: Mapped[bool | None] = mapped_column(Boolean)


class Claim(Base):
    """An act to be scored. `points` is what the rules engine decided (signed); the ledger
    entry it posts as names the same catalog rule row, so old values stay visible."""

    __tablename__ = "claims"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending_review', 'in_notice', 'posted', 'rejected')", name="status_known"
        ),
        CheckConstraint("points <> 0", name="points_not_zero"),
        CheckConstraint("status <> 'posted' OR entry_id IS NOT NULL", name="posted_has_entry"),
        Index("ix_claims_village_status", "village_id", "status"),
        Index("ix_claims_rule_subject", "rule_id", "household_id", "resident_id"),
        # The scheduler's due posts: claims in notice whose window ended.
        Index("ix_claims_status_notice", "status", "notice_until"),
        # A batch's claims (ids after a batch insert, a grouped batch's siblings); single
        # records have no batch and are left out.
        Index(
            "ix_claims_batch_id",
            "batch_id",
            sqlite_where=text("batch_id IS NOT NULL"),
            postgresql_where=text("batch_id IS NOT NULL"),
        ),
    )

    id: Mapped[intpk]
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"))
    scheme_id: Mapped[int] = mapped_column(ForeignKey("schemes.id"))
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id"))
    # The person who did it: the subject on the party track, a member on the household track.
    resident_id: Mapped[int | None] = mapped_column(ForeignKey("residents.id"))
    rule_id: Mapped[int] = mapped_column(ForeignKey("catalog_rules.id"))
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("claim_batches.id"))
    channel: Mapped[str] = mapped_column(String(16))
    quantity: Mapped[int] = mapped_column(default=1)
    proposed_points: Mapped[int | None]
    requested: Mapped[int]  # signed, before caps
    points: Mapped[int]  # signed, after caps
    cut_note: Mapped[str | None] = mapped_column(Text)
    # Why the points differ from the rule's plain value (第 2 次加倍, 宣传月双倍), or the condition
    # an automatic claim met: shown on the public notice.
    rule_note: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    occurred_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # None: the scheduler
    reviewed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reviewed_at: Mapped[datetime | None]
    review_note: Mapped[str | None] = mapped_column(Text)
    notice_until: Mapped[datetime | None]
    entry_id: Mapped[int | None] = mapped_column(ForeignKey("journal_entries.id"))
    posted_at: Mapped[datetime | None]
    created_at: Mapped[datetime]

    evidence: Mapped[list[Evidence]] = relationship(order_by="Evidence.id")
    objections: Mapped[list[Objection]] = relationship(order_by="Objection.id")
    # Read-only: the catalog item, so pages can name a claim without a query of their own.
    rule: Mapped[CatalogRule] = relationship(viewonly=True)


class Evidence(Base):
    """A photo attached to a claim, stored outside the web root under a random name."""

    __tablename__ = "claim_evidence"

    id: Mapped[intpk]
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"))
    claim_id: Mapped[int] = mapped_column(ForeignKey("claims.id"), index=True)
    stored_name: Mapped[str] = mapped_column(String(64), unique=True)
    content_type: Mapped[str] = mapped_column(String(32))
    size: Mapped[int]
    created_at: Mapped[datetime]


class Objection(Base):
    """An objection (异议) raised during public notice; an open one blocks posting."""

    __tablename__ = "objections"

    id: Mapped[intpk]
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"))
    claim_id: Mapped[int] = mapped_column(ForeignKey("claims.id"), index=True)
    raised_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=ObjectionStatus.OPEN)
    resolved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    resolved_at: Mapped[datetime | None]
    resolution_note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
