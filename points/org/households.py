"""Keeping the roster true after import: edit a household, move it to another group, change its
head, edit a resident (a phone change moves the resident's sign-in with it), mark a person
moved out or deceased, merge two households or split one (points moved through the ledger).
Nobody is deleted: a person who left keeps their row and their history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from points import ledger
from points.errors import ConflictError, ValidationError
from points.models import Claim, Household, Resident, RoleAssignment, Scheme, User, Village
from points.models.catalog import SubjectKind
from points.models.claims import ClaimStatus
from points.models.org import ResidentStatus
from points.org.operations import PHONE_RE, get_group
from points.org.roster import COLUMNS

STATUS_NAMES = {
    ResidentStatus.ACTIVE: "在册",
    ResidentStatus.MOVED_OUT: "已迁出",
    ResidentStatus.DECEASED: "已去世",
}


def update_household(
    session: Session,
    *,
    village: Village,
    household: Household,
    group_id: int | None = None,
    door_plate: str | None = None,
) -> Household:
    """Change a household's group (move it to another grid) or its door plate."""
    if group_id is not None and group_id != household.group_id:
        household.group_id = get_group(session, village=village, group_id=group_id).id
    if door_plate is not None:
        plate = door_plate.strip()
        if len(plate) > 100:
            raise ValidationError("门牌不能超过 100 个字", errors={"door_plate": ["太长"]})
        household.door_plate = plate or None
    session.flush()
    return household


def set_head(session: Session, *, household: Household, resident: Resident) -> Household:
    """Make a current member of the household its head (户主)."""
    if resident.household_id != household.id:
        raise ValidationError("户主必须是本户成员")
    if resident.status != ResidentStatus.ACTIVE:
        raise ValidationError("已迁出或去世的人不能当户主")
    household.head_id = resident.id
    session.flush()
    return household


def update_resident(
    session: Session,
    *,
    resident: Resident,
    name: str | None = None,
    phone: str | None = None,
    is_party_member: bool | None = None,
    party_branch: str | None = None,
) -> Resident:
    """Change a resident's name, phone or party membership; the sign-in follows the phone."""
    if name is not None:
        name = name.strip()
        if not name or len(name) > 50:
            raise ValidationError("请填写姓名（不超过 50 字）", errors={"name": ["不能为空"]})
        resident.name = name
    if phone is not None:
        phone = phone.strip() or None
        if phone and not PHONE_RE.match(phone):
            raise ValidationError("手机号应为 11 位数字", errors={"phone": ["格式不正确"]})
        if phone and phone != resident.phone:
            taken = (
                session.execute(
                    select(Resident.id).where(Resident.phone == phone, Resident.id != resident.id)
                ).first()
                or session.execute(
                    select(User.id).where(
                        User.phone == phone,
                        (User.resident_id.is_(None)) | (User.resident_id != resident.id),
                    )
                ).first()
            )
            if taken:
                raise ConflictError("该手机号已登记在其他人名下")
        resident.phone = phone
        login = _login_of(session, resident)
        if login is not None:
            # The resident signs in with the new number; with none, phone sign-in stops.
            login.phone = phone
            if phone is None:
                login.pin_hash = None
    if is_party_member is not None:
        resident.is_party_member = is_party_member
    if party_branch is not None:
        resident.party_branch = party_branch.strip() or None
    session.flush()
    return resident


def set_resident_status(session: Session, *, resident: Resident, status: str, on: date) -> Resident:
    """Mark a person moved out (迁出) or deceased (去世), or back in the roll; the row stays.

    A head must be replaced first. The person's resident sign-in is switched off; a staff
    account of theirs keeps its roles (an admin disables it on the accounts page)."""
    if status not in set(ResidentStatus):
        raise ValidationError("状态只能是在册、已迁出或已去世")
    household = session.get(Household, resident.household_id)
    if status != ResidentStatus.ACTIVE and household.head_id == resident.id:
        others = [
            m
            for m in household.members
            if m.id != resident.id and m.status == ResidentStatus.ACTIVE
        ]
        if others:
            raise ValidationError("此人是户主，请先把户主改为本户其他成员")
    resident.status = status
    resident.active = status == ResidentStatus.ACTIVE
    resident.left_on = None if status == ResidentStatus.ACTIVE else on
    login = _login_of(session, resident)
    if login is not None and not _has_roles(session, login):
        login.active = status == ResidentStatus.ACTIVE
    session.flush()
    return resident


@dataclass(frozen=True)
class PointsMoved:
    scheme: str
    points: int


def _household_schemes(session: Session, village: Village) -> list[Scheme]:
    return list(
        session.execute(
            select(Scheme)
            .where(Scheme.village_id == village.id, Scheme.subject_kind == SubjectKind.HOUSEHOLD)
            .order_by(Scheme.id)
        ).scalars()
    )


