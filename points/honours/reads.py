"""Reading honours: lists for staff and the public, a household's honours (its own page, its
plaque's public record, its statements), the 道德模范 roll."""

from __future__ import annotations

from types import SimpleNamespace

from sqlalchemy import select
from sqlalchemy.orm import Session

from points.claims.notices import display_name
from points.errors import NotFoundError
from points.honours.rules import STARS
from points.models import Group, Household, Resident, Village
from points.models.honours import (
    HonourAppeal,
    HonourEntry,
    HonourKind,
    HonourList,
    HonourRecord,
    HonourStatus,
)
from points.periods import period_label

SHOWN = (HonourStatus.PUBLISHED, HonourStatus.WITHDRAWN, HonourStatus.SUPERSEDED)
KIND_TEXT = {
    HonourKind.HOUSEHOLD_STARS: "星级文明户",
    HonourKind.PARTY_STARS: "党员评星定级",
    HonourKind.AWARDS: "表彰",
    HonourKind.MODELS: "道德模范",
}


def kind_text(kind: str) -> str:
    """Return a list kind as villagers say it."""
    return KIND_TEXT.get(kind, kind)


def names(session: Session, village: Village, entry: HonourEntry, mode: str | None = None):
    """Return (public name per the privacy mode, group name, real name for staff) of an entry."""
    home = session.get(Household, entry.household_id)
    group = session.get(Group, home.group_id)
    person = session.get(Resident, entry.resident_id) if entry.resident_id else None
    head = session.get(Resident, home.head_id) if home.head_id else None
    if mode is not None and mode != village.privacy_mode:
        # A list keeps the names of the mode it was published in.
        village = SimpleNamespace(privacy_mode=mode)
    named = person or head
    real = f"{named.name if named else '（未登记）'}（{home.number}户）"
    return display_name(village, home, person, group, head), group.name, real


def get_list(session: Session, *, village: Village, list_id: int) -> HonourList:
    """Return an honour list of the village; raise NotFoundError."""
    item = session.get(HonourList, list_id)
    if item is None or item.village_id != village.id:
        raise NotFoundError("找不到该名单")
    return item


def get_public_list(session: Session, *, village: Village, list_id: int) -> HonourList:
    """Return a list anyone may read (published, withdrawn or superseded); else NotFoundError."""
    item = get_list(session, village=village, list_id=list_id)
    if item.status not in SHOWN:
        raise NotFoundError("找不到该名单")
    return item


def list_lists(
    session: Session, *, village: Village, public: bool = True, year: int | None = None
) -> list[HonourList]:
    """Return the village's honour lists, newest year first; the public sees no drafts."""
    q = select(HonourList).where(HonourList.village_id == village.id)
    if public:
        q = q.where(HonourList.status.in_(SHOWN))
    if year is not None:
        q = q.where(HonourList.year == year)
    return list(session.execute(q.order_by(HonourList.year.desc(), HonourList.id.desc())).scalars())


def list_appeals(session: Session, *, village: Village, status: str | None = None):
    """Return the village's honour appeals, newest first."""
    q = select(HonourAppeal).where(HonourAppeal.village_id == village.id)
    if status:
        q = q.where(HonourAppeal.status == status)
    return list(session.execute(q.order_by(HonourAppeal.id.desc())).scalars())


def public_view(item: HonourList) -> dict:
    """Return a list as anyone may read it: the snapshot, or only the withdrawal notice."""
    view = {
        "id": item.id,
        "kind": item.kind,
        "kind_text": kind_text(item.kind),
        "year": item.year,
        "period": item.period,
        "when": when_text(item),
        "status": item.status,
        "published_at": item.published_at,
        "withdraw_reason": item.withdraw_reason,
        "correction_of": item.correction_of,
        "corrected_by": item.corrected_by,
        "head_seq": item.head_seq,
        "head_hash": item.head_hash,
        "privacy_mode": item.privacy_mode,
        "rule": None,
        "entries": [],
        "correction": None,
    }
    if item.status != HonourStatus.WITHDRAWN and item.snapshot:
        view.update(
            entries=item.snapshot["entries"],
            correction=item.snapshot.get("correction"),
            rule=item.snapshot.get("rule"),
        )
    return view


