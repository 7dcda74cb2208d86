"""Honour lists after drafting: nominations, approval by someone else, publication as a frozen
snapshot with the ledger head, withdrawal with a notice, appeals and corrections; reads.

The machinery is the 红黑榜's (docs/decisions/0005-boards.md): a published list's snapshot has
names already written per the village's privacy mode and the chain head at that moment; pages
and PDFs render only the snapshot. An upheld appeal publishes a correction (a new list with the
entry changed or taken off, the current head) and marks the original `superseded`.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from points import ledger
from points.boards import ConflictOfInterestError
from points.db import lock_village
from points.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from points.honours.designate import barred_in_year, scheme_of
from points.honours.reads import names, when_text
from points.honours.rules import MODEL, TITLES, honour_rules, rule_text
from points.models import Household, Resident, Village
from points.models.honours import (
    HonourAppeal,
    HonourEntry,
    HonourKind,
    HonourList,
    HonourRecord,
    HonourStatus,
)
from points.models.org import Role
from points.org.access import Actor

NOMINATORS = (Role.ADMIN, Role.REVIEWER)  # the 村两委 and the review group
_COPIED = (
    "title",
    "source",
    "household_id",
    "resident_id",
    "score",
    "review_score",
    "stars",
    "text",
    "consent_note",
    "created_by",
)


def _require(item: HonourList, status: HonourStatus, doing: str) -> None:
    if item.status != status:
        raise ConflictError(f"该名单当前状态不能{doing}", reason="wrong_status", status=item.status)


# --- editing a draft ---------------------------------------------------------------------------


def nominate(
    session: Session,
    *,
    item: HonourList,
    actor: Actor,
    household_id: int,
    title: str,
    text: str,
    resident_id: int | None = None,
    consent_note: str | None = None,
) -> HonourEntry:
    """Add a nomination by the 村两委 or the review group to a draft 表彰 or 道德模范 list."""
    village = session.get(Village, item.village_id)
    actor.require(village, *NOMINATORS)
    _require(item, HonourStatus.DRAFT, "修改")
    allowed = {HonourKind.AWARDS: TITLES, HonourKind.MODELS: (MODEL,)}.get(item.kind)
    if not allowed:
        raise ConflictError("星级由积分评定，不能推荐；有误请走申诉更正", reason="not_nominable")
    if title not in allowed:
        raise ValidationError("荣誉称号不对", errors={"title": [f"应为{'、'.join(allowed)}"]})
    household = session.get(Household, household_id)
    if household is None or household.village_id != village.id:
        raise NotFoundError("找不到该农户")
    person = session.get(Resident, resident_id) if resident_id is not None else None
    if resident_id is not None and (person is None or person.household_id != household.id):
        raise ValidationError("该村民不是这户的成员", errors={"resident_id": ["不属于该户"]})
    if title != "最美家庭" and person is None:
        raise ValidationError("请选择受表彰的村民", errors={"resident_id": ["不能为空"]})
    if title == "优秀党员" and not person.is_party_member:
        raise ValidationError("优秀党员须是党员", errors={"resident_id": ["不是党员"]})
    if title == MODEL and not (consent_note or "").strip():
        # The roll names people in public for years: their agreement is recorded first.
        raise ValidationError("请记录本人同意公开表彰的情况", errors={"consent_note": ["不能为空"]})
    if not (text or "").strip():
        raise ValidationError("请写明事迹", errors={"text": ["不能为空"]})
    _not_vetoed(session, village, item.year, household.id, person)
    entry = HonourEntry(
        village_id=village.id,
        list_id=item.id,
        title=title,
        source="nomination",
        household_id=household.id,
        resident_id=person.id if person else None,
        text=text.strip()[:500],
        consent_note=(consent_note or "").strip()[:500] or None,
        removed=False,
        created_by=actor.user_id,
    )
    session.add(entry)
    session.flush()
    session.refresh(item)
    return entry


def _not_vetoed(session, village: Village, year: int, household_id: int, person) -> None:
    """Refuse an honour for a household or member a 一票否决 bars this year."""
    for kind, subject in (("household", household_id), ("resident", person and person.id)):
        scheme = scheme_of(session, village, kind)
        if scheme is None or subject is None:
            continue
        reason = barred_in_year(session, scheme, year).get(subject)
        if reason:
            raise ConflictError(f"因一票否决，本年度不能评先评优：{reason}", reason="vetoed")


def get_entry(session: Session, *, item: HonourList, entry_id: int) -> HonourEntry:
    """Return an entry of the list; raise NotFoundError."""
    entry = session.get(HonourEntry, entry_id)
    if entry is None or entry.list_id != item.id:
        raise NotFoundError("找不到该名单条目")
    return entry


def remove_entry(
    session: Session, *, item: HonourList, actor: Actor, entry_id: int, reason: str
) -> HonourEntry:
    """Take an entry off a draft; the row stays with the reason."""
    actor.require(session.get(Village, item.village_id), Role.ADMIN)
    _require(item, HonourStatus.DRAFT, "修改")
    entry = get_entry(session, item=item, entry_id=entry_id)
    if not (reason or "").strip():
        raise ValidationError("请写明移除理由", errors={"reason": ["不能为空"]})
    entry.removed, entry.removed_reason, entry.removed_by = True, reason.strip(), actor.user_id
    session.flush()
    return entry


# --- approval, publication, withdrawal -----------------------------------------------------------


def approve_list(
    session: Session, *, item: HonourList, actor: Actor | None, now: datetime
) -> HonourList:
    """Approve a draft: by an admin who neither drafted it nor nominated anyone on it."""
    if actor is not None:
        actor.require(session.get(Village, item.village_id), Role.ADMIN)
    _require(item, HonourStatus.DRAFT, "审定")
    if actor is not None:
        nominated = any(
            e.created_by == actor.user_id and e.source == "nomination" and not e.removed
            for e in item.entries
        )
        if item.created_by == actor.user_id or nominated:
            raise PermissionDeniedError(
                "起草或推荐本名单的人不能审定本名单（起草与审定分离）", reason="maker_checker"
            )
    item.status = HonourStatus.APPROVED
    item.approved_at, item.approved_by = now, actor.user_id if actor else None
    session.flush()
    return item


def record_ref(session: Session, *, village: Village, household_id: int) -> str:
    """Return the household's public honour record reference, creating it once."""
    ref = session.execute(
        select(HonourRecord.ref).where(
            HonourRecord.village_id == village.id, HonourRecord.household_id == household_id
        )
    ).scalar_one_or_none()
    if ref is None:
        ref = secrets.token_urlsafe(9)  # 12 characters; unguessable, so no enumeration
        session.add(HonourRecord(village_id=village.id, household_id=household_id, ref=ref))
        session.flush()
    return ref


