"""Event check-in: staff create an event (村民大会, 志愿活动) naming the catalog rule it earns and
who may attend; residents check in once per household by scanning the event's QR on their own
phone, or at the door with their household card, their phone code, or by name; closing the
event turns the attendance into ONE group claim under the rule (points.claims.record_group),
which then goes through review and 公示 as the rule says.

An event earns a rule of the household scheme (once per household) or of the party scheme
(主题党日: party members only, once per person, each earning party points; a card or phone code
at the door stands for the household's only party member).

Guarantees the database keeps: one attendance per household per event, or per person on a
party-scheme event (partial UNIQUE indexes), one group claim per event (closing is a
conditional UPDATE of the event's state, and `batch_id` is UNIQUE), so two clerks scanning
one card or two admins closing at once change nothing twice.
Signing the event's QR belongs to api/: here the QR's secret is a random key on the event.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import exists, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from points.catalog.versions import find_rule
from points.claims.groups import record_group
from points.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from points.models import Group, Household, Resident, Scheme, Village
from points.models.claims import Claim, ClaimBatch
from points.models.events import Attendance, Audience, CheckinMethod, Event, EventGroup, EventState
from points.models.org import ResidentStatus
from points.org.access import Actor
from points.periods import local_date
from points.shop.credentials import consume_nonce, get_live_card

MAX_ID = 2**31 - 1
MAX_HOURS = 24  # one event's check-in window
MAX_SEARCH = 20
METHOD_NAMES = {
    CheckinMethod.SELF: "本人扫码",
    CheckinMethod.CARD: "户卡",
    CheckinMethod.PHONE: "手机码",
    CheckinMethod.NAME: "按姓名",
}
AUDIENCE_NAMES = {Audience.VILLAGE: "全村", Audience.GROUPS: "指定小组", Audience.PARTY: "党员"}


class CheckinClosedError(ConflictError):
    """Check-in outside the event's window, or after it was closed."""

    code = "checkin_not_open"
    message = "现在不在本次活动的签到时间内"


class AlreadyCheckedInError(ConflictError):
    code = "already_checked_in"
    message = "本户已经签到过了，不用重复签到"


class EventWrongVillageError(PermissionDeniedError):
    code = "event_wrong_village"
    message = "这是其他村的活动，不能签到"


class NotInvitedError(PermissionDeniedError):
    code = "not_invited"
    message = "本次活动不在您的参加范围内"


class NotPartyMemberError(NotInvitedError):
    """A party-scheme event: the person (or every member of the household) is no party member."""

    code = "not_party_member"
    message = "本次活动计党员积分，只限党员本人签到"


class MemberRequiredError(ConflictError):
    """A party-scheme event at the door: the household card or phone code names a household
    with several party members, so it cannot say who came; check them in by name."""

    code = "member_required"
    message = "该户有多名党员，请按姓名签到，选择到场的党员"


class PersonAlreadyCheckedInError(AlreadyCheckedInError):
    message = "该党员已经签到过了，不用重复签到"


class EventClosedError(ConflictError):
    code = "event_closed"
    message = "该活动已经结束签到并计分，不能再次结算"


@dataclass(frozen=True)
class Attendee:
    """One row of the attendance list as pages and the API show it."""

    attendance: Attendance
    household_number: str
    name: str | None  # the person who came, when known (a card names only the household)


# --- events ------------------------------------------------------------------------------------


