"""Scheme and village settings effective from a stated date: a change dated later is announced,
the old value stays in force until its day, and closes, boards and the counter read the value in
force on the date they belong to."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from points import cycles, effective
from points.catalog.settings import update_scheme_settings
from points.errors import BelowThresholdError, ValidationError
from points.models import SettingChange
from points.org.settings import update_board_settings
from points.periods import local_date
from points.shop.redemption import BasketLine
from tests.factories import make_group, make_household, make_scheme, make_village
from tests.points.test_cycles import assert_verified, award, bj, expired_of
from tests.points.test_redemption import _redeem, shopworld  # noqa: F401 (fixture)


def scheme_values(scheme, **changes):
    values = dict(
        redemption_threshold=scheme.redemption_threshold,
        notice_days=scheme.notice_days,
        close_policy=scheme.close_policy,
        expire_after_n=scheme.expire_after_n,
        base_score=scheme.base_score,
        star_thresholds=scheme.star_thresholds,
    )
    values.update(changes)
    return values


def test_a_threshold_announced_for_next_month_waits_for_its_day(session, shopworld):  # noqa: F811
    w = shopworld
    today = bj(2026, 12, 20, 10)
    changed = update_scheme_settings(
        session,
        scheme=w.scheme,
        **scheme_values(w.scheme, redemption_threshold=250),
        effective_from=date(2027, 1, 1),
        today=local_date(today),
        actor_id=None,
        now=today,
    )
    assert changed == {"redemption_threshold": (0, 250)}
    # Announced, not in force: the live value and today's counter are unchanged.
    assert w.scheme.redemption_threshold == 0
    basket = [BasketLine(w.goods["肥皂"].id, 1)]
    assert _redeem(session, w, today, basket).total == 5
    upcoming = effective.announced_changes(
        session, village=w.village, schemes=[w.scheme], today=local_date(today)
    )
    assert upcoming == [
        {
            "scope": "户积分",
            "label": "兑换门槛",
            "value": "250 分",
            "effective_from": "2027-01-01",
        }
    ]
    # On its day the counter refuses at once, even before the scheduler's first tick.
    new_year = bj(2027, 1, 1, 0, 1)
    with pytest.raises(BelowThresholdError) as err:
        _redeem(session, w, new_year, basket)
    assert "250 分的兑换门槛" in err.value.message
    # The scheduler copies it into the live column once.
    report = cycles.reconcile(session, now=new_year)
    applied = [r for r in report.done if r.item.job == "settings_apply"]
    assert len(applied) == 1 and w.scheme.redemption_threshold == 250
    later = cycles.pending(session, now=bj(2027, 1, 2, 0, 1))
    assert all(i.job != "settings_apply" for i in later)
    assert (
        effective.announced_changes(
            session, village=w.village, schemes=[w.scheme], today=date(2027, 1, 1)
        )
        == []
    )
    # What was in force before stays readable for any earlier day.
    assert (
        effective.setting_on(
            session, target=w.scheme, name="redemption_threshold", on=date(2026, 12, 31)
        )
        == 0
    )


def test_a_change_dated_today_applies_at_once_and_a_past_date_is_refused(session, shopworld):  # noqa: F811
    w = shopworld
    now = bj(2026, 12, 20, 10)
    update_scheme_settings(
        session,
        scheme=w.scheme,
        **scheme_values(w.scheme, notice_days=3),
        window_days=10,
        effective_from=local_date(now),
        today=local_date(now),
        now=now,
    )
    assert w.scheme.notice_days == 3
    with pytest.raises(ValidationError) as err:
        update_scheme_settings(
            session,
            scheme=w.scheme,
            **scheme_values(w.scheme, notice_days=9),
            effective_from=date(2026, 12, 1),
            today=local_date(now),
            now=now,
        )
    assert "早于今天" in err.value.message
    assert w.scheme.notice_days == 3
    rows = session.execute(select(SettingChange.name, SettingChange.effective_from)).all()
    # The first change of each setting keeps what was in force before it.
    assert sorted(rows) == sorted(
        [
            ("notice_days", effective.SINCE_EVER),
            ("notice_days", date(2026, 12, 20)),
            ("window_days", effective.SINCE_EVER),
            ("window_days", date(2026, 12, 20)),
        ]
    )


def test_a_close_uses_the_policy_in_force_on_the_periods_last_day(session):
    village = make_village(session)
    group = make_group(session, village)
    home = make_household(session, village, group, members=1)
    scheme = make_scheme(session, village, close_policy="reset")
    award(session, scheme, home, 30, bj(2026, 12, 10, 9))
    # On 20 December the village announces: from 1 January points carry over.
    now = bj(2026, 12, 20, 10)
    update_scheme_settings(
        session,
        scheme=scheme,
        **scheme_values(scheme, close_policy="carry"),
        effective_from=date(2027, 1, 1),
        today=local_date(now),
        now=now,
    )
    # Q4 closes on 1 January — after the change took effect — but by Q4's policy: reset.
    report = cycles.reconcile(session, now=bj(2027, 1, 1, 0, 5))
    closes = {r.item.key: r.detail for r in report.done if r.item.job == "period_close"}
    assert closes["household:2026-Q4"]["policy"] == "reset"
    assert expired_of(session, scheme, home) == 30
    assert scheme.close_policy == "carry"  # and from now on, carry
    award(session, scheme, home, 20, bj(2027, 2, 10, 9))
    report = cycles.reconcile(session, now=bj(2027, 4, 1, 0, 5))
    closes = {r.item.key: r.detail for r in report.done if r.item.job == "period_close"}
    assert closes["household:2027-Q1"] == {"lots": 0, "expired": 0, "policy": "carry"}
    assert expired_of(session, scheme, home) == 30
    assert_verified(session)


def test_board_settings_follow_the_month_they_describe(session):
    village = make_village(session)
    now = bj(2026, 11, 20, 10)
    changed = update_board_settings(
        session,
        village=village,
        privacy_mode=village.privacy_mode,
        black_months=1,
        board_top_n=3,
        effective_from=date(2026, 12, 1),
        today=local_date(now),
        now=now,
    )
    assert set(changed) == {"black_months", "board_top_n"}
    november = effective.in_force(session, target=village, on=date(2026, 11, 30))
    december = effective.in_force(session, target=village, on=date(2026, 12, 1))
    assert (november["black_months"], november["board_top_n"]) == (3, 10)
    assert (december["black_months"], december["board_top_n"]) == (1, 3)
    # Saving the same values again for the same day changes nothing.
    again = update_board_settings(
        session,
        village=village,
        privacy_mode=village.privacy_mode,
        black_months=1,
        board_top_n=3,
        effective_from=date(2026, 12, 1),
        today=local_date(now),
        now=now,
    )
    assert again == {}
