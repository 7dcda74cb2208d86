"""The public notice board (公示栏): open notices and recent corrections, names per the
village's privacy mode. Nothing here reveals more than the village chose to publish."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, select
from sqlalchemy.orm import Session, aliased

from points.claims.workflow import open_notices
from points.models import CatalogRule, Group, Household, JournalEntry, Resident, Scheme, Village
from points.models.claims import ClaimBatch
from points.models.org import PrivacyMode
from points.org.operations import mask_name

REVERSALS_SHOWN_DAYS = 30


def display_name(
    village: Village,
    household: Household,
    person: Resident | None,
    group: Group,
    head: Resident | None,
) -> str:
    """Return who a public notice names, per the privacy mode (never more)."""
    mode = village.privacy_mode
    if mode == PrivacyMode.GROUP:
        return group.name
    named = person or head
    name = named.name if named else "（未登记）"
    if mode == PrivacyMode.NAMED:
        return f"{name}（{household.number}户）"
    return mask_name(name)


def public_notices(session: Session, *, village: Village, now: datetime) -> list[dict]:
    """Return open notices and corrections of the last 30 days, for anyone to read."""
    out = []
    groups: dict[int, dict] = {}
    for claim in open_notices(session, village=village, now=now):
        batch = session.get(ClaimBatch, claim.batch_id) if claim.batch_id else None
        if batch is not None and batch.grouped:
            # A group award is one row: the group's name, how many households, each one's points.
            row = groups.get(batch.id)
            if row is None:
                row = groups[batch.id] = {
                    "kind": "notice",
                    "id": claim.id,
                    "who": batch.title,
                    "group": "",
                    "item": session.get(CatalogRule, claim.rule_id).name,
                    "category": session.get(CatalogRule, claim.rule_id).category,
                    "points": claim.points,
                    "occurred_on": claim.occurred_on,
                    "until": claim.notice_until,
                    "reason": None,
                    "note": None,
                    "households": 0,
                }
                out.append(row)
            row["households"] += 1
            # A party-scheme group award (主题党日) counts people, not households.
            person = session.get(Scheme, claim.scheme_id).subject_kind == "resident"
            unit = "人" if person else "户"
            row["group"] = f"{row['households']} {unit}，每{unit}"
            continue
        home = session.get(Household, claim.household_id)
        rule = session.get(CatalogRule, claim.rule_id)
        out.append(
            {
                "kind": "notice",
                "id": claim.id,
                "who": display_name(
                    village,
                    home,
                    session.get(Resident, claim.resident_id) if claim.resident_id else None,
                    session.get(Group, home.group_id),
                    session.get(Resident, home.head_id) if home.head_id else None,
                ),
                "group": session.get(Group, home.group_id).name,
                "item": rule.name,
                "category": rule.category,
                "points": claim.points,
                "occurred_on": claim.occurred_on,
                "until": claim.notice_until,
                "reason": None,
                "batch_id": claim.batch_id,
                # Why the points are what they are (第 2 次加倍, 宣传月双倍, 自动评定的条件).
                "note": claim.rule_note,
            }
        )
    original = aliased(JournalEntry)
    since = now - timedelta(days=REVERSALS_SHOWN_DAYS)
    rows = session.execute(
        select(JournalEntry, original)
        .join(
            original,
            and_(
                original.id == JournalEntry.reverses_id,
                original.village_id == JournalEntry.village_id,
            ),
        )
        .where(
            JournalEntry.village_id == village.id,
            JournalEntry.created_at >= since,
            original.household_id.is_not(None),
        )
        .order_by(JournalEntry.seq.desc())
    ).all()
    for fix, orig in rows:
        home = session.get(Household, orig.household_id)
        group = session.get(Group, home.group_id)
        out.append(
            {
                "kind": "reversal",
                "id": fix.id,
                "who": display_name(
                    village,
                    home,
                    None,
                    group,
                    session.get(Resident, home.head_id) if home.head_id else None,
                ),
                "group": group.name,
                "item": orig.memo,
                "category": orig.category or "",
                "points": fix.score_delta,
                "occurred_on": None,
                "until": None,
                "reason": fix.memo,
                "batch_id": None,
                "note": None,
            }
        )
    return out


def notice_rows(session: Session, *, village: Village, now: datetime) -> list[dict]:
    """Return the notice board as rows to read: an event batch is one row with its title and
    the number of households (`members` lists its notices), a single notice is a row of one."""
    rows: list[dict] = []
    batches: dict[int, dict] = {}
    for item in public_notices(session, village=village, now=now):
        batch_id = item.get("batch_id")
        if batch_id is None:
            rows.append({**item, "title": None, "count": 1, "members": [item]})
            continue
        row = batches.get(batch_id)
        if row is None:
            batch = session.get(ClaimBatch, batch_id)
            row = {**item, "kind": "batch", "title": batch.title, "members": []}
            batches[batch_id] = row
            rows.append(row)
        row["members"].append(item)
        row["until"] = max(m["until"] for m in row["members"])
        row["count"] = len(row["members"])
    return rows
