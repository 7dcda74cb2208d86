"""Schemes (what is scored, for whom, over which period) and, later, catalog versions and rules."""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from points.db import Base, intpk


class SubjectKind(StrEnum):
    HOUSEHOLD = "household"
    RESIDENT = "resident"


class ClosePolicy(StrEnum):
    RESET = "reset"  # a closed period's remainder expires (清零)
    CARRY = "carry"  # balances carry over
    EXPIRE_AFTER_N = "expire_after_n"  # lots older than n periods expire


class Scheme(Base):
    """A village's scoring track, e.g. `household` (redeemable) or `party` (personal)."""

    __tablename__ = "schemes"
    __table_args__ = (
        UniqueConstraint("village_id", "code"),
        CheckConstraint(
            "close_policy <> 'expire_after_n' OR expire_after_n >= 1", name="expire_after_n"
        ),
    )

    id: Mapped[intpk]
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"), index=True)
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(100))
    subject_kind: Mapped[str] = mapped_column(String(16))
    period_kind: Mapped[str] = mapped_column(String(16))
    close_policy: Mapped[str] = mapped_column(String(16), default=ClosePolicy.CARRY)
    expire_after_n: Mapped[int | None]
    base_score: Mapped[int] = mapped_column(default=0)
    redemption_threshold: Mapped[int] = mapped_column(default=0)
    notice_days: Mapped[int] = mapped_column(default=7)
    redeemable: Mapped[bool] = mapped_column(Boolean, default=False)
