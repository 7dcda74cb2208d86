"""Schemes (what is scored, for whom, over which period), catalog versions and their rules."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from points.db import Base, intpk

# What a catalog_versions.categories of NULL means (versions stored before migration 0015): the
# four categories every catalog had before categories were catalog data; 法治's deductions are
# the 黑榜's breaches of the 村规民约.
DEFAULT_CATEGORY_ROWS: tuple[dict, ...] = (
    {"name": "德治", "description": "孝善信勤俭美、移风易俗、环境卫生", "black": False},
    {"name": "自治", "description": "村民会议、议事协商、志愿服务", "black": False},
    {"name": "法治", "description": "平安建设、普法、遵守村规民约", "black": True},
    {"name": "党建", "description": "党员认岗定责、组织生活", "black": False},
)


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
    # Period scores at which 1..5 stars begin (星级文明户 / 党员一至五星); None: the defaults.
    star_thresholds: Mapped[list | None] = mapped_column(JSON)
    # Honours (migration 0013): how party stars combine the party score with 民主评议, and
    # how many 最美家庭 / 优秀党员 the yearly 表彰 nominates from scores; None: the defaults
    # in points.honours.rules.
    honour_rules: Mapped[dict | None] = mapped_column(JSON)


class CatalogStatus(StrEnum):
    DRAFT = "draft"  # editable; proposed to the 村民(代表)大会
    ADOPTED = "adopted"  # voted; immutable; the scheme's current catalog
    RETIRED = "retired"  # replaced by a later adopted version; immutable; still names old entries


class CatalogVersion(Base):
    """One numbered version of a scheme's 积分标准 (catalog).

    A version is in force on the local dates [effective_from, effective_to): the end is the day
    its successor took effect, so the intervals of one scheme never overlap. Once adopted,
    neither the version nor its rules change (database triggers refuse it too); entries name the
    rule row they used, so old entries keep the values they were posted with.
    """

    __tablename__ = "catalog_versions"
    __table_args__ = (
        UniqueConstraint("scheme_id", "number"),
        CheckConstraint("number >= 1", name="number_positive"),
        CheckConstraint("status IN ('draft', 'adopted', 'retired')", name="status_known"),
        CheckConstraint(
            "status = 'draft' OR (adopted_on IS NOT NULL AND effective_from IS NOT NULL)",
            name="adopted_has_dates",
        ),
        # At most one adopted version per scheme: a second adoption must retire the first.
        Index(
            "uq_catalog_versions_one_adopted",
            "scheme_id",
            unique=True,
            sqlite_where=text("status = 'adopted'"),
            postgresql_where=text("status = 'adopted'"),
        ),
    )

    id: Mapped[intpk]
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"), index=True)
    scheme_id: Mapped[int] = mapped_column(ForeignKey("schemes.id"))
    number: Mapped[int]
    status: Mapped[str] = mapped_column(String(16), default=CatalogStatus.DRAFT)
    title: Mapped[str] = mapped_column(String(200))
    adopted_on: Mapped[date | None] = mapped_column(Date)
    adopted_by_body: Mapped[str | None] = mapped_column(String(100))  # e.g. 村民代表大会
    note: Mapped[str] = mapped_column(Text, default="")
    effective_from: Mapped[date | None] = mapped_column(Date)
    effective_to: Mapped[date | None] = mapped_column(Date)  # exclusive
    created_at: Mapped[datetime]
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # The catalog's categories in board and report order: [{"name", "description", "black"}]
    # (black: its deductions go on the 黑榜). NULL (versions stored before migration 0015)
    # reads as the four defaults, 德治/自治/法治/党建 (points.catalog.categories).
    categories: Mapped[list | None] = mapped_column(JSON)
    adopted_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    rules: Mapped[list[CatalogRule]] = relationship(
        back_populates="version", order_by="CatalogRule.id", cascade="all, delete-orphan"
    )

    @property
    def category_rows(self) -> list[dict]:
        """The categories as stored, NULL read as the defaults (points.catalog.categories)."""
        return [dict(c) for c in (self.categories or DEFAULT_CATEGORY_ROWS)]


class CatalogRule(Base):
    """One item of a catalog version; the columns are the fields of `points.catalog.rules.Rule`."""

    __tablename__ = "catalog_rules"
    __table_args__ = (
        UniqueConstraint("version_id", "code"),
        CheckConstraint("sign IN (1, -1)", name="sign_known"),
    )

    id: Mapped[intpk]
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"), index=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("catalog_versions.id"))
    code: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(16))
    subcategory: Mapped[str | None] = mapped_column(String(50))
    description: Mapped[str] = mapped_column(Text, default="")
    sign: Mapped[int]
    points: Mapped[int | None]
    min_points: Mapped[int | None]
    max_points: Mapped[int | None]
    unit: Mapped[str] = mapped_column(String(8))
    caps: Mapped[dict] = mapped_column(JSON)  # {"month": 10}: magnitudes per subject per window
    evidence_required: Mapped[bool] = mapped_column(Boolean)
    review: Mapped[str] = mapped_column(String(16))
    review_threshold: Mapped[int | None]
    recorder_roles: Mapped[list] = mapped_column(JSON)
    subjects: Mapped[list] = mapped_column(JSON)
    honourable: Mapped[bool] = mapped_column(Boolean)
    # Rules engine 2 (migration 0011): nullable so that rows stored before them read as defaults.
    once: Mapped[bool | None] = mapped_column(Boolean)
    notice_days: Mapped[int | None]
    repeat_window: Mapped[str | None] = mapped_column(String(8))
    repeat_multiplier: Mapped[int | None]
    repeat_points: Mapped[int | None]
    veto: Mapped[str | None] = mapped_column(String(8))
    auto: Mapped[str | None] = mapped_column(String(8))
    auto_months: Mapped[int | None]
    auto_min_count: Mapped[int | None]
    auto_watch: Mapped[list | None] = mapped_column(JSON)
    campaign_name: Mapped[str | None] = mapped_column(String(100))
    campaign_from: Mapped[date | None] = mapped_column(Date)
    campaign_to: Mapped[date | None] = mapped_column(Date)
    campaign_multiplier: Mapped[int | None]

    version: Mapped[CatalogVersion] = relationship(back_populates="rules")


class SettingChange(Base):
    """One dated change of a scheme's or a village's setting (兑换门槛, 公示 days, 黑榜 term…).

    The value in force on a day is that of the latest change with `effective_from` ≤ the day
    (ties: the later row). A change dated later than today is announced (pending) until then;
    `applied_at` is when it was copied into the live column. Rows are never edited.
    """

    __tablename__ = "setting_changes"
    __table_args__ = (Index("ix_setting_changes_lookup", "village_id", "scheme_id", "name"),)

    id: Mapped[intpk]
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"))
    scheme_id: Mapped[int | None] = mapped_column(ForeignKey("schemes.id"))  # None: the village's
    name: Mapped[str] = mapped_column(String(32))
    value: Mapped[dict] = mapped_column(JSON)  # {"v": value}: a JSON null stays distinguishable
    effective_from: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime]
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    applied_at: Mapped[datetime | None]
