"""A scheme's settings as the 村两委 changes them: 兑换门槛, 公示 days, close policy (with the n of
expire_after_n), base score and star thresholds. Each change returns what changed, for the
audit log; a change takes effect at once (the public rules page shows the values in force)."""

from __future__ import annotations

from sqlalchemy.orm import Session

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
) -> dict[str, tuple]:
    """Check and apply a scheme's settings; return {field: (old, new)} of what changed."""
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
    }
    changed = {k: (getattr(scheme, k), v) for k, v in wanted.items() if getattr(scheme, k) != v}
    for key, (_old, new) in changed.items():
        setattr(scheme, key, new)
    session.flush()
    return changed
