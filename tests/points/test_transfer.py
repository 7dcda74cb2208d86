"""Points moved between households (合户/分户): one balanced adjustment entry, never more than
the source holds, the target's owed settled first, scores untouched, idempotent."""

from __future__ import annotations

import pytest

from points import ledger
from points.errors import InsufficientPointsError
from points.ledger.verify import verify
from points.periods import local_date, period_key
from tests.factories import make_household, make_scheme, make_village


def test_transfer_moves_points_settles_owed_and_keeps_scores(session, now):
    village = make_village(session)
    scheme = make_scheme(session, village)
    a, b = make_household(session, village), make_household(session, village)
    ledger.award(
        session, scheme=scheme, subject_id=a.id, points=50, idem_key="a", actor_id=None, now=now
    )
    ledger.deduct(
        session, scheme=scheme, subject_id=b.id, points=8, idem_key="b", actor_id=None, now=now
    )
    period = period_key(scheme.period_kind, local_date(now))
    before = {
        h.id: ledger.period_score(session, scheme=scheme, subject_id=h.id, period=period)
        for h in (a, b)
    }
    with pytest.raises(InsufficientPointsError):
        ledger.transfer(
            session,
            scheme=scheme,
            from_subject_id=a.id,
            to_subject_id=b.id,
            points=51,
            idem_key="too-much",
            actor_id=None,
            now=now,
        )
    entry = ledger.transfer(
        session,
        scheme=scheme,
        from_subject_id=a.id,
        to_subject_id=b.id,
        points=None,
        idem_key="merge",
        actor_id=None,
        now=now,
    )
    assert sum(p.amount for p in entry.postings) == 0 and entry.kind == "adjustment"
    again = ledger.transfer(
        session,
        scheme=scheme,
        from_subject_id=a.id,
        to_subject_id=b.id,
        points=50,
        idem_key="merge",
        actor_id=None,
        now=now,
    )
    assert again.id == entry.id  # the same request replays, nothing posted twice
    balances = {h.id: ledger.get_balance(session, scheme=scheme, subject_id=h.id) for h in (a, b)}
    assert (balances[a.id].available, balances[b.id].available, balances[b.id].owed) == (0, 42, 0)
    after = {
        h.id: ledger.period_score(session, scheme=scheme, subject_id=h.id, period=period)
        for h in (a, b)
    }
    assert after == before
    assert (
        ledger.transfer(
            session,
            scheme=scheme,
            from_subject_id=a.id,
            to_subject_id=b.id,
            points=None,
            idem_key="empty",
            actor_id=None,
            now=now,
        )
        is None
    )
    assert verify(session).ok
