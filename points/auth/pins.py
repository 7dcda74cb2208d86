"""Which 6-digit PINs are refused: the ones a guesser tries first."""

from __future__ import annotations

import re

from points.errors import ValidationError, WeakPinError

PIN_RE = re.compile(r"^\d{6}$")
_DIGITS = "0123456789"
# Lists of leaked PINs put these near the top besides runs and repeats: keypad lines and
# lucky numbers (520 "我爱你", 888 "发").
COMMON_PINS = frozenset(
    {
        "123321",
        "147258",
        "258369",
        "147369",
        "159357",
        "159753",
        "123654",
        "789456",
        "456123",
        "520520",
        "520521",
        "520131",
        "131420",
        "168168",
        "518518",
        "100200",
    }
)


def weak_pin_reason(pin: str, *, phone: str | None = None) -> str | None:
    """Return why `pin` is too easy to guess (a Chinese phrase), or None when it is fine."""
    if pin in COMMON_PINS:
        return "是常见的简单密码"
    if len(set(pin)) <= 2:
        return "重复的数字太多"
    if pin in _DIGITS or pin in _DIGITS[::-1] or pin in "7890123" or pin in "3210987":
        return "是连续的数字"
    for period in (2, 3):
        if pin == pin[:period] * (6 // period):
            return "是重复的数字组合"
    if pin[0::2] == pin[1::2]:  # 112233
        return "是成对重复的数字"
    if phone and len(phone) >= 6 and pin in (phone[-6:], phone[:6]):
        return "与手机号相同"
    return None


def check_new_pin(pin: str, *, phone: str | None = None) -> None:
    """Refuse a PIN that is not 6 digits (ValidationError) or is easy to guess (WeakPinError)."""
    if not PIN_RE.match(pin or ""):
        raise ValidationError("PIN 码应为 6 位数字", errors={"pin": ["格式不正确"]})
    reason = weak_pin_reason(pin, phone=phone)
    if reason:
        raise WeakPinError(errors={"pin": [f"PIN 码{reason}，请换一个"]})
