"""The organisation: villages, groups, households, residents and staff users."""

from __future__ import annotations

import re
from collections import namedtuple
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, bindparam, func, literal, or_, select, true
from sqlalchemy.orm import Session, joinedload

from points.auth import check_new_pin, hash_password, revoke_all_sessions, unlock
from points.db import utcnow
from points.direct import Direct
from points.effective import VILLAGE_SETTINGS, change_settings
from points.errors import ConflictError, NotFoundError, ValidationError
from points.models import Group, Household, Resident, RoleAssignment, Scheme, User, Village
from points.models.org import PrivacyMode, Role
from points.org.access import SIGN_IN_BY_TOKEN_ROWS, Actor, SignedIn, signed_in_from_rows
from points.periods import local_date

CODE_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,31}$")
PHONE_RE = re.compile(r"^1\d{10}$")


def mask_phone(phone: str | None) -> str | None:
    """Return a phone number as shown anywhere: 138****5678."""
    if not phone:
        return None
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 7 else "****"


def mask_name(name: str) -> str:
    """Return a name as printed in masked mode: 张*三, 李*."""
    if len(name) <= 1:
        return name
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


# --- villages and groups -----------------------------------------------------------------------


def get_village(session: Session, code: str) -> Village:
    """Return the village with this code; raise NotFoundError."""
    village = find_village(session, code)
    if village is None:
        raise village_not_found(code)
    return village


def find_village(session: Session, code: str) -> Village | None:
    """Return the village with this code, or None."""
    # The schemes come in the same statement: most requests on a village then need one.
    return session.execute(_VILLAGE_BY_CODE, {"code": code}).unique().scalar_one_or_none()


# Built once (every village request runs it): building costs about what running it costs.
_VILLAGE_BY_CODE = (
    select(Village).options(joinedload(Village.schemes)).where(Village.code == bindparam("code"))
)


_VILLAGE_COLUMNS = tuple(Village.__table__.c)
_SCHEME_COLUMNS = tuple(Scheme.__table__.c)
SchemeRow = namedtuple("SchemeRow", [c.key for c in _SCHEME_COLUMNS])  # noqa: PYI024


_VILLAGE_KEYS = tuple(c.key for c in _VILLAGE_COLUMNS)


class VillageRow(namedtuple("VillageValues", [*_VILLAGE_KEYS, "schemes"])):  # noqa: PYI024
    """A village and its schemes read as plain values, for a request that only reads them
    (recording): no ORM objects to load. Has the columns of `villages` by name (id, code,
    town, …) and `schemes`, each a `SchemeRow` with the columns of `schemes`, by id."""

    __slots__ = ()

    def scheme(self, code: str) -> SchemeRow:
        """Return the village's scheme with this code; raise NotFoundError."""
        for scheme in self.schemes:
            if scheme.code == code:
                return scheme
        raise NotFoundError(f"本村没有积分方案 {code}")


_VILLAGE_ROWS = (
    select(*_VILLAGE_COLUMNS, *_SCHEME_COLUMNS)
    .select_from(Village.__table__)
    .outerjoin(Scheme.__table__, Scheme.__table__.c.village_id == Village.__table__.c.id)
    .where(Village.__table__.c.code == bindparam("code"))
)
_VILLAGE_ROWS_BY_CODE = _VILLAGE_ROWS.order_by(Scheme.__table__.c.id)


def get_village_row(session: Session, code: str) -> VillageRow:
    """`get_village` as plain values (one statement, the schemes with it); NotFoundError."""
    rows = session.connection().execute(_VILLAGE_ROWS_BY_CODE, {"code": code}).all()
    if not rows:
        raise village_not_found(code)
    return _village_row(rows)


def village_not_found(code: str) -> NotFoundError:
    """The refusal for a village code that names no village."""
    return NotFoundError(f"找不到村庄 {code}", code_value=code)


def _village_row(rows, start: int = 0) -> VillageRow:
    # `_VILLAGE_ROWS` from column `start` on: the village's columns, then one scheme's per row.
    width = start + len(_VILLAGE_COLUMNS)
    schemes = tuple(SchemeRow(*row[width:]) for row in rows if row[width] is not None)
    return VillageRow(*rows[0][start:width], schemes)


