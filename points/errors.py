"""Domain errors with stable machine codes; api/ maps them to HTTP statuses and Chinese messages."""

from __future__ import annotations

from typing import Any


class PointsError(Exception):
    """Base of every domain error; `code` is stable and part of the public API."""

    code = "points_error"
    message = "操作失败"

    def __init__(self, message: str | None = None, **details: Any) -> None:
        self.message = message or self.message
        self.details = details
        super().__init__(self.message)


class NotFoundError(PointsError):
    code = "not_found"
    message = "找不到该记录"


class ValidationError(PointsError):
    """Input that breaks a business rule; `errors` maps field names to lists of messages."""

    code = "invalid_input"
    message = "输入有误"

    def __init__(self, message: str | None = None, errors: dict | None = None, **details: Any):
        super().__init__(message, **details)
        self.errors = errors or {}


class PermissionDeniedError(PointsError):
    code = "forbidden"
    message = "没有权限执行此操作"


class ConflictError(PointsError):
    code = "conflict"
    message = "与现有数据冲突"


class InsufficientPointsError(ConflictError):
    code = "insufficient_points"
    message = "积分余额不足"


class DuplicateRequestError(ConflictError):
    """The idempotency key was used before with a different request."""

    code = "duplicate_request"
    message = "该请求编号已用于另一笔不同的操作"


class AlreadyReversedError(ConflictError):
    code = "already_reversed"
    message = "该笔记录已被冲正，不能重复冲正"


class PeriodClosedError(ConflictError):
    code = "period_closed"
    message = "该周期已结算关闭"


class AuthenticationError(PointsError):
    code = "unauthenticated"
    message = "请先登录"


class InvalidCredentialsError(AuthenticationError):
    code = "invalid_credentials"
    message = "账号或密码错误"


class AccountLockedError(PointsError):
    """Too many wrong passwords or PINs for one account: sign-in is refused until `until`."""

    code = "account_locked"
    message = "输错次数太多，请稍后再试"

    def __init__(self, minutes: int, **details: Any) -> None:
        super().__init__(
            f"输错次数太多，请 {minutes} 分钟后再试；忘记 PIN 请到村委会重置", **details
        )
        self.minutes = minutes


class WeakPinError(ValidationError):
    """A PIN that is guessed first (123456, 000000, a run or a repeat, the phone's tail)."""

    code = "weak_pin"
    message = "PIN 码太简单，请换一个（不要用连续、重复的数字或手机号后 6 位）"


class CatalogProblemsError(ValidationError):
    """A catalog (a draft, an imported file) has problems; `problems` lists every one of them.

    Each problem prints as one Chinese line naming where it is (a rule, or a sheet, row and
    column). Nothing was written: an import is all or nothing.
    """

    code = "catalog_invalid"
    message = "积分标准有误，未做任何改动"

    def __init__(self, problems, message: str | None = None, **details: Any) -> None:
        self.problems = list(problems)
        lines = [str(p) for p in self.problems]
        super().__init__(message, errors={"problems": lines}, **details)


class CatalogImmutableError(ConflictError):
    """An adopted or retired catalog version was to be changed; only drafts can be edited."""

    code = "catalog_immutable"
    message = "已通过或已停用的积分标准不能修改，请另建草案"


class CatalogStateError(ConflictError):
    """A catalog version is not in the state the operation needs (e.g. retiring a draft)."""

    code = "catalog_state"
    message = "积分标准版本的状态不允许此操作"


# --- the points shop (积分超市) ------------------------------------------------------------------


class TokenInvalidError(ValidationError):
    """A scanned code is not one of ours: forged, damaged, unknown, or not a household code."""

    code = "token_invalid"
    message = "无法识别：手机码请让村民刷新后重新出示，户卡请重新扫描或手输卡号"


class TokenWrongVillageError(ValidationError):
    code = "token_wrong_village"
    message = "这是其他村的兑换码，不能在本村使用"


class TokenExpiredError(ValidationError):
    code = "token_expired"
    message = "兑换码已过期，请让村民刷新后重新出示"


class TokenUsedError(ConflictError):
    """The nonce behind the code was consumed by an earlier redemption (a replay)."""

    code = "token_used"
    message = "该兑换码已使用过，请让村民刷新后重新出示"


class CardUnknownError(NotFoundError):
    code = "card_unknown"
    message = "查无此户卡，请核对卡号"


class CardRevokedError(ConflictError):
    """A lost or reissued card: its serial no longer identifies the household."""

    code = "card_revoked"
    message = "该户卡已挂失或已补办新卡，不能使用"


class OutsideRedemptionWindowError(ConflictError):
    code = "outside_redemption_window"
    message = "现在不是兑换时间"


class BelowThresholdError(ConflictError):
    code = "below_threshold"
    message = "本期积分未达到兑换门槛"


class OutOfStockError(ConflictError):
    code = "out_of_stock"
    message = "商品库存不足"


class LimitExceededError(ConflictError):
    """A good's per-household limit for the period would be exceeded."""

    code = "limit_exceeded"
    message = "超过该商品每户每期的限兑数量"


class GoodUnavailableError(ConflictError):
    """A good or store that is inactive (下架, 停业), or a good of another store."""

    code = "good_unavailable"
    message = "该商品暂不可兑换"


class CancelNotAllowedError(ConflictError):
    """Only a completed redemption of today (Beijing time) can be cancelled."""

    code = "cancel_not_allowed"
    message = "只能撤销当天的兑换记录"


class OrderStateError(ConflictError):
    """An order that is no longer pending (collected or cancelled)."""

    code = "order_not_pending"
    message = "该订单已领取或已取消"