def staff_view(session: Session, item: HonourList) -> dict:
    """Return a list for staff: every row with its real and public name and removals."""
    view = public_view(item)
    village = session.get(Village, item.village_id)
    view["entries"] = []
    for entry in item.entries:
        who, group, real = names(session, village, entry, item.privacy_mode)
        view["entries"].append(
            {
                "id": entry.id,
                "title": entry.title,
                "source": entry.source,
                "who": who,
                "group": group,
                "name": real,
                "household_id": entry.household_id,
                "stars": entry.stars,
                "score": entry.score,
                "review_score": entry.review_score,
                "text": entry.text,
                "consent_note": entry.consent_note,
                "removed": entry.removed,
                "removed_reason": entry.removed_reason,
            }
        )
    return view


def household_honours(session: Session, *, village: Village, household_id: int) -> list[dict]:
    """Return a household's published honours (as published), newest year first."""
    rows = session.execute(
        select(HonourEntry.id, HonourList)
        .join(
            HonourList,
            (HonourList.id == HonourEntry.list_id)
            & (HonourList.village_id == HonourEntry.village_id),
        )
        .where(
            HonourEntry.village_id == village.id,
            HonourEntry.household_id == household_id,
            HonourEntry.removed.is_(False),
            HonourList.status == HonourStatus.PUBLISHED,
        )
        .order_by(HonourList.year.desc(), HonourList.id)
    ).all()
    out = []
    for entry_id, item in rows:
        frozen = next((e for e in item.snapshot["entries"] if e["id"] == entry_id), None)
        if frozen:
            label = honour_label(item.kind, frozen)
            out.append(
                {
                    **frozen,
                    "year": item.year,
                    "period": item.period,
                    "when": when_text(item),
                    "kind": item.kind,
                    "list_id": item.id,
                    "label": label,
                }
            )
    return out


def public_record(session: Session, *, village: Village, ref: str) -> list[dict]:
    """Return the published honours of the household a plaque's QR names; NotFoundError."""
    household_id = session.execute(
        select(HonourRecord.household_id).where(
            HonourRecord.village_id == village.id, HonourRecord.ref == ref
        )
    ).scalar_one_or_none()
    if household_id is None:
        raise NotFoundError("找不到该荣誉档案")
    return household_honours(session, village=village, household_id=household_id)


def model_roll(session: Session, *, village: Village) -> list[dict]:
    """Return the 道德模范 roll: every published roll's people, newest year first."""
    return [
        {"year": item.year, "list_id": item.id, "entries": item.snapshot["entries"]}
        for item in list_lists(session, village=village)
        if item.kind == HonourKind.MODELS and item.status == HonourStatus.PUBLISHED
    ]


def honour_labels(session: Session, *, village: Village) -> dict[int, list[str]]:
    """Return {household id: ['2025年度 三星级文明户', …]} of every published honour, newest
    year first, in one statement (for statements printed for the whole village)."""
    rows = session.execute(
        select(HonourEntry.household_id, HonourEntry.id, HonourList)
        .join(
            HonourList,
            (HonourList.id == HonourEntry.list_id)
            & (HonourList.village_id == HonourEntry.village_id),
        )
        .where(
            HonourEntry.village_id == village.id,
            HonourEntry.removed.is_(False),
            HonourList.status == HonourStatus.PUBLISHED,
        )
        .order_by(HonourList.year.desc(), HonourList.id)
    ).all()
    out: dict[int, list[str]] = {}
    for household_id, entry_id, item in rows:
        frozen = next((e for e in item.snapshot["entries"] if e["id"] == entry_id), None)
        if frozen:
            out.setdefault(household_id, []).append(
                f"{when_text(item)} {honour_label(item.kind, frozen)}"
            )
    return out


def when_text(item: HonourList) -> str:
    """Return what a list covers as villagers say it: '2025年度' or '2025年第三季度'."""
    return period_label(item.period) if item.period else f"{item.year}年度"


def honour_label(kind: str, frozen: dict) -> str:
    """Return what an entry of a list of `kind` is called: 五星级文明户, 四星党员, 优秀党员…"""
    if frozen["title"] != STARS:
        return frozen["title"]
    number = "零一二三四五"[frozen["stars"] or 0]
    return f"{number}星级文明户" if kind == HonourKind.HOUSEHOLD_STARS else f"{number}星党员"
