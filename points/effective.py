"""Settings effective from a stated date: a scheme's 兑换门槛, window, 公示 days, close policy and
stars, a village's 红黑榜 settings.

Every change is a `setting_changes` row with the day it takes effect; the value in force on a day
is that of the latest change dated on or before it (the live column when a setting never
changed). A change dated today is copied into the live column at once; one dated later is
announced (the public rules page lists it) and copied by the scheduler's `settings_apply` job on
its day. Work that belongs to a date — closing a period, drafting a month's board, redeeming
today — reads the value in force on that date with `in_force`, so a change announced for the
first of next month never reaches back into this month's close.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from points.errors import ValidationError
from points.models import RedemptionPolicy, Scheme, SettingChange, Village

SCHEME_SETTINGS = (
    "redemption_threshold",
    "window_days",
    "notice_days",
    "close_policy",
    "expire_after_n",
    "base_score",
    "star_thresholds",
)
VILLAGE_SETTINGS = ("privacy_mode", "black_months", "board_top_n")
SETTING_TEXT = {
    "redemption_threshold": "兑换门槛",
    "window_days": "兑换时间",
    "notice_days": "公示天数",
    "close_policy": "结转方式",
    "expire_after_n": "保留期数",
    "base_score": "基础分",
    "star_thresholds": "星级分数线",
    "privacy_mode": "黑榜公布方式",
    "black_months": "黑榜公布期",
    "board_top_n": "红榜人数",
}
# Before any change was recorded the live column held the setting since the village began.
SINCE_EVER = date(2000, 1, 1)


def live_values(
    session: Session, *, target: Scheme | Village, names: Sequence[str] | None = None
) -> dict[str, Any]:
    """Return the live (column) value of each of the target's settings (or of `names`)."""
    if isinstance(target, Village):
        return {name: getattr(target, name) for name in names or VILLAGE_SETTINGS}
    wanted = names or SCHEME_SETTINGS
    out = {name: getattr(target, name) for name in wanted if name != "window_days"}
    if "window_days" in wanted:  # kept in the scheme's redemption policy
        policy = _policy(session, target)
        out["window_days"] = policy.window_days if policy is not None else None
    return out


def in_force(
    session: Session, *, target: Scheme | Village, on: date, names: Sequence[str] | None = None
) -> dict[str, Any]:
    """Return each setting of the target (or those `names`) as in force on local date `on`:
    one statement, two for a scheme's `window_days`."""
    values = live_values(session, target=target, names=names)
    if names is None:
        for row in _changes(session, target).where(SettingChange.effective_from <= on):
            values[row.name] = row.value["v"]
        return values
    scheme = isinstance(target, Scheme)
    params = {
        "v": target.village_id if scheme else target.id,
        "on": on,
        "names": list(names),
        **({"s": target.id} if scheme else {}),
    }
    for name, value in session.execute(_NAMED_CHANGES[scheme], params):
        values[name] = value["v"]
    return values


# A few settings of one target in force on a day (a close's policy): built once.
_NAMED_CHANGES = {
    scheme: select(SettingChange.name, SettingChange.value)
    .where(
        SettingChange.village_id == bindparam("v"),
        SettingChange.scheme_id == bindparam("s") if scheme else SettingChange.scheme_id.is_(None),
        SettingChange.effective_from <= bindparam("on"),
        SettingChange.name.in_(bindparam("names", expanding=True)),
    )
    .order_by(SettingChange.effective_from, SettingChange.id)
    for scheme in (True, False)
}


def in_force_villages(
    session: Session, *, villages: Sequence[Village], on: date
) -> dict[int, dict[str, Any]]:
    """Return {village id: its settings as `in_force` returns them on `on`} for many villages
    in one statement (a county's board drafts)."""
    out = {v.id: live_values(session, target=v) for v in villages}
    if not out:
        return out
    rows = session.execute(_VILLAGES_CHANGES, {"villages": list(out), "on": on})
    for village_id, name, value in rows:
        out[village_id][name] = value["v"]
    return out


