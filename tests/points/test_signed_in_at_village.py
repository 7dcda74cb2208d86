"""Signing a request in and finding its village in one statement (recording's first round
trip): the rows come back once per (role assignment, scheme), and each side must be read as
if it had been read alone."""

from __future__ import annotations

from datetime import timedelta

from points.models import ApiToken, RoleAssignment, User
from points.org.access import Grant, find_signed_in
from points.org.operations import find_signed_in_at_village, get_village_row
from tests.factories import make_group, make_scheme, make_village


def _user_with_token(session, grants, now, *, active=True) -> str:
    user = User(username=f"u{len(grants)}{active}", display_name="两委委员", active=active)
    for role, village, group in grants:
        user.roles.append(
            RoleAssignment(role=role, village_id=village.id, group_id=group.id if group else None)
        )
    session.add(user)
    session.flush()
    digest = f"{user.id:064d}"
    session.add(
        ApiToken(
            user_id=user.id, token_hash=digest, created_at=now, expires_at=now + timedelta(hours=1)
        )
    )
    session.flush()
    return digest


def test_roles_and_schemes_each_come_back_once_and_in_order(session, now):
    village, other = make_village(session, "two-schemes"), make_village(session)
    group = make_group(session, village, "一组")
    make_scheme(session, village, "household")
    make_scheme(session, village, "party", name="党员积分", subject_kind="resident")
    grants = [("admin", village, None), ("recorder", village, group), ("reviewer", other, None)]
    digest = _user_with_token(session, grants, now)

    signed_in, row = find_signed_in_at_village(session, token_hash=digest, code="two-schemes")

    alone = find_signed_in(session, token_hash=digest)
    assert signed_in == alone
    assert signed_in.actor.grants == (
        Grant("admin", village.id),
        Grant("recorder", village.id, group.id),
        Grant("reviewer", other.id),
    )
    assert row == get_village_row(session, "two-schemes")
    assert [s.code for s in row.schemes] == ["household", "party"]


def test_each_side_may_be_missing(session, now):
    village = make_village(session, "one-scheme")
    make_scheme(session, village)
    digest = _user_with_token(session, [("admin", village, None)], now)
    inactive = _user_with_token(session, [("admin", village, None)], now, active=False)

    signed_in, row = find_signed_in_at_village(session, token_hash="0" * 64, code="one-scheme")
    assert signed_in is None and row.code == "one-scheme"
    signed_in, row = find_signed_in_at_village(session, token_hash=digest, code="nowhere")
    assert signed_in.actor.grants == (Grant("admin", village.id),) and row is None
    signed_in, row = find_signed_in_at_village(session, token_hash=inactive, code="nowhere")
    assert signed_in is None and row is None
