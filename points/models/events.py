"""Events (村民大会, 志愿活动) that residents check in to, and who checked in."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Boolean, CheckConstraint, Date, ForeignKey, Index, String, false, text
from sqlalchemy.orm import Mapped, mapped_column

from points.db import Base, intpk


class Audience(StrEnum):
    VILLAGE = "village"  # every active household of the village
    GROUPS = "groups"  # households of the listed 小组 only
    PARTY = "party"  # party members only (a household with one, or the member in person)


class EventState(StrEnum):
    OPEN = "open"
    CLOSED = "closed"  # attendance turned into one group claim; no more check-ins


class CheckinMethod(StrEnum):
    SELF = "self"  # the resident scanned the event's QR with their own phone
    CARD = "card"  # the household card scanned at the door
    PHONE = "phone"  # the resident's phone code scanned at the door
    NAME = "name"  # a walk-in found by name


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        CheckConstraint("starts_at < ends_at", name="window"),
        CheckConstraint("audience IN ('village', 'groups', 'party')", name="audience"),
        CheckConstraint("state IN ('open', 'closed')", name="state"),
    )

    id: Mapped[intpk]
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    place: Mapped[str] = mapped_column(String(200))
    held_on: Mapped[date] = mapped_column(Date)  # the local date the claim is dated
    starts_at: Mapped[datetime]  # check-in opens (UTC)
    ends_at: Mapped[datetime]  # check-in closes (UTC), exclusive
    scheme_id: Mapped[int] = mapped_column(ForeignKey("schemes.id"))
    rule_code: Mapped[str] = mapped_column(String(64))  # resolved in the catalog on held_on
    audience: Mapped[str] = mapped_column(String(16))
    # The secret part of the event's QR (128 random bits): a poster whose key was replaced
    # stops working, and knowing an event's id is not enough to forge its code.
    qr_key: Mapped[str] = mapped_column(String(32), unique=True)
    state: Mapped[str] = mapped_column(String(16), default=EventState.OPEN)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime]
    closed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    closed_at: Mapped[datetime | None]
    # The group claim the closing recorded: at most one per event.
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("claim_batches.id"), unique=True)


class EventGroup(Base):
    """A 小组 invited to an event whose audience is `groups`."""

    __tablename__ = "event_groups"

    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"), primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id"), primary_key=True)
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"))


class Attendance(Base):
    """One household (household-scheme event) or one party member (party-scheme event) checked
    in to an event: the award is per subject of the event's scheme, so once each."""

    __tablename__ = "event_attendances"
    __table_args__ = (
        # A household-scheme event: once per household, whoever of it came.
        Index(
            "uq_event_attendances_household",
            "event_id",
            "household_id",
            unique=True,
            sqlite_where=text("NOT per_person"),
            postgresql_where=text("NOT per_person"),
        ),
        # A party-scheme event: once per party member (two members of one household both earn).
        Index(
            "uq_event_attendances_person",
            "event_id",
            "resident_id",
            unique=True,
            sqlite_where=text("per_person"),
            postgresql_where=text("per_person"),
        ),
        CheckConstraint("NOT per_person OR resident_id IS NOT NULL", name="person_named"),
    )

    id: Mapped[intpk]
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"))
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"), index=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id"))
    resident_id: Mapped[int | None] = mapped_column(ForeignKey("residents.id"))  # who came
    # True on a party-scheme event: the attendance is the person's (resident_id required).
    per_person: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    method: Mapped[str] = mapped_column(String(16))
    checked_in_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # None: self
    checked_in_at: Mapped[datetime]