def publish_list(
    session: Session, *, item: HonourList, actor: Actor | None, now: datetime
) -> HonourList:
    """Publish an approved list: names frozen per the privacy mode, the ledger head printed."""
    village = session.get(Village, item.village_id)
    if actor is not None:
        actor.require(village, Role.ADMIN)
    _require(item, HonourStatus.APPROVED, "发布")
    lock_village(session, village.id)
    seq, hash_ = ledger.chain_head(session, village.id)
    entries = []
    for entry in item.entries:
        if entry.removed:
            continue
        who, group, _real = names(session, village, entry)
        entries.append(
            _item(
                entry,
                who,
                group,
                record_ref(session, village=village, household_id=entry.household_id),
            )
        )
    party = scheme_of(session, village, "resident")
    item.snapshot = {
        "village": {"code": village.code, "name": village.name},
        "kind": item.kind,
        "year": item.year,
        "period": item.period,
        "privacy_mode": village.privacy_mode,
        "rule": rule_text(honour_rules(party.honour_rules if party else None))
        if item.kind == HonourKind.PARTY_STARS
        else None,
        "head": {"seq": seq, "hash": hash_},
        "published_at": now.isoformat(),
        "entries": entries,
        "correction": None,
    }
    item.status = HonourStatus.PUBLISHED
    item.published_at, item.published_by = now, actor.user_id if actor else None
    item.head_seq, item.head_hash, item.privacy_mode = seq, hash_, village.privacy_mode
    session.flush()
    return item


def _item(entry: HonourEntry, who: str, group: str, ref: str) -> dict:
    return {
        "id": entry.id,
        "title": entry.title,
        "who": who,
        "group": group,
        "stars": entry.stars,
        "score": entry.score,
        "review_score": entry.review_score,
        "text": entry.text,
        "record": ref,
    }


def withdraw_list(
    session: Session, *, item: HonourList, actor: Actor, reason: str, now: datetime
) -> HonourList:
    """Withdraw a published list; a notice with the reason stays where it was."""
    actor.require(session.get(Village, item.village_id), Role.ADMIN)
    _require(item, HonourStatus.PUBLISHED, "撤回")
    if not (reason or "").strip():
        raise ValidationError("撤回必须写明理由", errors={"reason": ["不能为空"]})
    item.status = HonourStatus.WITHDRAWN
    item.withdrawn_at, item.withdrawn_by, item.withdraw_reason = now, actor.user_id, reason.strip()
    session.flush()
    return item


# --- appeals and corrections ---------------------------------------------------------------------


