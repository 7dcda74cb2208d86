"""The points shop (积分超市): stores, goods and stock, household cards, QR nonces, orders,
redemptions and the per-household quota counters that make limits safe under concurrency."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import (
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

if TYPE_CHECKING:
    from points.models.ledger import JournalEntry
    from points.models.org import Household, User


class StoreKind(StrEnum):
    VILLAGE = "village"  # the village's own 积分超市
    PRIVATE = "private"  # a designated private shop (定点商店) that accepts points


class MovementKind(StrEnum):
    DONATION = "donation"  # 捐赠: sponsors, 帮扶单位
    PURCHASE = "purchase"  # bought by the collective economy
    ADJUSTMENT = "adjustment"  # stocktake corrections, damage (may be negative)
    REDEMPTION = "redemption"  # handed over to a household (negative)
    CANCELLATION = "cancellation"  # a cancelled redemption's goods back on the shelf


class RedemptionMethod(StrEnum):
    PHONE = "phone"  # the resident's phone code (PTS1)
    CARD = "card"  # a printed household card (PTSCARD)
    ORDER = "order"  # ordered on the phone from the store's counter code, collected


class RedemptionState(StrEnum):
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class OrderState(StrEnum):
    PENDING = "pending"
    COLLECTED = "collected"
    CANCELLED = "cancelled"


class NonceKind(StrEnum):
    PHONE = "phone"  # shown on a resident's phone, about 60 s
    CHECKOUT = "checkout"  # issued to a clerk who scanned a card, a few minutes


class Store(Base):
    """A place that hands out goods for points; spends from one redeemable household scheme."""

    __tablename__ = "stores"
    __table_args__ = (UniqueConstraint("village_id", "name"),)

    id: Mapped[intpk]
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"), index=True)
    scheme_id: Mapped[int] = mapped_column(ForeignKey("schemes.id"))
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16), default=StoreKind.VILLAGE)
    address: Mapped[str] = mapped_column(String(200), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]


class Good(Base):
    """An item priced in whole points. Stock changes only by conditional UPDATE (never < 0)."""

    __tablename__ = "goods"
    __table_args__ = (
        UniqueConstraint("store_id", "name"),
        CheckConstraint("stock >= 0", name="stock_not_negative"),
        CheckConstraint("price > 0", name="price_positive"),
        CheckConstraint("limit_per_period IS NULL OR limit_per_period >= 1", name="limit_positive"),
        CheckConstraint("low_stock_at >= 0", name="low_stock_at_not_negative"),
    )

    id: Mapped[intpk]
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"), index=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    unit: Mapped[str] = mapped_column(String(16), default="件")
    price: Mapped[int]
    stock: Mapped[int] = mapped_column(default=0)
    limit_per_period: Mapped[int | None]  # per household per scheme period; None: no limit
    low_stock_at: Mapped[int] = mapped_column(default=5)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    photo: Mapped[str | None] = mapped_column(String(64))  # stored file name (api/shop/photos.py)


class StockMovement(Base):
    """One change of a good's stock: who, when, why, and the stock it left. Append-only."""

    __tablename__ = "stock_movements"
    __table_args__ = (CheckConstraint("quantity <> 0", name="quantity_not_zero"),)

    id: Mapped[intpk]
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"), index=True)
    good_id: Mapped[int] = mapped_column(ForeignKey("goods.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    quantity: Mapped[int]  # signed: + onto the shelf, - off it
    stock_after: Mapped[int]
    source: Mapped[str] = mapped_column(String(100), default="")  # donor, supplier
    note: Mapped[str] = mapped_column(Text, default="")
    redemption_id: Mapped[int | None] = mapped_column(ForeignKey("redemptions.id"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime]


class RedemptionPolicy(Base):
    """When a scheme's points may be redeemed: the last `window_days` local days of each period.

    No row, or `window_days` NULL, means redemption is open all period. The threshold is the
    scheme's own `redemption_threshold`, compared with the household's period score.
    """

    __tablename__ = "redemption_policies"
    __table_args__ = (
        CheckConstraint("window_days IS NULL OR window_days >= 1", name="window_days_positive"),
    )

    id: Mapped[intpk]
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"), index=True)
    scheme_id: Mapped[int] = mapped_column(ForeignKey("schemes.id"), unique=True)
    window_days: Mapped[int | None]
    updated_at: Mapped[datetime]
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class HouseholdCard(Base):
    """A printed household card; its serial is the QR payload. Revoked when lost or reissued."""

    __tablename__ = "household_cards"
    __table_args__ = (
        # At most one live card per household: reissuing revokes the old serial first.
        Index(
            "uq_household_cards_one_live",
            "household_id",
            unique=True,
            sqlite_where=text("revoked_at IS NULL"),
            postgresql_where=text("revoked_at IS NULL"),
        ),
    )

    id: Mapped[intpk]
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"), index=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id"), index=True)
    serial: Mapped[str] = mapped_column(String(32), unique=True)
    issued_at: Mapped[datetime]
    issued_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    revoke_reason: Mapped[str | None] = mapped_column(String(200))

    household: Mapped[Household] = relationship()


class QrNonce(Base):
    """A single-use random nonce behind a signed QR token; consumed in the redemption's
    transaction by a conditional UPDATE, so a replayed token finds nothing to consume."""

    __tablename__ = "qr_nonces"

    id: Mapped[intpk]
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"), index=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id"))
    nonce: Mapped[str] = mapped_column(String(32), unique=True)  # 128 random bits, hex
    kind: Mapped[str] = mapped_column(String(16))
    card_id: Mapped[int | None] = mapped_column(ForeignKey("household_cards.id"))
    issued_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    consumed_at: Mapped[datetime | None]


