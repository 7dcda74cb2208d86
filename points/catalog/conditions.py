"""Automatic (state-based) rules as pure functions: the window a condition looks at, whether a
subject meets it, and how it reads in Chinese. The scheduler (claims.automatic) and the dry run
gather the counts; nothing here touches a session.
"""

from __future__ import annotations

from datetime import date

from points.catalog.rules import AUTO_MONTHS, AUTO_TEXT, AutoPeriod, Rule


def add_months(d: date, n: int) -> date:
    """Return the first day of the month `n` months after (or before) the month of `d`."""
    m = d.year * 12 + d.month - 1 + n
    return date(m // 12, m % 12 + 1, 1)


def condition_window(rule: Rule, period_end: date) -> tuple[date, date]:
    """Return the local dates [start, end) an automatic rule's condition looks at.

    `period_end` is the first day after the evaluated period; the window ends there and reaches
    back `auto_months` months (连续 N 个月), or the period itself.
    """
    months = rule.auto_months or AUTO_MONTHS[AutoPeriod(rule.auto)]
    return add_months(period_end, -months), period_end


def watches(rule: Rule, *, code: str, category: str) -> bool:
    """Return whether a posted entry of (code, category) counts for the rule's condition."""
    return not rule.auto_watch or code in rule.auto_watch or category in rule.auto_watch


def condition_met(rule: Rule, *, deductions: int, awards: int) -> bool:
    """Whether a subject earns an automatic rule, given its watched posted entries in the window.

    No `auto_min_count`: no watched deduction (当月无违规). With K: at least K watched awards
    (本季度参加活动满 K 次).
    """
    if rule.auto_min_count is None:
        return deductions == 0
    return awards >= rule.auto_min_count


def describe_condition(rule: Rule) -> str:
    """Return the condition in plain Chinese, e.g. '连续 3 个月无扣分（法治）'."""
    if rule.auto is None:
        return ""
    period = AutoPeriod(rule.auto)
    months = rule.auto_months or AUTO_MONTHS[period]
    span = {1: "当月", 3: "本季度", 12: "全年"}.get(months, f"连续 {months} 个月")
    if months != AUTO_MONTHS[period] and months in (1, 3, 12):
        span = f"连续 {months} 个月"
    what = "、".join(sorted(rule.auto_watch)) if rule.auto_watch else "任何项目"
    if rule.auto_min_count is None:
        test = f"无扣分（{what}）"
    else:
        test = f"得分记录满 {rule.auto_min_count} 次（{what}）"
    return f"{AUTO_TEXT[period]}自动评定：{span}{test}"