def create_event(
    session: Session,
    *,
    village: Village,
    scheme: Scheme,
    actor: Actor,
    title: str,
    place: str,
    starts_at: datetime,
    ends_at: datetime,
    rule_code: str,
    audience: str,
    group_ids: list[int] | None = None,
    now: datetime,
) -> Event:
    """Create an open event under `scheme` (household, or party: then attendance is per party
    member); its rule must be an award item of that scheme's catalog in force on its day."""
    title, place = (title or "").strip(), (place or "").strip()
    problems: dict[str, list[str]] = {}
    if not title:
        problems["title"] = ["请填写活动名称"]
    if not place:
        problems["place"] = ["请填写地点"]
    if not starts_at < ends_at:
        problems["ends_at"] = ["结束时间要晚于开始时间"]
    elif ends_at - starts_at > timedelta(hours=MAX_HOURS):
        problems["ends_at"] = [f"签到时间不能超过 {MAX_HOURS} 小时"]
    if audience not in set(Audience):
        problems["audience"] = ["参加范围只能是全村、指定小组或党员"]
    groups = sorted(set(group_ids or []))
    if audience == Audience.GROUPS and not groups:
        problems["group_ids"] = ["请至少选择一个小组"]
    if problems:
        raise ValidationError(next(iter(problems.values()))[0], errors=problems)
    if scheme.village_id != village.id:
        raise NotFoundError("本村没有该积分方案")
    held_on = local_date(starts_at)
    if per_person(scheme):
        # Party points go to party members only: the audience is the party, always.
        if audience == Audience.GROUPS:
            raise ValidationError(
                "党员积分活动只限党员参加，不能按小组选择", errors={"audience": ["只能是党员"]}
            )
        audience, groups = Audience.PARTY, []
    _, rule = find_rule(session, scheme=scheme, code=rule_code, on=held_on)  # or NotFoundError
    if rule.sign <= 0:
        raise ValidationError("活动只能选加分项目", errors={"rule_code": ["不是加分项目"]})
    if groups:
        found = session.execute(
            select(func.count()).where(Group.id.in_(groups), Group.village_id == village.id)
        ).scalar_one()
        if found != len(groups):
            raise NotFoundError("有小组不属于本村或不存在")
    event = Event(
        village_id=village.id,
        title=title[:200],
        place=place[:200],
        held_on=held_on,
        starts_at=starts_at,
        ends_at=ends_at,
        scheme_id=scheme.id,
        rule_code=rule_code,
        audience=audience,
        qr_key=secrets.token_hex(16),
        state=EventState.OPEN,
        created_by=actor.user_id,
        created_at=now,
    )
    session.add(event)
    session.flush()
    if audience == Audience.GROUPS:
        session.add_all(
            EventGroup(event_id=event.id, group_id=g, village_id=village.id) for g in groups
        )
        session.flush()
    return event


def per_person(scheme: Scheme) -> bool:
    """True for a scheme whose subject is a person (party points): attendance is per member."""
    return scheme.subject_kind == "resident"


def get_event(session: Session, *, village: Village, event_id: int) -> Event:
    """Return the village's event; raise NotFoundError (another village's is not found)."""
    event = session.get(Event, event_id) if 0 < event_id <= MAX_ID else None
    if event is None or event.village_id != village.id:
        raise NotFoundError("找不到该活动")
    return event


def event_by_key(session: Session, *, village: Village, event_id: int, key: str) -> Event:
    """Return the event an event QR names, or refuse: unknown or replaced key (NotFoundError),
    another village's event (EventWrongVillageError)."""
    event = session.get(Event, event_id) if 0 < event_id <= MAX_ID else None
    if event is None or not secrets.compare_digest(event.qr_key, key or ""):
        raise NotFoundError("无法识别这个活动二维码，请扫描现场张贴的最新二维码")
    if event.village_id != village.id:
        raise EventWrongVillageError()
    return event


def list_events(session: Session, *, village: Village, limit: int = 100) -> list[Event]:
    """Return the village's events, latest first."""
    return list(
        session.execute(
            select(Event)
            .where(Event.village_id == village.id)
            .order_by(Event.starts_at.desc(), Event.id.desc())
            .limit(limit)
        ).scalars()
    )


def event_groups(session: Session, *, event: Event) -> list[Group]:
    """Return the groups invited to an event whose audience is `groups` (else none)."""
    return list(
        session.execute(
            select(Group)
            .join(
                EventGroup,
                (EventGroup.group_id == Group.id) & (EventGroup.village_id == Group.village_id),
            )
            .where(EventGroup.village_id == event.village_id, EventGroup.event_id == event.id)
            .order_by(Group.id)
        ).scalars()
    )


def attendees(session: Session, *, event: Event) -> list[Attendee]:
    """Return the attendance list in check-in order (household number, who came, how)."""
    rows = session.execute(
        select(Attendance, Household.number, Resident.name)
        .join(
            Household,
            (Household.id == Attendance.household_id)
            & (Household.village_id == Attendance.village_id),
        )
        .outerjoin(
            Resident,
            (Resident.id == Attendance.resident_id)
            & (Resident.village_id == Attendance.village_id),
        )
        .where(Attendance.village_id == event.village_id, Attendance.event_id == event.id)
        .order_by(Attendance.checked_in_at, Attendance.id)
    ).all()
    return [Attendee(a, number, name) for a, number, name in rows]


def search_people(session: Session, *, village: Village, query: str) -> list[Resident]:
    """Return active residents of the village whose name contains `query` (walk-ins)."""
    query = (query or "").strip()
    if not query:
        return []
    pattern = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return list(
        session.execute(
            select(Resident)
            .join(
                Household,
                (Household.id == Resident.household_id)
                & (Household.village_id == Resident.village_id),
            )
            .where(
                Resident.village_id == village.id,
                Resident.active.is_(True),
                Household.active.is_(True),
                Resident.name.like(pattern, escape="\\"),
            )
            .order_by(Resident.name, Resident.id)
            .limit(MAX_SEARCH)
        ).scalars()
    )


