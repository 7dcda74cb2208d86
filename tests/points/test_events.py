"""Event check-in in the domain: the window's edges with the time passed in, the database's
UNIQUE key as the last word on "once per household", and closing exactly once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.exc import IntegrityError

from points import events
from points.models.events import Attendance, CheckinMethod
from tests.api.conftest import CLAIM_RULES
from tests.factories import adopt_catalog, make_household, make_scheme, make_village
from tests.shop_factories import make_actor, resident_actor


@pytest.fixture
def meeting(session, now):
    village = make_village(session)
    scheme = make_scheme(session, village)
    adopt_catalog(session, scheme, CLAIM_RULES, now=now - timedelta(days=30))
    admin = make_actor(session, village, "admin")
    event = events.create_event(
        session,
        village=village,
        scheme=scheme,
        actor=admin,
        title="村民大会",
        place="礼堂",
        starts_at=now,
        ends_at=now + timedelta(hours=2),
        rule_code="ZZ-09",
        audience="village",
        now=now - timedelta(days=1),
    )
    homes = [make_household(session, village) for _ in range(2)]
    return village, scheme, admin, event, homes


def test_the_window_opens_at_its_start_and_is_shut_at_its_end(session, now, meeting):
    _village, _scheme, _admin, event, homes = meeting
    for moment in (now - timedelta(seconds=1), now + timedelta(hours=2)):
        with pytest.raises(events.CheckinClosedError) as refused:
            events.check_in_self(
                session, event=event, actor=resident_actor(session, homes[0]), now=moment
            )
        assert refused.value.code == "checkin_not_open"
    row = events.check_in_self(
        session, event=event, actor=resident_actor(session, homes[0]), now=now
    )
    assert row.method == CheckinMethod.SELF and row.resident_id == homes[0].head_id


def test_the_database_refuses_a_second_attendance_of_a_household(session, now, meeting):
    village, _scheme, _admin, event, homes = meeting
    for _ in range(2):  # as two racing requests would, past any check in Python
        session.add(
            Attendance(
                village_id=village.id,
                event_id=event.id,
                household_id=homes[0].id,
                method="card",
                checked_in_at=now,
            )
        )
    with pytest.raises(IntegrityError):
        session.flush()


def test_a_second_scan_is_refused_and_the_first_stays(session, now, meeting):
    _village, _scheme, admin, event, homes = meeting
    events.check_in_by_name(
        session, event=event, resident_id=homes[0].members[1].id, actor=admin, now=now
    )
    with pytest.raises(events.AlreadyCheckedInError):
        events.check_in_self(session, event=event, actor=resident_actor(session, homes[0]), now=now)
    assert [a.name for a in events.attendees(session, event=event)] == [homes[0].members[1].name]


def test_closing_records_one_group_claim_once(session, now, meeting):
    _village, scheme, admin, event, homes = meeting
    for home in homes:
        events.check_in_by_name(
            session, event=event, resident_id=home.head_id, actor=admin, now=now
        )
    later = now + timedelta(hours=3)
    event, batch, claims = events.close_event(
        session, event=event, scheme=scheme, actor=admin, now=later
    )
    assert batch.grouped and event.batch_id == batch.id
    assert sorted(c.household_id for c in claims) == sorted(h.id for h in homes)
    assert all(c.status == "in_notice" for c in claims)
    # Each household's claim names the member who came (shown on its history).
    assert {c.household_id: c.resident_id for c in claims} == {h.id: h.head_id for h in homes}
    with pytest.raises(events.EventClosedError):
        events.close_event(session, event=event, scheme=scheme, actor=admin, now=later)


# --- party-scheme events: once per party member ------------------------------------------------


@pytest.fixture
def party_meeting(session, now):
    from tests.api.test_party_track import PARTY_RULES

    village = make_village(session)
    scheme = make_scheme(
        session, village, code="party", name="党员积分", subject_kind="resident", period_kind="year"
    )
    adopt_catalog(session, scheme, PARTY_RULES, now=now - timedelta(days=30))
    admin = make_actor(session, village, "admin")
    event = events.create_event(
        session,
        village=village,
        scheme=scheme,
        actor=admin,
        title="主题党日",
        place="党员活动室",
        starts_at=now,
        ends_at=now + timedelta(hours=2),
        rule_code="DJ-01",
        audience="village",
        now=now - timedelta(days=1),
    )
    home = make_household(session, village, members=3)
    home.members[0].is_party_member = home.members[1].is_party_member = True
    session.flush()
    return village, scheme, admin, event, home


def test_a_party_event_is_for_party_members_only(session, now, party_meeting):
    _village, _scheme, admin, event, home = party_meeting
    assert event.audience == "party" and events.event_per_person(session, event)
    with pytest.raises(events.NotPartyMemberError) as refused:
        events.check_in_by_name(
            session, event=event, resident_id=home.members[2].id, actor=admin, now=now
        )
    assert refused.value.code == "not_party_member"


def test_the_database_keeps_a_party_event_once_per_person(session, now, party_meeting):
    village, _scheme, _admin, event, home = party_meeting

    def row(resident):
        return Attendance(
            village_id=village.id,
            event_id=event.id,
            household_id=home.id,
            resident_id=resident.id if resident else None,
            per_person=True,
            method="name",
            checked_in_at=now,
        )

    # Two members of one household both attend, each once.
    session.add_all([row(home.members[0]), row(home.members[1])])
    session.flush()
    with session.begin_nested():
        session.add(row(home.members[0]))
        with pytest.raises(IntegrityError):
            session.flush()
    with session.begin_nested():  # a person's attendance must name the person
        session.add(row(None))
        with pytest.raises(IntegrityError):
            session.flush()


def test_closing_a_party_event_awards_each_member(session, now, party_meeting):
    _village, scheme, admin, event, home = party_meeting
    for member in home.members[:2]:
        events.check_in_by_name(session, event=event, resident_id=member.id, actor=admin, now=now)
    with pytest.raises(events.AlreadyCheckedInError):
        events.check_in_by_name(
            session, event=event, resident_id=home.members[0].id, actor=admin, now=now
        )
    # The household card cannot say which of its two members came.
    with pytest.raises(events.MemberRequiredError):
        events.check_in(
            session, event=event, household=home, resident=None, method="card",
            actor_id=admin.user_id, now=now,
        )  # fmt: skip
    _event, batch, claims = events.close_event(
        session, event=event, scheme=scheme, actor=admin, now=now + timedelta(hours=3)
    )
    assert batch.grouped and len(claims) == 2
    assert {c.resident_id for c in claims} == {m.id for m in home.members[:2]}
    assert {(c.scheme_id, c.points) for c in claims} == {(scheme.id, 30)}