def merge_households(
    session: Session,
    *,
    village: Village,
    keep: Household,
    absorb: Household,
    actor_id: int | None,
    now: datetime,
) -> list[PointsMoved]:
    """Merge `absorb` into `keep` (合户): its members move over, its open points in every
    household scheme are transferred through the ledger, and it is closed (kept for history;
    its scores stay where they were earned). Returns the points moved per scheme."""
    if keep.id == absorb.id or keep.village_id != village.id or absorb.village_id != village.id:
        raise ValidationError("请选择本村另一户合并")
    if not absorb.active:
        raise ValidationError(f"户号 {absorb.number} 已经注销或合并")
    open_claims = session.execute(
        select(Claim.id).where(
            Claim.household_id == absorb.id,
            Claim.status.in_((ClaimStatus.PENDING_REVIEW, ClaimStatus.IN_NOTICE)),
        )
    ).first()
    if open_claims:
        # They would post to a closed household after its points moved: settle them first.
        raise ValidationError(f"户号 {absorb.number} 还有待审核或公示中的积分事项，处理完后再合户")
    moved = []
    for scheme in _household_schemes(session, village):
        entry = ledger.transfer(
            session,
            scheme=scheme,
            from_subject_id=absorb.id,
            to_subject_id=keep.id,
            points=None,
            idem_key=f"merge:{absorb.id}:{keep.id}:{scheme.id}",
            actor_id=actor_id,
            now=now,
            memo=f"合户：户号 {absorb.number} 并入 {keep.number}，余额转入",
        )
        if entry is not None:
            moved.append(
                PointsMoved(scheme.name, sum(p.amount for p in entry.postings if p.amount > 0))
            )
    for person in list(absorb.members):
        person.household_id = keep.id
    absorb.active = False
    session.flush()
    session.expire(keep, ["members"])
    session.expire(absorb, ["members"])
    return moved


def split_household(
    session: Session,
    *,
    village: Village,
    household: Household,
    members: list[Resident],
    number: str,
    group_id: int,
    door_plate: str | None,
    points: int,
    actor_id: int | None,
    now: datetime,
) -> tuple[Household, PointsMoved | None]:
    """Split members off into a new household (分户), the first of them its head. Points stay
    with the old household unless `points` (of the redeemable scheme) are transferred to the new
    one through the ledger. Returns the new household and what was moved."""
    from points.org.operations import create_household

    chosen = [m for m in members if m.household_id == household.id]
    if not chosen or len(chosen) != len(members):
        raise ValidationError("请勾选本户要分出去的成员")
    if len(chosen) >= len([m for m in household.members if m.status == ResidentStatus.ACTIVE]):
        raise ValidationError("不能把全部成员分出去（原户至少留一人）")
    if household.head_id in {m.id for m in chosen}:
        raise ValidationError("户主不能分出去，请先更换户主")
    if points < 0:
        raise ValidationError("转出积分不能为负数")
    new = create_household(
        session, village=village, group_id=group_id, number=number, door_plate=door_plate
    )
    for person in chosen:
        person.household_id = new.id
    new.head_id = chosen[0].id
    session.flush()
    moved = None
    if points:
        scheme = next((sc for sc in _household_schemes(session, village) if sc.redeemable), None)
        if scheme is None:
            raise ValidationError("本村没有可兑换的户积分方案")
        ledger.transfer(
            session,
            scheme=scheme,
            from_subject_id=household.id,
            to_subject_id=new.id,
            points=points,
            idem_key=f"split:{household.id}:{new.id}:{scheme.id}",
            actor_id=actor_id,
            now=now,
            memo=f"分户：从户号 {household.number} 分出 {new.number}，转入 {points} 分",
        )
        moved = PointsMoved(scheme.name, points)
    session.expire(household, ["members"])
    return new, moved


def residents_for_sign_in(
    session: Session, *, village: Village, q: str = "", limit: int = 300
) -> list[tuple[Resident, bool]]:
    """Return current residents with a phone (searched by name or phone ending), each with
    whether their phone sign-in is open (a PIN set)."""
    stmt = (
        select(Resident)
        .where(
            Resident.village_id == village.id,
            Resident.status == ResidentStatus.ACTIVE,
            Resident.phone.is_not(None),
        )
        .order_by(Resident.household_id, Resident.id)
    )
    if q:
        stmt = stmt.where(Resident.name.like(f"%{q}%") | Resident.phone.like(f"%{q}"))
    people = list(session.execute(stmt.limit(limit)).scalars())
    open_ids = set(
        session.execute(
            select(User.resident_id).where(
                User.resident_id.in_([p.id for p in people]), User.pin_hash.is_not(None)
            )
        ).scalars()
    )
    return [(p, p.id in open_ids) for p in people]


def roster_rows(session: Session, *, village: Village) -> list[dict]:
    """Return the current roster, one row per person in the import sheet's columns (keys of
    COLUMNS), people who left included with their status; phones are masked by the caller."""
    from points.models import Group

    groups = {
        g.id: g.name
        for g in session.execute(select(Group).where(Group.village_id == village.id)).scalars()
    }
    rows = []
    homes = session.execute(
        select(Household).where(Household.village_id == village.id).order_by(Household.number)
    ).scalars()
    for home in homes:
        for person in home.members:
            rows.append(
                {
                    "number": home.number,
                    "group": groups.get(home.group_id, ""),
                    "door_plate": home.door_plate or "",
                    "name": person.name,
                    "is_head": "是" if home.head_id == person.id else "否",
                    "phone": person.phone or "",
                    "is_party_member": "是" if person.is_party_member else "否",
                    "party_branch": person.party_branch or "",
                    "status": STATUS_NAMES.get(person.status, person.status),
                }
            )
    return rows


ROSTER_HEADERS = {**{k: v.rstrip("*") for k, v in COLUMNS.items()}, "status": "状态"}


def _login_of(session: Session, resident: Resident) -> User | None:
    return session.execute(select(User).where(User.resident_id == resident.id)).scalar_one_or_none()


def _has_roles(session: Session, user: User) -> bool:
    return (
        session.execute(select(RoleAssignment.id).where(RoleAssignment.user_id == user.id)).first()
        is not None
    )