# --- check-in ----------------------------------------------------------------------------------


def check_in(
    session: Session,
    *,
    event: Event,
    household: Household,
    resident: Resident | None,
    method: str,
    actor_id: int | None,
    now: datetime,
) -> Attendance:
    """Check a household (and the person, when known) in to an event, once.

    Refused outside the window [starts_at, ends_at) or after closing (checkin_not_open), for
    another village (event_wrong_village), for someone the event does not invite (not_invited;
    not_party_member on a party-scheme event), and a second time for the household, or on a
    party-scheme event for the person (already_checked_in: the database's UNIQUE decides).
    On a party-scheme event a household without a named person stands for its one party
    member; with several, member_required (check them in by name).
    """
    if household.village_id != event.village_id or (
        resident is not None and resident.village_id != event.village_id
    ):
        raise EventWrongVillageError()
    if event.state != EventState.OPEN:
        raise CheckinClosedError("本次活动已经结束签到")
    if not event.starts_at <= now < event.ends_at:
        raise CheckinClosedError(
            "现在不在签到时间内（" + _window_text(event) + "）",
            starts_at=event.starts_at.isoformat(),
            ends_at=event.ends_at.isoformat(),
        )
    person = event_per_person(session, event)
    if person:
        resident = _party_member(session, household, resident)
    _invited(session, event, household, resident)
    row = Attendance(
        village_id=event.village_id,
        event_id=event.id,
        household_id=household.id,
        resident_id=resident.id if resident is not None else None,
        per_person=person,
        method=str(method),
        checked_in_by=actor_id,
        checked_in_at=now,
    )
    # The UNIQUE key decides (no read first: two scans of one card at once would both pass a
    # read): one gets in, the other is refused in its savepoint, the rest of its request intact.
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError as exc:
        raise (PersonAlreadyCheckedInError() if person else AlreadyCheckedInError()) from exc
    return row


def event_per_person(session: Session, event: Event) -> bool:
    """True when the event's scheme is a party (per-person) scheme."""
    return per_person(session.get(Scheme, event.scheme_id))


def _party_member(session: Session, household: Household, resident) -> Resident:
    """The party member who attends a party-scheme event: the person named, who must be one,
    or the household's only active party member (a card or phone code names no person)."""
    if resident is not None:
        if not resident.is_party_member:
            raise NotPartyMemberError(f"本次活动计党员积分，{resident.name}不是党员，不能签到")
        return resident
    members = list(
        session.execute(
            select(Resident)
            .where(
                Resident.household_id == household.id,
                Resident.is_party_member.is_(True),
                Resident.active.is_(True),
                Resident.status == ResidentStatus.ACTIVE,
            )
            .order_by(Resident.id)
            .limit(10)
        ).scalars()
    )
    if not members:
        raise NotPartyMemberError("本次活动计党员积分，该户没有党员，不能签到")
    if len(members) > 1:
        names = "、".join(m.name for m in members)
        raise MemberRequiredError(f"该户有多名党员（{names}），请按姓名签到，选择到场的党员")
    return members[0]


def check_in_self(session: Session, *, event: Event, actor: Actor, now: datetime) -> Attendance:
    """Check in the signed-in resident, who scanned the event's QR with their phone."""
    if actor.resident_id is None:
        raise PermissionDeniedError("请用村民账号（手机号 + PIN）登录后扫码签到")
    if actor.village_id != event.village_id:
        raise EventWrongVillageError()
    resident = session.get(Resident, actor.resident_id)
    household = session.get(Household, resident.household_id)
    return check_in(
        session,
        event=event,
        household=household,
        resident=resident,
        method=CheckinMethod.SELF,
        actor_id=actor.user_id,
        now=now,
    )


def check_in_card(
    session: Session, *, event: Event, village: Village, serial: str, actor: Actor, now: datetime
) -> Attendance:
    """Check in the household whose card was scanned at the door (revoked cards refused)."""
    card = get_live_card(session, village=village, serial=serial)
    household = session.get(Household, card.household_id)
    return check_in(
        session,
        event=event,
        household=household,
        resident=None,
        method=CheckinMethod.CARD,
        actor_id=actor.user_id,
        now=now,
    )


def check_in_phone(
    session: Session,
    *,
    event: Event,
    village: Village,
    nonce: str,
    household_id: int,
    actor: Actor,
    now: datetime,
) -> Attendance:
    """Check in the household of a resident's phone code scanned at the door; the code is used
    up like at the shop (single use), so a photo of it cannot check in again."""
    household = session.get(Household, household_id)
    if household is None or household.village_id != village.id:
        raise EventWrongVillageError()
    # Refusals that need no code come first, so a refused scan leaves the code usable.
    member = _party_member(session, household, None) if event_per_person(session, event) else None
    _invited(session, event, household, member)
    consume_nonce(session, village=village, nonce=nonce, household_id=household_id, now=now)
    return check_in(
        session,
        event=event,
        household=household,
        resident=member,
        method=CheckinMethod.PHONE,
        actor_id=actor.user_id,
        now=now,
    )


