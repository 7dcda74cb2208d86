"""Staff accounts after creation: roles (a recorder's grid group), disabling, a new password,
and the link to the person's own resident record (which the 回避 guard reads)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from points.auth.passwords import hash_password
from points.errors import NotFoundError, ValidationError
from points.models import RoleAssignment, User, Village
from points.models.org import Role
from points.org.access import STAFF_ROLES
from points.org.operations import get_group, get_resident

ROLE_NAMES = {
    Role.ADMIN: "村两委（管理员）",
    Role.REVIEWER: "评议小组（审核）",
    Role.RECORDER: "网格员（登记）",
    Role.CLERK: "超市收银员",
}


def get_staff_user(session: Session, *, village: Village, user_id: int) -> User:
    """Return a user holding a staff role in the village; raise NotFoundError."""
    user = session.get(User, user_id)
    if user is None or not any(r.village_id == village.id for r in user.roles):
        raise NotFoundError("找不到该工作人员账号")
    return user


def village_roles(user: User, village: Village) -> list[RoleAssignment]:
    """Return the user's role assignments in the village."""
    return [r for r in user.roles if r.village_id == village.id]


def set_roles(
    session: Session,
    *,
    village: Village,
    user: User,
    roles: set[str],
    group_id: int | None,
    actor_id: int,
) -> User:
    """Replace the user's roles in the village (a recorder may be limited to one group)."""
    if not roles:
        raise ValidationError("至少选择一个角色（不再需要的账号请停用）")
    if not roles <= STAFF_ROLES:
        raise ValidationError("不支持的角色", errors={"roles": sorted(roles - STAFF_ROLES)})
    if user.id == actor_id and Role.ADMIN not in roles:
        raise ValidationError("不能取消自己的管理员角色（请让另一位管理员操作）")
    if group_id is not None:
        get_group(session, village=village, group_id=group_id)
    for assignment in village_roles(user, village):
        user.roles.remove(assignment)
    session.flush()
    for role in sorted(roles):
        user.roles.append(
            RoleAssignment(
                role=role,
                village_id=village.id,
                group_id=group_id if role == Role.RECORDER else None,
            )
        )
    session.flush()
    return user


def set_active(session: Session, *, user: User, active: bool, actor_id: int) -> User:
    """Disable (or enable again) a staff account; a disabled account cannot sign in."""
    if user.id == actor_id and not active:
        raise ValidationError("不能停用自己的账号")
    user.active = active
    session.flush()
    return user


def set_password(session: Session, *, user: User, password: str) -> User:
    """Give a staff account a new password (at least 8 characters)."""
    if len(password or "") < 8:
        raise ValidationError("密码至少 8 位", errors={"password": ["太短"]})
    user.password_hash = hash_password(password)
    session.flush()
    return user


def link_resident(
    session: Session, *, village: Village, user: User, resident_id: int | None
) -> User:
    """Link a staff account to the person's own resident record (or unlink with None), so
    nobody records or reviews for their own household."""
    if resident_id is not None:
        get_resident(session, village=village, resident_id=resident_id)
        other = session.execute(
            select(User.id).where(User.resident_id == resident_id, User.id != user.id)
        ).first()
        if other:
            raise ValidationError("该村民已关联了另一个账号（如本人的手机登录）")
    user.resident_id = resident_id
    session.flush()
    return user
