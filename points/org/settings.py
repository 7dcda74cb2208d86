"""A village's 红黑榜 settings: privacy mode, how many months a black entry stays up, and the
size of the red list, each from the date the 村两委 states (points.effective). Returns what
changes, for the audit log."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy.orm import Session

from points.effective import change_settings
from points.errors import ValidationError
from points.models import Village
from points.models.org import PrivacyMode

PRIVACY_TEXT = {
    PrivacyMode.NAMED: "公布姓名（张三）",
    PrivacyMode.MASKED: "姓名打码（张*三）",
    PrivacyMode.GROUP: "只公布到小组",
}


def update_board_settings(
    session: Session,
    *,
    village: Village,
    privacy_mode: str,
    black_months: int,
    board_top_n: int,
    effective_from: date,
    today: date,
    actor_id: int | None = None,
    now: datetime,
) -> dict[str, tuple]:
    """Check the board settings and record them from `effective_from` (today: at once);
    return {field: (old, new)} of what changes on that date."""
    errors: dict[str, list[str]] = {}
    if privacy_mode not in set(PrivacyMode):
        errors["privacy_mode"] = ["隐私模式只能是公布姓名、姓名打码或只公布到小组"]
    if not 1 <= black_months <= 24:
        errors["black_months"] = ["黑榜公布期应为 1–24 个月"]
    if not 1 <= board_top_n <= 100:
        errors["board_top_n"] = ["红榜人数应为 1–100"]
    if errors:
        raise ValidationError(
            "设置有误，未做任何改动：" + "；".join(m for ms in errors.values() for m in ms),
            errors=errors,
        )
    wanted = {
        "privacy_mode": privacy_mode,
        "black_months": black_months,
        "board_top_n": board_top_n,
    }
    return change_settings(
        session,
        target=village,
        wanted=wanted,
        effective_from=effective_from,
        today=today,
        actor_id=actor_id,
        now=now,
    )
