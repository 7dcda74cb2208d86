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
