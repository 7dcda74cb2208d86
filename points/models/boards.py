"""红黑榜: monthly boards (draft → approved → published, then withdrawn or superseded by a
correction), their entries while being edited, and residents' appeals against entries."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from points.db import Base, intpk


class BoardStatus(StrEnum):
    DRAFT = "draft"  # drafted on the 1st; the admin edits it
    APPROVED = "approved"  # fixed; waiting to be published
    PUBLISHED = "published"  # an immutable snapshot with the ledger head
    WITHDRAWN = "withdrawn"  # taken down; a notice with the reason stays visible
    SUPERSEDED = "superseded"  # an upheld appeal published a correction; still visible


class EntryKind(StrEnum):
    RED = "red"
    BLACK = "black"


class Section(StrEnum):
    TOP = "top"  # the month's top households by score
    DEED = "deed"  # a good deed under a rule marked honourable
    NOMINATION = "nomination"  # added by an admin
    PARTY = "party"  # a party member's star rating
    VIOLATION = "violation"  # a posted deduction for breaking the 村规民约


class AppealStatus(StrEnum):
    OPEN = "open"
    UPHELD = "upheld"  # a correction board was published without the entry
    DISMISSED = "dismissed"


class Board(Base):
    """One village's board for one month. Only one live (draft, approved or published) board
    per month; a published board's `snapshot` is what everyone sees, names already applied."""

    __tablename__ = "boards"
    __table_args__ = (
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
            "uq_boards_live_month",
            "village_id",
            "month",
            unique=True,
            sqlite_where=text("status IN ('draft', 'approved', 'published')"),
            postgresql_where=text("status IN ('draft', 'approved', 'published')"),
        ),
    )

    id: Mapped[intpk]
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"), index=True)
    month: Mapped[str] = mapped_column(String(7))  # '2026-11'
    status: Mapped[str] = mapped_column(String(16), default=BoardStatus.DRAFT)
    created_at: Mapped[datetime]
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    approved_at: Mapped[datetime | None]
    approved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    published_at: Mapped[datetime | None]
    published_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # The village's chain head when it was published: printed on the board and the poster.
    head_seq: Mapped[int | None]
    head_hash: Mapped[str | None] = mapped_column(String(64))
    privacy_mode: Mapped[str | None] = mapped_column(String(16))  # the mode it was published in
    snapshot: Mapped[dict | None] = mapped_column(JSON)
    withdrawn_at: Mapped[datetime | None]
    withdrawn_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    withdraw_reason: Mapped[str | None] = mapped_column(Text)
    correction_of: Mapped[int | None] = mapped_column(ForeignKey("boards.id"))
    corrected_by: Mapped[int | None] = mapped_column(ForeignKey("boards.id"))

    entries: Mapped[list[BoardEntry]] = relationship(
        order_by="BoardEntry.id", foreign_keys="BoardEntry.board_id"
    )


class BoardEntry(Base):
    """One line of a board. Drafts are edited here: a removal keeps the row with its reason."""

    __tablename__ = "board_entries"
    __table_args__ = (
        CheckConstraint("kind IN ('red', 'black')", name="kind_known"),
        CheckConstraint("NOT removed OR removed_reason IS NOT NULL", name="removal_has_reason"),
    )

    id: Mapped[intpk]
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"))
    board_id: Mapped[int] = mapped_column(ForeignKey("boards.id"), index=True)
    kind: Mapped[str] = mapped_column(String(8))
    section: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16))  # auto | nomination
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id"))
    resident_id: Mapped[int | None] = mapped_column(ForeignKey("residents.id"))
    claim_id: Mapped[int | None] = mapped_column(ForeignKey("claims.id"))
    entry_id: Mapped[int | None] = mapped_column(ForeignKey("journal_entries.id"))
    rank: Mapped[int | None]
    score: Mapped[int | None]
    stars: Mapped[int | None]
    text: Mapped[str] = mapped_column(Text, default="")
    entry_month: Mapped[str | None] = mapped_column(String(7))  # when a violation was posted
    # A deed's or a violation's rule category, frozen at drafting (0019): the board's groups.
    category: Mapped[str | None] = mapped_column(String(16))
    removed: Mapped[bool] = mapped_column(Boolean, default=False)
    removed_reason: Mapped[str | None] = mapped_column(Text)
    removed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class BoardAppeal(Base):
    """A resident's appeal against an entry about their household on a published board."""

    __tablename__ = "board_appeals"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'upheld', 'dismissed')", name="status_known"),
    )

    id: Mapped[intpk]
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"), index=True)
    board_id: Mapped[int] = mapped_column(ForeignKey("boards.id"))
    board_entry_id: Mapped[int] = mapped_column(ForeignKey("board_entries.id"), index=True)
    raised_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=AppealStatus.OPEN)
    resolution: Mapped[str | None] = mapped_column(Text)
    resolved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    resolved_at: Mapped[datetime | None]
    correction_board_id: Mapped[int | None] = mapped_column(ForeignKey("boards.id"))
    created_at: Mapped[datetime]
