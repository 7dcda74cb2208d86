"""A scheme's settings as the 村两委 changes them: 兑换门槛, 公示 days, close policy (with the n of
expire_after_n), base score, star thresholds and the redemption window. Each change takes effect
on the date the 村两委 states (today by default; a later date is announced on the public rules
page until then, see points.effective) and returns what changed, for the audit log."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy.orm import Session

from points.effective import change_settings
from points.errors import ValidationError
from points.models import Scheme
from points.models.catalog import ClosePolicy

CLOSE_POLICY_TEXT = {
    ClosePolicy.RESET: "每期结束清零",
    ClosePolicy.CARRY: "结转下期，不清零",
    ClosePolicy.EXPIRE_AFTER_N: "保留 n 期后过期",
}


def update_scheme_settings(
    session: Session,
    *,
    scheme: Scheme,
    redemption_threshold: int,
    notice_days: int,
    close_policy: str,
    expire_after_n: int | None,
    base_score: int,
    star_thresholds: list[int] | None,
    window_days: int | None = None,
    effective_from: date,
    today: date,
    actor_id: int | None = None,
    now: datetime,
) -> dict[str, tuple]:
    """Check a scheme's settings and record them from `effective_from` (today: at once);
    return {field: (old, new)} of what changes on that date."""
    errors: dict[str, list[str]] = {}
    if not 0 <= redemption_threshold <= 100_000:
        errors["redemption_threshold"] = ["兑换门槛应为 0–100000 分"]
    if not 0 <= notice_days <= 60:
        errors["notice_days"] = ["公示天数应为 0–60 天"]
    if close_policy not in set(ClosePolicy):
        errors["close_policy"] = ["不支持的结转方式"]
    if close_policy == ClosePolicy.EXPIRE_AFTER_N:
        if expire_after_n is None or not 1 <= expire_after_n <= 40:
            errors["expire_after_n"] = ["“保留 n 期”的 n 应为 1–40"]
    else:
        expire_after_n = None
    if not 0 <= base_score <= 10_000:
        errors["base_score"] = ["基础分应为 0–10000 分"]
    if star_thresholds is not None:
        ok = len(star_thresholds) == 5 and all(t >= 0 for t in star_thresholds)
        if not ok or any(
            b <= a for a, b in zip(star_thresholds, star_thresholds[1:], strict=False)
        ):
            errors["star_thresholds"] = ["星级分数线应为 5 个从小到大的整数（一星到五星）"]
    if window_days is not None and not 1 <= window_days <= 366:
        errors["window_days"] = ["兑换天数应为 1–366 天（全期开放则留空）"]
    if window_days is not None and not scheme.redeemable:
        errors["window_days"] = ["本方案的积分不能兑换，不设兑换时间"]
    if errors:
        raise ValidationError(
            "设置有误，未做任何改动：" + "；".join(m for ms in errors.values() for m in ms),
            errors=errors,
        )
    wanted = {
        "redemption_threshold": redemption_threshold,
        "notice_days": notice_days,
        "close_policy": close_policy,
        "expire_after_n": expire_after_n,
        "base_score": base_score,
        "star_thresholds": star_thresholds,
        "window_days": window_days,
    }
    return change_settings(
        session,
        target=scheme,
        wanted=wanted,
        effective_from=effective_from,
        today=today,
        actor_id=actor_id,
        now=now,
    )