def _signed_in_at_village():
    # A bearer token's sign-in rows beside the village's rows: one row per (role assignment,
    # scheme), each side NULL when it found nothing (the LEFT JOINs from a one-row table).
    token = SIGN_IN_BY_TOKEN_ROWS.subquery("t")
    village = _VILLAGE_ROWS.subquery("v")
    one = select(literal(1).label("one")).subquery("o")
    order = token.c.role_order
    scheme_id = village.c[len(_VILLAGE_COLUMNS)]
    return (
        select(*token.c, *village.c)
        .select_from(one.outerjoin(token, true()).outerjoin(village, true()))
        .order_by(order, scheme_id)
    )


_SIGNED_IN_AT_VILLAGE = Direct(_signed_in_at_village())
_TOKEN_WIDTH = len(SIGN_IN_BY_TOKEN_ROWS.selected_columns)


def find_signed_in_at_village(
    session: Session, *, token_hash: str, code: str
) -> tuple[SignedIn | None, VillageRow | None]:
    """`access.find_signed_in(token_hash=…)` and `get_village_row(code)` in one statement (a
    recording's first round trip does both): the signed-in user or None, the village or None.
    The caller checks the token's life, and refuses a missing village after the sign-in."""
    rows = _SIGNED_IN_AT_VILLAGE.rows(
        session.connection(), {"token_hash": token_hash, "code": code}
    )
    width = _TOKEN_WIDTH
    # Each role's row repeats once per scheme and each scheme's once per role: keep the first.
    roles = {row[width - 1]: row[: width - 1] for row in rows if row[0] is not None}
    schemes = {row[width + len(_VILLAGE_COLUMNS)]: row for row in rows}
    signed_in = signed_in_from_rows(list(roles.values()), token=True)
    village = _village_row(list(schemes.values()), width) if rows[0][width] is not None else None
    return signed_in, village


def create_village(
    session: Session,
    *,
    code: str,
    name: str,
    town: str,
    county: str,
    privacy_mode: str = PrivacyMode.MASKED,
) -> Village:
    """Create a village (tenant); its code appears in public URLs."""
    if not CODE_RE.match(code or ""):
        raise ValidationError(
            "村庄编码只能用小写字母、数字和连字符（2–32 位）", errors={"code": ["格式不正确"]}
        )
    if find_village(session, code):
        raise ConflictError(f"村庄编码 {code} 已被使用")
    village = Village(code=code, name=name, town=town, county=county, privacy_mode=privacy_mode)
    session.add(village)
    session.flush()
    return village


def update_village(
    session: Session, *, village: Village, now: datetime | None = None, **changes
) -> Village:
    """Change a village's name or privacy mode (the latter from today, as a dated setting)."""
    if "privacy_mode" in changes and changes["privacy_mode"] not in set(PrivacyMode):
        raise ValidationError("隐私模式只能是 named、masked 或 group")
    dated = {k: changes.pop(k) for k in VILLAGE_SETTINGS if k in changes}
    if dated:
        now = now or utcnow()
        today = local_date(now)
        change_settings(
            session,
            target=village,
            wanted=dated,
            effective_from=today,
            today=today,
            actor_id=None,
            now=now,
        )
    for key, value in changes.items():
        setattr(village, key, value)
    session.flush()
    return village


def list_villages(session: Session, *, actor: Actor) -> list[Village]:
    """Return the villages where the actor holds any role."""
    villages = session.execute(select(Village).order_by(Village.code)).scalars().all()
    return [v for v in villages if actor.roles_in(v)]


def list_groups(session: Session, *, village: Village) -> list[Group]:
    """Return the village's groups by name."""
    return list(
        session.execute(
            select(Group).where(Group.village_id == village.id).order_by(Group.id)
        ).scalars()
    )