def check_in_by_name(
    session: Session, *, event: Event, resident_id: int, actor: Actor, now: datetime
) -> Attendance:
    """Check in a walk-in found by name search (the person and their household)."""
    resident = session.get(Resident, resident_id) if 0 < resident_id <= MAX_ID else None
    if resident is None or resident.village_id != event.village_id:
        raise NotFoundError("找不到该村民")
    household = session.get(Household, resident.household_id)
    return check_in(
        session,
        event=event,
        household=household,
        resident=resident,
        method=CheckinMethod.NAME,
        actor_id=actor.user_id,
        now=now,
    )


def _invited(session: Session, event: Event, household: Household, resident) -> None:
    """Raise NotInvitedError unless the event's audience includes this household or person."""
    if not household.active or (
        resident is not None and (not resident.active or resident.status != ResidentStatus.ACTIVE)
    ):
        raise NotInvitedError("该户或该村民已注销，不能签到")
    if event.audience == Audience.GROUPS:
        invited = session.execute(
            select(
                exists().where(
                    EventGroup.event_id == event.id, EventGroup.group_id == household.group_id
                )
            )
        ).scalar_one()
        if not invited:
            names = "、".join(g.name for g in event_groups(session, event=event))
            raise NotInvitedError(f"本次活动只限{names}参加")
    elif event.audience == Audience.PARTY:
        if resident is not None:
            if not resident.is_party_member:
                raise NotInvitedError("本次活动只限党员参加")
            return
        has_member = session.execute(
            select(
                exists().where(
                    Resident.household_id == household.id,
                    Resident.is_party_member.is_(True),
                    Resident.active.is_(True),
                )
            )
        ).scalar_one()
        if not has_member:
            raise NotInvitedError("本次活动只限党员参加，该户没有党员")


def _window_text(event: Event) -> str:
    from points.periods import LOCAL_TZ

    start = event.starts_at.astimezone(LOCAL_TZ)
    end = event.ends_at.astimezone(LOCAL_TZ)
    return f"{start:%m-%d %H:%M}–{end:%H:%M}"


# --- closing -----------------------------------------------------------------------------------


def close_event(
    session: Session, *, event: Event, scheme: Scheme, actor: Actor, now: datetime
) -> tuple[Event, ClaimBatch | None, list[Claim]]:
    """Close check-in and record the attendance as ONE group claim under the event's rule,
    with the attendance list as its evidence; exactly once, whoever else closes at the same
    time (the loser gets event_closed). An event nobody attended closes with no claim."""
    # The conditional UPDATE is the gate: of two closers, the database lets one match the row
    # (PostgreSQL makes the second wait for the first's commit, then finds it closed).
    closed = session.execute(
        update(Event)
        .where(Event.id == event.id, Event.state == EventState.OPEN)
        .values(state=EventState.CLOSED, closed_at=now, closed_by=actor.user_id)
        .execution_options(synchronize_session=False)
    ).rowcount
    if closed != 1:
        raise EventClosedError()
    session.refresh(event)
    present = attendees(session, event=event)
    if not present:
        return event, None, []
    village = session.get(Village, event.village_id)
    if per_person(scheme):
        # A party-scheme event: one group claim whose members are the attending party members.
        who = {"people": [(a.attendance.household_id, a.attendance.resident_id) for a in present]}
    else:
        who = {
            "household_ids": sorted({a.attendance.household_id for a in present}),
            "members": {
                a.attendance.household_id: a.attendance.resident_id
                for a in present
                if a.attendance.resident_id is not None
            },
        }
    batch, claims = record_group(
        session,
        village=village,
        scheme=scheme,
        actor=actor,
        title=event.title,
        rule_code=event.rule_code,
        occurred_on=event.held_on,
        now=now,
        description=attendance_evidence(event, present),
        has_evidence=True,  # the attendance list is the 签到表 the rule may ask for
        **who,
    )
    event.batch_id = batch.id
    session.flush()
    return event, batch, claims


def attendance_evidence(event: Event, present: list[Attendee]) -> str:
    """The attendance list as the claim's description (household numbers only: it is shown on
    the public notice, where names are not; a party event counts people, with their household)."""
    numbers = "、".join(a.household_number for a in present)
    unit = "人" if any(a.attendance.per_person for a in present) else "户"
    return f"{event.title}（{event.place}）签到 {len(present)} {unit}：{numbers}"
