"""Keeping the roster true after import: edit a household, move it to another group, change its
head, edit a resident (a phone change moves the resident's sign-in with it), and mark a person
moved out or deceased. Nobody is deleted: a person who left keeps their row and their history."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from points.errors import ConflictError, ValidationError
from points.models import Household, Resident, RoleAssignment, User, Village
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