class ShopOrder(Base):
    """A resident's order placed from a store's counter code; the points are spent when the
    clerk hands the goods over (collect), not when it is placed: nothing is reserved."""

    __tablename__ = "shop_orders"
    __table_args__ = (Index("ix_shop_orders_store_state", "store_id", "state"),)

    id: Mapped[intpk]
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"), index=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id"))
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id"), index=True)
    placed_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    state: Mapped[str] = mapped_column(String(16), default=OrderState.PENDING)
    created_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    closed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    items: Mapped[list[ShopOrderItem]] = relationship(
        order_by="ShopOrderItem.id", lazy="selectin", cascade="all, delete-orphan"
    )
    store: Mapped[Store] = relationship()
    household: Mapped[Household] = relationship()


class ShopOrderItem(Base):
    __tablename__ = "shop_order_items"
    __table_args__ = (CheckConstraint("quantity >= 1", name="quantity_positive"),)

    id: Mapped[intpk]
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"))
    order_id: Mapped[int] = mapped_column(ForeignKey("shop_orders.id"), index=True)
    good_id: Mapped[int] = mapped_column(ForeignKey("goods.id"))
    quantity: Mapped[int]

    good: Mapped[Good] = relationship()


class Redemption(Base):
    """Goods handed to a household for points: one ledger entry, its items, the stock moved."""

    __tablename__ = "redemptions"
    __table_args__ = (
        UniqueConstraint("village_id", "idem_key"),
        CheckConstraint("total > 0", name="total_positive"),
        Index("ix_redemptions_household", "household_id", "created_at"),
    )

    id: Mapped[intpk]
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"), index=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id"))
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id"))
    scheme_id: Mapped[int] = mapped_column(ForeignKey("schemes.id"))
    period_key: Mapped[str] = mapped_column(String(16))
    method: Mapped[str] = mapped_column(String(16))
    card_id: Mapped[int | None] = mapped_column(ForeignKey("household_cards.id"))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("shop_orders.id"), unique=True)
    proxy: Mapped[bool] = mapped_column(Boolean, default=False)  # 代办: clerk for someone
    proxy_note: Mapped[str] = mapped_column(String(200), default="")
    total: Mapped[int]
    balance_after: Mapped[int]
    state: Mapped[str] = mapped_column(String(16), default=RedemptionState.COMPLETED)
    clerk_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    entry_id: Mapped[int] = mapped_column(ForeignKey("journal_entries.id"), unique=True)
    idem_key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    cancelled_at: Mapped[datetime | None]
    cancelled_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    cancel_reason: Mapped[str | None] = mapped_column(String(200))
    reversal_entry_id: Mapped[int | None] = mapped_column(ForeignKey("journal_entries.id"))

    items: Mapped[list[RedemptionItem]] = relationship(
        order_by="RedemptionItem.id", lazy="selectin", cascade="all, delete-orphan"
    )
    store: Mapped[Store] = relationship()
    household: Mapped[Household] = relationship()
    clerk: Mapped[User] = relationship(foreign_keys=[clerk_id])
    entry: Mapped[JournalEntry] = relationship(foreign_keys=[entry_id])


class RedemptionItem(Base):
    """One line of a redemption, with the name and price as they were at the counter."""

    __tablename__ = "redemption_items"
    __table_args__ = (CheckConstraint("quantity >= 1", name="quantity_positive"),)

    id: Mapped[intpk]
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"))
    redemption_id: Mapped[int] = mapped_column(ForeignKey("redemptions.id"), index=True)
    good_id: Mapped[int] = mapped_column(ForeignKey("goods.id"))
    name: Mapped[str] = mapped_column(String(100))
    unit: Mapped[str] = mapped_column(String(16))
    unit_price: Mapped[int]
    quantity: Mapped[int]
    amount: Mapped[int]


class RedemptionQuota(Base):
    """How many of a limited good a household took in a period, changed by conditional UPDATE
    (`quantity + q <= limit`), so two counters racing cannot both pass the limit."""

    __tablename__ = "redemption_quotas"
    __table_args__ = (
        UniqueConstraint("good_id", "household_id", "period_key"),
        CheckConstraint("quantity >= 0", name="quantity_not_negative"),
    )

    id: Mapped[intpk]
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"), index=True)
    good_id: Mapped[int] = mapped_column(ForeignKey("goods.id"))
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id"))
    period_key: Mapped[str] = mapped_column(String(16))
    quantity: Mapped[int] = mapped_column(default=0)
