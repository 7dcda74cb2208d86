"""Claims through review, public notice, objections and posting, as the village sees them."""

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from points import claims, ledger
from points.claims import ClaimInput, ConflictOfInterestError, RuleRefusedError
from points.errors import ConflictError, PermissionDeniedError, ValidationError
from points.ledger.verify import verify
from points.models import JournalEntry
from points.models.claims import Channel, ClaimStatus
from tests.factories import (
    adopt_catalog,
    make_group,
    make_household,
    make_scheme,
    make_user,
    make_village,
)

RULES = [
    {
        "code": "MEI-01",
        "name": "庭院整洁",
        "category": "德治",
        "subcategory": "积美",
        "sign": 1,
        "points": 5,
        "unit": "time",
        "caps": {"month": 10},
        "review": "never",
        "recorder_roles": ["admin", "recorder"],
        "subjects": ["household"],
    },
    {
        "code": "SHAN-01",
        "name": "见义勇为",
        "category": "德治",
        "subcategory": "积善",
        "sign": 1,
        "min_points": 5,
        "max_points": 30,
        "unit": "time",
        "caps": {"year": 60},
        "review": "always",
        "evidence_required": True,
        "recorder_roles": ["admin", "recorder", "resident"],
        "subjects": ["household"],
    },
    {
        "code": "FZ-51",
        "name": "赌博",
        "category": "法治",
        "sign": -1,
        "points": 10,
        "unit": "time",
        "caps": {"month": 20},
        "review": "always",
        "recorder_roles": ["admin", "recorder"],
        "subjects": ["household"],
    },
    {
        "code": "ZZ-01",
        "name": "参加村民大会",
        "category": "自治",
        "sign": 1,
        "points": 2,
        "unit": "time",
        "caps": {"day": 2},
        "review": "never",
        "recorder_roles": ["admin", "recorder"],
        "subjects": ["household"],
    },
]
TODAY = date(2026, 11, 25)


@pytest.fixture
def v(session, now):
    """A village, a household scheme with 7 days of notice, two groups and everyone."""

    class V:
        pass

    x = V()
    x.village = make_village(session)
    x.scheme = make_scheme(session, x.village, notice_days=7)
    adopt_catalog(session, x.scheme, RULES, now=now)
    x.g1, x.g2 = make_group(session, x.village), make_group(session, x.village)
    x.home1 = make_household(session, x.village, x.g1)
    x.home2 = make_household(session, x.village, x.g2)
    x.recorder = make_user(session, x.village, "recorder", group=x.g1)
    x.reviewer = make_user(session, x.village, "reviewer")
    x.admin = make_user(session, x.village, "admin")
    # A grid worker of group 1 who lives in household 1.
    x.neighbour = make_user(session, x.village, "recorder", group=x.g1, resident=x.home1.members[0])
    x.resident = make_user(session, x.village, "resident", resident=x.home1.members[1])
    return x


def _record(session, v, actor, code="MEI-01", home=None, now=None, **kw):
    item = ClaimInput(household_id=(home or v.home1).id, rule_code=code, occurred_on=TODAY, **kw)
    return claims.record(
        session, village=v.village, scheme=v.scheme, actor=actor, item=item, now=now
    )


def _balance(session, v, home=None):
    return ledger.get_balance(session, scheme=v.scheme, subject_id=(home or v.home1).id)


def test_the_whole_path_posts_once(session, v, now):
    claim = _record(session, v, v.recorder, now=now)
    assert claim.status == ClaimStatus.IN_NOTICE and claim.points == 5
    assert claim.notice_until == now + timedelta(days=7)
    assert claims.due_claims(session, now=now + timedelta(days=6)) == []
    posted = claims.post_due(session, now=now + timedelta(days=7))
    assert [c.id for c in posted] == [claim.id] and claim.status == ClaimStatus.POSTED
    entry = session.get(JournalEntry, claim.entry_id)
    assert entry.rule_id == claim.rule_id and entry.claim_id == claim.id
    assert entry.memo == "庭院整洁" and entry.category == "德治"
    assert claims.post_due(session, now=now + timedelta(days=8)) == []
    again = claims.post_claim(session, claim_id=claim.id, now=now + timedelta(days=9))
    assert again.entry_id == entry.id
    assert _balance(session, v).available == 5
    assert verify(session).ok


