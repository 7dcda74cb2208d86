"""Scoring and redemption periods: keys, bounds and local dates (pure functions, no session)."""

from __future__ import annotations

from datetime import date, datetime, time
from enum import StrEnum
from zoneinfo import ZoneInfo

# Villages keep Beijing time; storage is UTC and only period arithmetic needs the local date.
LOCAL_TZ = ZoneInfo("Asia/Shanghai")


class PeriodKind(StrEnum):
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


def local_date(now: datetime) -> date:
    """Return the village-local calendar date of an aware datetime."""
    return now.astimezone(LOCAL_TZ).date()


def month_key(d: date) -> str:
    """Return the month key of a local date, e.g. '2026-11'."""
    return f"{d.year:04d}-{d.month:02d}"


def period_key(kind: PeriodKind | str, d: date) -> str:
    """Return the key of the period containing local date d: '2026-11', '2026-Q4' or '2026'."""
    kind = PeriodKind(kind)
    if kind is PeriodKind.MONTH:
        return month_key(d)
    if kind is PeriodKind.QUARTER:
        return f"{d.year:04d}-Q{(d.month - 1) // 3 + 1}"
    return f"{d.year:04d}"


_QUARTER_TEXT = {"1": "第一季度", "2": "第二季度", "3": "第三季度", "4": "第四季度"}


def period_label(key: str | None) -> str:
    """Return a period key as villagers say it: '2026-Q4' → '2026年第四季度', '2026-11' →
    '2026年11月', '2026' → '2026年'; anything else unchanged."""
    text = key or ""
    year, _, rest = text.partition("-")
    if not (len(year) == 4 and year.isdigit()):
        return text
    if not rest:
        return f"{year}年"
    if rest.startswith("Q") and rest[1:] in _QUARTER_TEXT:
        return f"{year}年{_QUARTER_TEXT[rest[1:]]}"
    if rest.isdigit() and 1 <= int(rest) <= 12:
        return f"{year}年{int(rest)}月"
    return text


def period_start(kind: PeriodKind | str, key: str) -> date:
    """Return the first local date of a period key."""
    kind = PeriodKind(kind)
    try:
        if kind is PeriodKind.MONTH:
            year, month = key.split("-")
            return date(int(year), int(month), 1)
        if kind is PeriodKind.QUARTER:
            year, q = key.split("-Q")
            if not 1 <= int(q) <= 4:
                raise ValueError(key)
            return date(int(year), 3 * (int(q) - 1) + 1, 1)
        return date(int(key), 1, 1)
    except ValueError as exc:
        raise ValueError(f"not a {kind} period key: {key!r}") from exc


def next_period_start(kind: PeriodKind | str, key: str) -> date:
    """Return the first local date after the period (its exclusive end)."""
    kind = PeriodKind(kind)
    start = period_start(kind, key)
    months = {PeriodKind.MONTH: 1, PeriodKind.QUARTER: 3, PeriodKind.YEAR: 12}[kind]
    m = start.month - 1 + months
    return date(start.year + m // 12, m % 12 + 1, 1)


def next_period_key(kind: PeriodKind | str, key: str) -> str:
    """Return the key of the period after `key`."""
    return period_key(kind, next_period_start(kind, key))


def previous_period_key(kind: PeriodKind | str, key: str) -> str:
    """Return the key of the period before `key`."""
    start = period_start(kind, key)
    prev_day = date.fromordinal(start.toordinal() - 1)
    return period_key(kind, prev_day)


def period_end_utc(kind: PeriodKind | str, key: str) -> datetime:
    """Return the instant a period ends (local midnight after its last day), as aware UTC."""
    end = next_period_start(kind, key)
    return datetime.combine(end, time(0), tzinfo=LOCAL_TZ).astimezone(ZoneInfo("UTC"))


def periods_between(kind: PeriodKind | str, first: str, last: str) -> int:
    """Return how many periods `last` is after `first` (0 when equal, negative when before)."""
    a, b = period_start(kind, first), period_start(kind, last)
    months = (b.year - a.year) * 12 + (b.month - a.month)
    return (
        months
        // {PeriodKind.MONTH: 1, PeriodKind.QUARTER: 3, PeriodKind.YEAR: 12}[PeriodKind(kind)]
    )