def create_group(session: Session, *, village: Village, name: str) -> Group:
    """Create a group (村民小组 / 网格) in the village."""
    name = (name or "").strip()
    if not name:
        raise ValidationError("请填写小组名称", errors={"name": ["不能为空"]})
    exists = session.execute(
        select(Group.id).where(Group.village_id == village.id, Group.name == name)
    ).first()
    if exists:
        raise ConflictError(f"小组“{name}”已存在")
    group = Group(village_id=village.id, name=name)
    session.add(group)
    session.flush()
    return group


def get_group(session: Session, *, village: Village, group_id: int) -> Group:
    """Return a group of the village; raise NotFoundError."""
    group = session.get(Group, group_id)
    if group is None or group.village_id != village.id:
        raise NotFoundError("找不到该小组")
    return group


# --- households and residents ----------------------------------------------------------------


def list_households(
    session: Session,
    *,
    village: Village,
    actor: Actor,
    q: str | None = None,
    group_id: int | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[Household], int]:
    """Return the households the actor may see (searched by number, door plate or member name)."""
    stmt = select(Household).where(
        Household.village_id == village.id, actor.household_scope(village)
    )
    if group_id is not None:
        stmt = stmt.where(Household.group_id == group_id)
    if q:
        like = f"%{q.strip()}%"
        members = select(Resident.household_id).where(
            Resident.village_id == village.id, Resident.name.like(like)
        )
        stmt = stmt.where(
            or_(
                Household.number.like(like),
                Household.door_plate.like(like),
                Household.id.in_(members),
            )
        )
    total = session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    rows = session.execute(stmt.order_by(Household.number).limit(limit).offset(offset)).scalars()
    return list(rows), total


def get_household(session: Session, *, village: Village, household_id: int) -> Household:
    """Return a household of the village; raise NotFoundError."""
    home = session.get(Household, household_id)
    if home is None or home.village_id != village.id:
        raise NotFoundError("找不到该农户")
    return home


def create_household(
    session: Session,
    *,
    village: Village,
    group_id: int,
    number: str,
    door_plate: str | None = None,
) -> Household:
    """Create a household (一户一档) in one of the village's groups."""
    get_group(session, village=village, group_id=group_id)
    number = (number or "").strip()
    if not number:
        raise ValidationError("请填写户号", errors={"number": ["不能为空"]})
    if session.execute(
        select(Household.id).where(Household.village_id == village.id, Household.number == number)
    ).first():
        raise ConflictError(f"户号 {number} 已存在")
    home = Household(village_id=village.id, group_id=group_id, number=number, door_plate=door_plate)
    session.add(home)
    session.flush()
    return home


def add_resident(
    session: Session,
    *,
    village: Village,
    household: Household,
    name: str,
    phone: str | None = None,
    is_party_member: bool = False,
    party_branch: str | None = None,
    is_head: bool = False,
) -> Resident:
    """Add a person to a household; the phone is checked and stored, never shown in full."""
    name = (name or "").strip()
    if not name or len(name) > 50:
        raise ValidationError("请填写姓名（不超过 50 字）", errors={"name": ["不能为空"]})
    if phone and not PHONE_RE.match(phone):
        raise ValidationError("手机号应为 11 位数字", errors={"phone": ["格式不正确"]})
    person = Resident(
        village_id=village.id,
        household_id=household.id,
        name=name,
        phone=phone or None,
        is_party_member=is_party_member,
        party_branch=party_branch,
    )
    session.add(person)
    session.flush()
    if is_head or household.head_id is None:
        household.head_id = person.id
        session.flush()
    return person


def get_resident(session: Session, *, village: Village, resident_id: int) -> Resident:
    """Return a resident of the village; raise NotFoundError."""
    person = session.get(Resident, resident_id)
    if person is None or person.village_id != village.id:
        raise NotFoundError("找不到该村民")
    return person


def list_residents(
    session: Session, *, village: Village, actor: Actor, party_only: bool = False
) -> list[Resident]:
    """Return residents of the households the actor may see."""
    stmt = (
        select(Resident)
        .join(
            Household,
            and_(
                Household.id == Resident.household_id, Household.village_id == Resident.village_id
            ),
        )
        .where(Resident.village_id == village.id, actor.household_scope(village))
        .order_by(Resident.id)
    )
    if party_only:
        stmt = stmt.where(Resident.is_party_member.is_(True))
    return list(session.execute(stmt).scalars())