def test_review_is_required_by_the_rule_and_the_approver_is_not_the_recorder(session, v, now):
    claim = _record(session, v, v.admin, code="FZ-51", description="聚众赌博，派出所通报", now=now)
    assert claim.status == ClaimStatus.PENDING_REVIEW and claim.points == -10
    with pytest.raises(PermissionDeniedError) as err:
        claims.approve(session, claim=claim, actor=v.admin, now=now)
    assert "登记人不能审核" in err.value.message
    claims.approve(session, claim=claim, actor=v.reviewer, now=now)
    assert claim.status == ClaimStatus.IN_NOTICE


def test_a_deduction_needs_a_reason(session, v, now):
    with pytest.raises(RuleRefusedError) as err:
        _record(session, v, v.recorder, code="FZ-51", now=now)
    assert err.value.code == "reason_required"


def test_recorders_write_only_in_their_group(session, v, now):
    with pytest.raises(PermissionDeniedError) as err:
        _record(session, v, v.recorder, home=v.home2, now=now)
    assert "本网格" in err.value.message


@pytest.mark.parametrize("path", ["single", "batch", "approve", "resolve"])
def test_nobody_acts_for_their_own_household(session, v, now, path):
    if path == "single":
        with pytest.raises(ConflictOfInterestError):
            _record(session, v, v.neighbour, now=now)
    elif path == "batch":
        with pytest.raises(ConflictOfInterestError):
            claims.record_batch(
                session,
                village=v.village,
                scheme=v.scheme,
                actor=v.neighbour,
                title="大扫除",
                rule_code="MEI-01",
                occurred_on=TODAY,
                subjects=[(v.home1.id, None)],
                now=now,
            )
    else:
        reviewer_at_home = make_user(session, v.village, "reviewer", resident=v.home1.members[0])
        claim = _record(session, v, v.admin, code="FZ-51", description="赌博", now=now)
        if path == "approve":
            with pytest.raises(ConflictOfInterestError):
                claims.approve(session, claim=claim, actor=reviewer_at_home, now=now)
        else:
            claims.approve(session, claim=claim, actor=v.reviewer, now=now)
            objection = claims.object_to(
                session, claim=claim, actor=v.resident, reason="不是我家", now=now
            )
            with pytest.raises(ConflictOfInterestError):
                claims.resolve_objection(
                    session,
                    objection=objection,
                    actor=reviewer_at_home,
                    uphold=True,
                    note="成立",
                    now=now,
                )
    assert session.scalar(select(func.count()).select_from(JournalEntry)) == 0


def test_declaration_goes_to_review_with_evidence(session, v, now):
    claim = claims.record(
        session,
        village=v.village,
        scheme=v.scheme,
        actor=v.resident,
        channel=Channel.DECLARED,
        now=now,
        item=ClaimInput(
            household_id=v.home1.id,
            rule_code="SHAN-01",
            occurred_on=TODAY,
            proposed_points=20,
            description="救起落水儿童",
            has_evidence=True,
        ),
    )
    assert claim.status == ClaimStatus.PENDING_REVIEW and claim.points == 20
    with pytest.raises(RuleRefusedError) as err:
        claims.record(
            session,
            village=v.village,
            scheme=v.scheme,
            actor=v.resident,
            channel=Channel.DECLARED,
            now=now,
            item=ClaimInput(
                household_id=v.home1.id,
                rule_code="SHAN-01",
                occurred_on=TODAY,
                proposed_points=20,
                description="x",
            ),
        )
    assert err.value.code == "evidence_required"
    with pytest.raises(PermissionDeniedError):
        claims.record(
            session,
            village=v.village,
            scheme=v.scheme,
            actor=v.resident,
            channel=Channel.DECLARED,
            now=now,
            item=ClaimInput(household_id=v.home2.id, rule_code="MEI-01", occurred_on=TODAY),
        )


def test_dismissed_objection_lets_the_claim_post(session, v, now):
    claim = _record(session, v, v.recorder, now=now)
    objection = claims.object_to(
        session, claim=claim, actor=v.resident, reason="有疑问", now=now + timedelta(days=1)
    )
    assert claims.due_claims(session, now=now + timedelta(days=8)) == []  # blocked while open
    claims.resolve_objection(
        session,
        objection=objection,
        actor=v.reviewer,
        uphold=False,
        note="经核实属实",
        now=now + timedelta(days=2),
    )
    assert claims.due_claims(session, now=now + timedelta(days=8)) == [claim.id]


def test_upheld_objection_leaves_no_ledger_trace_but_keeps_history(session, v, now):
    claim = _record(session, v, v.recorder, now=now)
    objection = claims.object_to(
        session, claim=claim, actor=v.reviewer, reason="当天不在家", now=now
    )
    claims.resolve_objection(
        session, objection=objection, actor=v.admin, uphold=True, note="核实未打扫", now=now
    )
    assert claim.status == ClaimStatus.REJECTED and "异议成立" in claim.review_note
    assert claims.post_due(session, now=now + timedelta(days=30)) == []
    assert session.scalar(select(func.count()).select_from(JournalEntry)) == 0
    assert [o.status for o in claim.objections] == ["upheld"]


