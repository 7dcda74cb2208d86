"""The organisation: villages (tenants), groups/grids, households, residents, users and roles."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import Boolean, Date, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from points.db import Base, intpk, utcnow

if TYPE_CHECKING:
    from points.models.catalog import Scheme


class PrivacyMode(StrEnum):
    NAMED = "named"  # 张三
    MASKED = "masked"  # 张*三, household number hidden
    GROUP = "group"  # group-level only


class ResidentStatus(StrEnum):
    ACTIVE = "active"
    MOVED_OUT = "moved_out"  # 迁出
    DECEASED = "deceased"  # 去世


class Role(StrEnum):
    ADMIN = "admin"
    REVIEWER = "reviewer"
    RECORDER = "recorder"
    CLERK = "clerk"
    RESIDENT = "resident"
    SUPERVISOR = "supervisor"


class Village(Base):
    __tablename__ = "villages"

    id: Mapped[intpk]
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    town: Mapped[str] = mapped_column(String(100))
    county: Mapped[str] = mapped_column(String(100))
    privacy_mode: Mapped[str] = mapped_column(String(16), default=PrivacyMode.MASKED)
    # 红黑榜: how many monthly boards a black entry stays on, and the size of the red top list.
    black_months: Mapped[int] = mapped_column(default=3, server_default="3")
    board_top_n: Mapped[int] = mapped_column(default=10, server_default="10")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    # Read only: a village has one to three schemes, loaded with it where a request needs one.
    schemes: Mapped[list[Scheme]] = relationship(viewonly=True, order_by="Scheme.id")


class Group(Base):
    """A 村民小组 or 网格 (100–150 households); recorders are scoped to one."""

    __tablename__ = "groups"
    __table_args__ = (UniqueConstraint("village_id", "name"),)

    id: Mapped[intpk]
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))


class Household(Base):
    """A household account (一户一档); the subject of the redeemable scheme."""

    __tablename__ = "households"
    __table_args__ = (UniqueConstraint("village_id", "number"),)

    id: Mapped[intpk]
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"), index=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id"), index=True)
    number: Mapped[str] = mapped_column(String(32))  # 户号
    door_plate: Mapped[str | None] = mapped_column(String(100))  # 门牌
    head_id: Mapped[int | None] = mapped_column(
        ForeignKey("residents.id", use_alter=True, name="fk_households_head_id_residents")
    )
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    members: Mapped[list[Resident]] = relationship(
        back_populates="household", foreign_keys="Resident.household_id", order_by="Resident.id"
    )
    head: Mapped[Resident | None] = relationship(foreign_keys=[head_id], post_update=True)


class Resident(Base):
    """A person. No full ID number is ever stored; the phone is stored and shown masked."""

    __tablename__ = "residents"

    id: Mapped[intpk]
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"), index=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id"), index=True)
    name: Mapped[str] = mapped_column(String(50))
    phone: Mapped[str | None] = mapped_column(String(20))
    is_party_member: Mapped[bool] = mapped_column(Boolean, default=False)
    party_branch: Mapped[str | None] = mapped_column(String(100))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # active | moved_out | deceased: a person who left keeps their row (history, past entries).
    status: Mapped[str] = mapped_column(
        String(16), default=ResidentStatus.ACTIVE, server_default=ResidentStatus.ACTIVE
    )
    left_on: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    household: Mapped[Household] = relationship(
        back_populates="members", foreign_keys=[household_id]
    )


class User(Base):
    """Someone who signs in: staff by username and password, residents by phone and PIN."""

    __tablename__ = "users"

    id: Mapped[intpk]
    username: Mapped[str | None] = mapped_column(String(64), unique=True)  # staff
    phone: Mapped[str | None] = mapped_column(String(20), unique=True)  # residents
    display_name: Mapped[str] = mapped_column(String(50))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    pin_hash: Mapped[str | None] = mapped_column(String(255))
    resident_id: Mapped[int | None] = mapped_column(ForeignKey("residents.id"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Page sessions carry the epoch they were signed in under; bumping it ends them all
    # (points.auth.sessions). Sign-in failures and the lockout live here, not in a process,
    # so that every worker and server sees them (points.auth.lockout).
    session_epoch: Mapped[int] = mapped_column(default=0, server_default="0")
    failed_signins: Mapped[int] = mapped_column(default=0, server_default="0")
    locked_until: Mapped[datetime | None]

    roles: Mapped[list[RoleAssignment]] = relationship(
        back_populates="user", cascade="all, delete-orphan"
    )
    resident: Mapped[Resident | None] = relationship(foreign_keys=[resident_id], viewonly=True)


class RoleAssignment(Base):
    """A role scoped to a village, a group within it (recorders) or a town (supervisors)."""

    __tablename__ = "role_assignments"

    id: Mapped[intpk]
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    village_id: Mapped[int | None] = mapped_column(ForeignKey("villages.id"), index=True)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id"))
    town: Mapped[str | None] = mapped_column(String(100))

    user: Mapped[User] = relationship(back_populates="roles")