# Built once (every board draft reads it).
_VILLAGES_CHANGES = (
    select(SettingChange.village_id, SettingChange.name, SettingChange.value)
    .where(
        SettingChange.village_id.in_(bindparam("villages", expanding=True)),
        SettingChange.scheme_id.is_(None),
        SettingChange.effective_from <= bindparam("on"),
    )
    .order_by(SettingChange.village_id, SettingChange.effective_from, SettingChange.id)
)


def setting_on(session: Session, *, target: Scheme | Village, name: str, on: date) -> Any:
    """Return one setting of the target as in force on local date `on`."""
    return in_force(session, target=target, on=on)[name]


def upcoming(session: Session, *, village_id: int, today: date) -> list[SettingChange]:
    """Return the village's announced changes (dated after `today`), soonest first."""
    q = (
        select(SettingChange)
        .where(SettingChange.village_id == village_id, SettingChange.effective_from > today)
        .order_by(SettingChange.effective_from, SettingChange.id)
    )
    return list(session.execute(q).scalars())


def announced_changes(
    session: Session, *, village: Village, schemes: list[Scheme], today: date
) -> list[dict[str, str]]:
    """Return the village's announced changes as readable rows: where, what, new value, from."""
    names = {sc.id: sc.name for sc in schemes}
    return [
        {
            "scope": names.get(row.scheme_id, "") if row.scheme_id else "红黑榜",
            "label": SETTING_TEXT.get(row.name, row.name),
            "value": describe_value(row.name, row.value["v"]),
            "effective_from": row.effective_from.isoformat(),
        }
        for row in upcoming(session, village_id=village.id, today=today)
    ]


def change_settings(
    session: Session,
    *,
    target: Scheme | Village,
    wanted: Mapping[str, Any],
    effective_from: date,
    today: date,
    actor_id: int | None,
    now: datetime,
) -> dict[str, tuple]:
    """Record the settings that differ from those in force on `effective_from`; return
    {name: (old, new)}. Dated today: applied at once. Later: announced, applied on the day.

    A date before today is refused: a past period may already have been closed or published
    with the old value, and a correction must not rewrite it silently.
    """
    if effective_from < today:
        raise ValidationError(
            f"生效日期 {effective_from.isoformat()} 早于今天，设置只能从今天或以后生效",
            errors={"effective_from": ["生效日期不能早于今天"]},
        )
    before = in_force(session, target=target, on=effective_from)
    changed = {k: (before[k], v) for k, v in wanted.items() if before[k] != v}
    if not changed:
        return {}
    scheme_id = target.id if isinstance(target, Scheme) else None
    village_id = target.village_id if isinstance(target, Scheme) else target.id
    recorded = {row.name for row in _changes(session, target)}
    live = live_values(session, target=target)
    for name, (_old, new) in changed.items():
        if name not in recorded:
            # The first change of a setting keeps what was in force until now, so reading
            # any earlier day still finds it once the live column has moved on.
            session.add(_row(village_id, scheme_id, name, live[name], SINCE_EVER, None, now))
        row = _row(village_id, scheme_id, name, new, effective_from, actor_id, now)
        row.applied_at = now if effective_from <= today else None
        session.add(row)
    session.flush()
    if effective_from <= today:
        _write_live(session, target, in_force(session, target=target, on=today), now)
    return changed


def apply_due(session: Session, *, change_id: int, today: date, now: datetime) -> dict:
    """Copy the values in force today into the live columns of a change's target (the job)."""
    change = session.get(SettingChange, change_id)
    target = (
        session.get(Scheme, change.scheme_id)
        if change.scheme_id is not None
        else session.get(Village, change.village_id)
    )
    values = in_force(session, target=target, on=today)
    _write_live(session, target, values, now)
    change.applied_at = now
    session.flush()
    return {"name": change.name, "value": values[change.name]}