def appeal(
    session: Session, *, item: HonourList, entry_id: int, actor: Actor, reason: str, now: datetime
) -> HonourAppeal:
    """A resident appeals an entry about their own household on a published list."""
    village = session.get(Village, item.village_id)
    actor.require(village, Role.RESIDENT)
    _require(item, HonourStatus.PUBLISHED, "申诉")
    entry = get_entry(session, item=item, entry_id=entry_id)
    if entry.removed:
        raise NotFoundError("找不到该名单条目")
    if actor.household_id != entry.household_id:
        raise PermissionDeniedError("只能对涉及自己家庭的条目提出申诉")
    if not (reason or "").strip():
        raise ValidationError("请写明申诉理由", errors={"reason": ["不能为空"]})
    taken = session.execute(
        select(HonourAppeal.id).where(
            HonourAppeal.entry_id == entry.id, HonourAppeal.status == "open"
        )
    ).first()
    if taken:
        raise ConflictError("对该条目的申诉正在处理中", reason="appeal_open")
    out = HonourAppeal(
        village_id=village.id,
        list_id=item.id,
        entry_id=entry.id,
        raised_by=actor.user_id,
        reason=reason.strip()[:2000],
        status="open",
        created_at=now,
    )
    session.add(out)
    session.flush()
    return out


def resolve_appeal(
    session: Session,
    *,
    appeal: HonourAppeal,
    actor: Actor,
    uphold: bool,
    resolution: str,
    now: datetime,
    stars: int | None = None,
) -> HonourAppeal:
    """Dismiss an appeal, or uphold it: a correction with the entry's stars set to `stars`
    (None: the entry taken off) supersedes the list."""
    village = session.get(Village, appeal.village_id)
    actor.require(village, Role.ADMIN, Role.REVIEWER)
    entry = session.get(HonourEntry, appeal.entry_id)
    if actor.household_id is not None and actor.household_id == entry.household_id:
        raise ConflictOfInterestError(household_id=entry.household_id, doing="处理申诉")
    if appeal.status != "open":
        raise ConflictError("该申诉已经处理过了", reason="appeal_resolved")
    if not (resolution or "").strip():
        raise ValidationError("请写明处理意见", errors={"resolution": ["不能为空"]})
    if stars is not None and not 0 <= stars <= 5:
        raise ValidationError("星级应为 0–5", errors={"stars": ["应为 0–5"]})
    appeal.resolution, appeal.resolved_by, appeal.resolved_at = (
        resolution.strip(),
        actor.user_id,
        now,
    )
    if not uphold:
        appeal.status = "dismissed"
        session.flush()
        return appeal
    item = session.get(HonourList, appeal.list_id)
    if item.status != HonourStatus.PUBLISHED:
        raise ConflictError("该名单已撤回或已更正", reason="list_not_live")
    appeal.status = "upheld"
    fixed = correct_list(
        session,
        item=item,
        entry=entry,
        stars=stars,
        reason=resolution.strip(),
        actor=actor,
        now=now,
    )
    appeal.correction_list_id = fixed.id
    session.flush()
    return appeal


def correct_list(
    session: Session,
    *,
    item: HonourList,
    entry: HonourEntry,
    stars: int | None,
    reason: str,
    actor: Actor,
    now: datetime,
) -> HonourList:
    """Publish a correction of a list: one entry's stars changed (or the entry taken off when
    `stars` is None or 0); the original stays, superseded. Other names come from its snapshot."""
    lock_village(session, item.village_id)
    seq, hash_ = ledger.chain_head(session, item.village_id)
    item.status = HonourStatus.SUPERSEDED  # the live index allows one published list
    session.flush()
    fixed = HonourList(
        village_id=item.village_id,
        kind=item.kind,
        year=item.year,
        period=item.period,
        status=HonourStatus.PUBLISHED,
        created_at=now,
        created_by=actor.user_id,
        approved_at=now,
        approved_by=actor.user_id,
        published_at=now,
        published_by=actor.user_id,
        head_seq=seq,
        head_hash=hash_,
        privacy_mode=item.privacy_mode,
        correction_of=item.id,
        snapshot={},
    )
    session.add(fixed)
    session.flush()
    drop = not stars
    new_ids = {}
    for old in item.entries:
        if old.removed:
            continue
        copy = HonourEntry(village_id=old.village_id, list_id=fixed.id, removed=False)
        for name in _COPIED:
            setattr(copy, name, getattr(old, name))
        if old.id == entry.id:
            if drop:
                copy.removed, copy.removed_reason, copy.removed_by = True, reason, actor.user_id
            else:
                copy.stars = stars
                copy.text = f"{when_text(item)}{stars}星（经申诉更正）"
        session.add(copy)
        session.flush()
        new_ids[old.id] = copy
    snap = dict(item.snapshot)
    items = []
    for frozen in item.snapshot["entries"]:
        copy = new_ids.get(frozen["id"])
        if copy is None or copy.removed:
            continue
        items.append({**frozen, "id": copy.id, "stars": copy.stars, "text": copy.text})
    snap.update(
        entries=items,
        head={"seq": seq, "hash": hash_},
        published_at=now.isoformat(),
        correction={"of": item.id, "reason": reason, "head_of_original": item.snapshot["head"]},
    )
    fixed.snapshot = snap
    item.corrected_by = fixed.id
    session.flush()
    session.refresh(fixed)
    return fixed