def test_objection_only_inside_the_window(session, v, now):
    claim = _record(session, v, v.recorder, now=now)
    with pytest.raises(ConflictError):
        claims.object_to(
            session, claim=claim, actor=v.resident, reason="晚了", now=now + timedelta(days=7)
        )


def test_caps_count_pending_claims_and_cut(session, v, now):
    first = _record(session, v, v.recorder, now=now)
    second = _record(session, v, v.recorder, now=now)
    assert (first.points, second.points) == (5, 5)
    with pytest.raises(RuleRefusedError) as err:
        _record(session, v, v.recorder, now=now)
    assert err.value.code == "cap_reached"


def _race_two_claims(session, v, now):
    """Two claims that each fit under ZZ-01's daily cap of 2 but not together: what two
    concurrent requests produce when neither sees the other's claim yet."""
    a = _record(session, v, v.recorder, code="ZZ-01", now=now)
    a.status = ClaimStatus.REJECTED  # hidden from the second request's cap count
    session.flush()
    b = _record(session, v, v.admin, code="ZZ-01", now=now)
    a.status = ClaimStatus.IN_NOTICE
    session.flush()
    return a, b


def test_caps_are_enforced_again_at_posting(session, v, now):
    a, b = _race_two_claims(session, v, now)
    assert a.points == b.points == 2
    claims.post_due(session, now=now + timedelta(days=8))
    assert (a.status, b.status) == (ClaimStatus.POSTED, ClaimStatus.REJECTED)
    assert "上限" in b.review_note
    assert _balance(session, v).available == 2


def test_batch_records_everyone_or_nobody(session, v, now):
    homes = [make_household(session, v.village, v.g1) for _ in range(3)]
    batch, items = claims.record_batch(
        session,
        village=v.village,
        scheme=v.scheme,
        actor=v.recorder,
        title="村庄大扫除",
        rule_code="MEI-01",
        occurred_on=TODAY,
        subjects=[(h.id, None) for h in homes],
        now=now,
    )
    assert len(items) == 3 and {c.batch_id for c in items} == {batch.id}
    with pytest.raises(PermissionDeniedError):
        claims.record_batch(
            session,
            village=v.village,
            scheme=v.scheme,
            actor=v.recorder,
            title="村庄大扫除",
            rule_code="MEI-01",
            occurred_on=TODAY,
            subjects=[(homes[0].id, None), (v.home2.id, None)],
            now=now,
        )


def test_two_members_of_one_household_in_a_batch_share_its_cap(session, v, now):
    # ZZ-01 gives 2 points, at most 2 a day per household: the second member gets nothing.
    home = make_household(session, v.village, v.g1, members=2)
    first, second = (m.id for m in home.members)
    with pytest.raises(RuleRefusedError):
        claims.record_batch(
            session,
            village=v.village,
            scheme=v.scheme,
            actor=v.recorder,
            title="村民大会",
            rule_code="ZZ-01",
            occurred_on=TODAY,
            subjects=[(home.id, first), (home.id, second)],
            now=now,
        )
    _, items = claims.record_batch(
        session,
        village=v.village,
        scheme=v.scheme,
        actor=v.recorder,
        title="村民大会",
        rule_code="ZZ-01",
        occurred_on=TODAY,
        subjects=[(home.id, first)],
        now=now,
    )
    assert [c.points for c in items] == [2] and items[0].resident_id == first


def test_reversal_of_a_posted_claim_is_visible(session, v, now):
    claim = _record(session, v, v.recorder, now=now)
    claims.post_due(session, now=now + timedelta(days=7))
    fix = claims.reverse_claim(
        session, claim=claim, actor=v.admin, reason="核实有误", now=now + timedelta(days=8)
    )
    assert fix.reverses_id == claim.entry_id and _balance(session, v).available == 0
    with pytest.raises(PermissionDeniedError):
        claims.reverse_claim(session, claim=claim, actor=v.reviewer, reason="x", now=now)


def test_future_dates_are_refused(session, v, now):
    with pytest.raises(ValidationError):
        claims.record(
            session,
            village=v.village,
            scheme=v.scheme,
            actor=v.recorder,
            now=now,
            item=ClaimInput(
                household_id=v.home1.id, rule_code="MEI-01", occurred_on=TODAY + timedelta(days=1)
            ),
        )