def due_changes(session: Session, *, today: date) -> list[SettingChange]:
    """Return changes whose day has come and that are not yet in the live columns."""
    q = (
        select(SettingChange)
        .where(SettingChange.applied_at.is_(None), SettingChange.effective_from <= today)
        .order_by(SettingChange.id)
    )
    return list(session.execute(q).scalars())


def describe_value(name: str, value: Any) -> str:
    """Return how a setting's value reads on a page, in plain Chinese."""
    from points.models.catalog import ClosePolicy
    from points.models.org import PrivacyMode

    if value is None:
        return {"window_days": "全期开放", "star_thresholds": "默认", "expire_after_n": "—"}.get(
            name, "—"
        )
    if name == "close_policy":
        return {
            ClosePolicy.RESET: "每期结束清零",
            ClosePolicy.CARRY: "结转下期，不清零",
            ClosePolicy.EXPIRE_AFTER_N: "保留 n 期后过期",
        }.get(value, str(value))
    if name == "privacy_mode":
        return {
            PrivacyMode.NAMED: "公布姓名",
            PrivacyMode.MASKED: "姓名打码",
            PrivacyMode.GROUP: "只公布到小组",
        }.get(value, str(value))
    if name == "star_thresholds":
        return "、".join(str(v) for v in value) + " 分"
    unit = {
        "redemption_threshold": " 分",
        "base_score": " 分",
        "notice_days": " 天",
        "black_months": " 个月",
        "board_top_n": " 户",
        "expire_after_n": " 期",
    }.get(name, "")
    if name == "window_days":
        return f"每期最后 {value} 天"
    return f"{value}{unit}"


def _changes(session: Session, target: Scheme | Village):
    if isinstance(target, Scheme):
        where = [SettingChange.scheme_id == target.id]
        village_id = target.village_id
    else:
        where = [SettingChange.scheme_id.is_(None)]
        village_id = target.id
    q = select(SettingChange).where(SettingChange.village_id == village_id, *where)
    return _Query(session, q)


class _Query:
    """A changes query that can be narrowed before it runs, and iterated."""

    def __init__(self, session: Session, q) -> None:
        self.session, self.q = session, q

    def where(self, *criteria) -> _Query:
        return _Query(self.session, self.q.where(*criteria))

    def __iter__(self):
        q = self.q.order_by(SettingChange.effective_from, SettingChange.id)
        return iter(self.session.execute(q).scalars().all())


def _row(village_id, scheme_id, name, value, effective_from, actor_id, now) -> SettingChange:
    return SettingChange(
        village_id=village_id,
        scheme_id=scheme_id,
        name=name,
        value={"v": value},
        effective_from=effective_from,
        created_at=now,
        created_by=actor_id,
        applied_at=now if effective_from == SINCE_EVER else None,
    )


def _write_live(
    session: Session, target: Scheme | Village, values: Mapping[str, Any], now: datetime
) -> None:
    for name, value in values.items():
        if name == "window_days":
            policy = _policy(session, target)
            if policy is None:
                if value is None:
                    continue
                policy = RedemptionPolicy(
                    village_id=target.village_id, scheme_id=target.id, updated_at=now
                )
                session.add(policy)
            if policy.window_days != value:
                policy.window_days, policy.updated_at = value, now
        else:
            setattr(target, name, value)
    session.flush()


def _policy(session: Session, scheme: Scheme) -> RedemptionPolicy | None:
    return session.execute(
        select(RedemptionPolicy).where(RedemptionPolicy.scheme_id == scheme.id)
    ).scalar_one_or_none()


__all__ = [
    "announced_changes",
    "SCHEME_SETTINGS",
    "SETTING_TEXT",
    "VILLAGE_SETTINGS",
    "apply_due",
    "change_settings",
    "describe_value",
    "due_changes",
    "in_force",
    "setting_on",
    "upcoming",
]
