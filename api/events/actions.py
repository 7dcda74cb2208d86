"""What the event API and pages share: finding an event from its QR, the door scan, closing,
each audited like every other write."""

from __future__ import annotations

from flask import current_app, request

from api.db import db
from api.events import qr as event_qr
from api.web import qr
from api.web.identity import current_actor
from points import events
from points.db import utcnow
from points.events import EventWrongVillageError
from points.models import Scheme, Village
from points.models.events import Event
from points.shop.credentials import CardRef


def qr_url(village: Village, event: Event) -> str:
    """The URL the event's QR encodes (this server's address, as the request reached it)."""
    token = event_qr.sign(current_app.config["SECRET_KEY"], event)
    return event_qr.join_url(request.host_url, village, token)


def event_from_scan(village: Village, text: str) -> Event:
    """The event a scanned event QR (URL or token) names, bound to `village`."""
    token = event_qr.token_of_scan(text)
    event_id, village_id, key = event_qr.read(current_app.config["SECRET_KEY"], token)
    if village_id != village.id:
        raise EventWrongVillageError()
    return events.event_by_key(db(), village=village, event_id=event_id, key=key)


def door_scan(village: Village, event: Event, text: str, audit):
    """Check in the household of a card or phone code scanned at the door; audit it."""
    now = utcnow()
    credential = qr.parse_scan(qr.token_settings(), text, village=village, now=now)
    if isinstance(credential, CardRef):
        row = events.check_in_card(
            db(),
            event=event,
            village=village,
            serial=credential.serial,
            actor=current_actor(),
            now=now,
        )
    else:
        row = events.check_in_phone(
            db(),
            event=event,
            village=village,
            nonce=credential.nonce,
            household_id=credential.household_id,
            actor=current_actor(),
            now=now,
        )
    audited_checkin(village, event, row, audit)
    return row


def walk_in(village: Village, event: Event, resident_id: int, audit):
    """Check in a walk-in found by name; audit it."""
    row = events.check_in_by_name(
        db(), event=event, resident_id=resident_id, actor=current_actor(), now=utcnow()
    )
    audited_checkin(village, event, row, audit)
    return row


def self_checkin(village: Village, event: Event, audit):
    """Check in the signed-in resident who scanned the event's QR; audit it."""
    row = events.check_in_self(db(), event=event, actor=current_actor(), now=utcnow())
    audited_checkin(village, event, row, audit)
    return row


def audited_checkin(village, event, row, audit) -> None:
    method = events.METHOD_NAMES.get(row.method, row.method)
    audit(
        village,
        "event.checkin",
        row,
        f"“{event.title}”签到：户 {row.household_id}"
        + (f" 党员 {row.resident_id}" if row.per_person else "")
        + f"（{method}）",
        "event_attendance",
        event_id=event.id,
    )


def close(village: Village, event: Event, audit):
    """Close the event into one group claim; audit it."""
    scheme = db().get(Scheme, event.scheme_id)
    event, batch, claims = events.close_event(
        db(), event=event, scheme=scheme, actor=current_actor(), now=utcnow()
    )
    audit(
        village,
        "event.close",
        event,
        f"活动“{event.title}”结束签到：{len(claims)} {'人' if events.per_person(scheme) else '户'}计分"
        + (f"（集体奖励 {batch.id}）" if batch else "（无人签到）"),
        "event",
        batch_id=batch.id if batch else None,
    )
    return event, batch, claims