# --- users -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewUser:
    username: str
    display_name: str
    password: str
    role: str
    group_id: int | None = None


def create_staff_user(
    session: Session, *, village: Village, new: NewUser, resident_id: int | None = None
) -> User:
    """Create a staff user with one role in the village (recorders may be scoped to a group)."""
    if new.role not in {Role.ADMIN, Role.REVIEWER, Role.RECORDER, Role.CLERK}:
        raise ValidationError(
            "角色只能是 admin、reviewer、recorder 或 clerk", errors={"role": ["不支持的角色"]}
        )
    if len(new.password or "") < 8:
        raise ValidationError("密码至少 8 位", errors={"password": ["太短"]})
    if not re.match(r"^[A-Za-z0-9_.-]{3,64}$", new.username or ""):
        raise ValidationError(
            "用户名只能用字母、数字、下划线、点和连字符（3–64 位）",
            errors={"username": ["格式不正确"]},
        )
    if session.execute(select(User.id).where(User.username == new.username)).first():
        raise ConflictError(f"用户名 {new.username} 已被使用")
    if new.group_id is not None:
        get_group(session, village=village, group_id=new.group_id)
    if resident_id is not None:
        get_resident(session, village=village, resident_id=resident_id)
    user = User(
        username=new.username,
        display_name=new.display_name,
        password_hash=hash_password(new.password),
        resident_id=resident_id,
    )
    user.roles.append(
        RoleAssignment(
            role=new.role,
            village_id=village.id,
            group_id=new.group_id if new.role == Role.RECORDER else None,
        )
    )
    session.add(user)
    session.flush()
    return user


def list_users(session: Session, *, village: Village) -> list[User]:
    """Return the users holding a role in the village, or living in it."""
    return list_users_query(session, village=village)


def list_users_query(
    session: Session, *, village: Village, user_id: int | None = None
) -> list[User]:
    """Return the village's users (one of them when `user_id` is given), by id."""
    role_users = select(RoleAssignment.user_id).where(RoleAssignment.village_id == village.id)
    residents = select(Resident.id).where(Resident.village_id == village.id)
    query = select(User).where(or_(User.id.in_(role_users), User.resident_id.in_(residents)))
    if user_id is not None:
        query = query.where(User.id == user_id)
    return list(session.execute(query.order_by(User.id)).scalars())


def set_resident_pin(
    session: Session, *, village: Village, resident: Resident, pin: str, now: datetime
) -> User:
    """Set (or reset) the 6-digit PIN a resident signs in with, by phone number.

    A weak PIN is refused (WeakPinError). A reset ends the resident's page sessions, revokes
    their bearer tokens and lifts a sign-in lockout: whoever knew the old PIN is out.
    """
    check_new_pin(pin, phone=resident.phone)
    if not resident.phone:
        raise ValidationError("该村民没有登记手机号，无法开通手机登录")
    user = session.execute(select(User).where(User.resident_id == resident.id)).scalar_one_or_none()
    clash = session.execute(select(User).where(User.phone == resident.phone)).scalar_one_or_none()
    if clash is not None and clash is not user:
        raise ConflictError("该手机号已被其他账号使用")
    if user is None:
        user = User(display_name=resident.name, resident_id=resident.id, created_at=now)
        session.add(user)
    else:
        revoke_all_sessions(session, user=user, now=now)
        unlock(session, user=user)
    user.phone = resident.phone
    user.pin_hash = hash_password(pin)
    session.flush()
    return user


def get_user(session: Session, *, village: Village, user_id: int) -> User:
    """Return a user holding a role in the village or living in it; raise NotFoundError."""
    found = list_users_query(session, village=village, user_id=user_id)
    if not found:
        raise NotFoundError("找不到该账号", user_id=user_id)
    return found[0]


def unlock_user(session: Session, *, village: Village, user_id: int) -> User:
    """Lift a user's sign-in lockout and clear their failure count (an admin's unlock)."""
    user = get_user(session, village=village, user_id=user_id)
    unlock(session, user=user)
    return user
