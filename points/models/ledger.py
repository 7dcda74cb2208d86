"""Accounts, journal entries and postings: the append-only, hash-chained, double-entry ledger."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from points.db import Base, intpk


class AccountKind(StrEnum):
    LOT = "lot"  # a subject's points earned in one period of one scheme; never negative
    OWED = "owed"  # what a subject could not pay; never positive, settled by later awards
    ISSUANCE = "issuance"  # awards come from here
    DEDUCTIONS = "deductions"
    REDEMPTIONS = "redemptions"
    EXPIRED = "expired"
    ADJUSTMENTS = "adjustments"
    OPENING = "opening"  # opening balances imported from a paper 台账

    @property
    def is_subject(self) -> bool:
        return self in (AccountKind.LOT, AccountKind.OWED)


SYSTEM_KINDS = tuple(k for k in AccountKind if not k.is_subject)


class EntryKind(StrEnum):
    AWARD = "award"
    DEDUCTION = "deduction"
    REDEMPTION = "redemption"
    REVERSAL = "reversal"
    EXPIRY = "expiry"
    OPENING = "opening"
    ADJUSTMENT = "adjustment"


class Account(Base):
    """A balance holder. Subject accounts cache their balance; system accounts do not.

    System accounts take a posting on every entry of the village: caching their balance would
    make one row every writer has to lock. Their balance is the sum of their postings.
    """

    __tablename__ = "accounts"
    __table_args__ = (
        UniqueConstraint("village_id", "key"),
        CheckConstraint("kind <> 'lot' OR balance >= 0", name="lot_not_negative"),
        CheckConstraint("kind <> 'owed' OR balance <= 0", name="owed_not_positive"),
        CheckConstraint(
            "(kind IN ('lot', 'owed')) = (balance IS NOT NULL)", name="cached_balance_for_subjects"
        ),
        CheckConstraint(
            "kind NOT IN ('lot', 'owed') OR scheme_id IS NOT NULL", name="subject_has_scheme"
        ),
        CheckConstraint(
            "kind NOT IN ('lot', 'owed') OR (household_id IS NULL) <> (resident_id IS NULL)",
            name="subject_is_one",
        ),
        CheckConstraint("kind <> 'lot' OR period_key IS NOT NULL", name="lot_has_period"),
        Index("ix_accounts_subject", "scheme_id", "household_id", "resident_id", "kind"),
        # A period close finds a scheme's open lots of one period.
        Index("ix_accounts_scheme_lots", "scheme_id", "kind", "period_key"),
    )

    id: Mapped[intpk]
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"))
    key: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(16))
    scheme_id: Mapped[int | None] = mapped_column(ForeignKey("schemes.id"))
    household_id: Mapped[int | None] = mapped_column(ForeignKey("households.id"))
    resident_id: Mapped[int | None] = mapped_column(ForeignKey("residents.id"))
    period_key: Mapped[str | None] = mapped_column(String(16))
    period_start: Mapped[date | None] = mapped_column(Date)
    balance: Mapped[int | None]
    closed_at: Mapped[datetime | None]


class JournalEntry(Base):
    """One business event; its postings sum to zero. Never updated or deleted (DB triggers).

    `score_delta` is what the entry adds to the subject's score for `period_key`/`month`
    (awards +, deductions -, their reversals the opposite; spending and expiry 0): score is not
    balance, so redeeming never lowers a rank.
    """

    __tablename__ = "journal_entries"
    __table_args__ = (
        UniqueConstraint("village_id", "seq"),
        UniqueConstraint("village_id", "idem_key"),
        CheckConstraint("seq >= 1", name="seq_positive"),
        Index(
            "ix_journal_entries_subject_month", "scheme_id", "household_id", "resident_id", "month"
        ),
        # A village's month (town summary, board) and a scheme's month or period (boards, stars).
        Index("ix_journal_entries_village_month", "village_id", "month"),
        Index("ix_journal_entries_scheme_month", "scheme_id", "month"),
        Index("ix_journal_entries_scheme_period", "scheme_id", "period_key"),
    )

    id: Mapped[intpk]
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"))
    seq: Mapped[int]
    kind: Mapped[str] = mapped_column(String(16))
    scheme_id: Mapped[int | None] = mapped_column(ForeignKey("schemes.id"))
    household_id: Mapped[int | None] = mapped_column(ForeignKey("households.id"))
    resident_id: Mapped[int | None] = mapped_column(ForeignKey("residents.id"))
    period_key: Mapped[str | None] = mapped_column(String(16))
    month: Mapped[str | None] = mapped_column(String(7))
    score_delta: Mapped[int] = mapped_column(default=0)
    category: Mapped[str | None] = mapped_column(String(32))
    memo: Mapped[str] = mapped_column(Text, default="")
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("journal_entries.id"), unique=True)
    # The catalog rule row (and claim) an award or deduction was posted under: old entries keep
    # showing the rule version and values in force when they were earned.
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("catalog_rules.id"))
    claim_id: Mapped[int | None] = mapped_column(
        ForeignKey("claims.id", use_alter=True, name="fk_journal_entries_claim_id_claims")
    )
    idem_key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    postings: Mapped[list[Posting]] = relationship(
        back_populates="entry", order_by="Posting.id", lazy="selectin"
    )


class Posting(Base):
    """A signed amount on one account: + raises the account's balance, - lowers it."""

    __tablename__ = "postings"
    __table_args__ = (
        CheckConstraint("amount <> 0", name="amount_not_zero"),
        # verify sums a village's postings, overall and per account, from this index alone.
        Index("ix_postings_village_account", "village_id", "account_id", "amount"),
    )

    id: Mapped[intpk]
    entry_id: Mapped[int] = mapped_column(ForeignKey("journal_entries.id"), index=True)
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    amount: Mapped[int]

    entry: Mapped[JournalEntry] = relationship(back_populates="postings")


class ChainHead(Base):
    """The last (seq, hash) of a village's chain; written only under the village's chain lock."""

    __tablename__ = "chain_heads"

    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"), primary_key=True)
    seq: Mapped[int]
    hash: Mapped[str] = mapped_column(String(64))
