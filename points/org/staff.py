"""Staff accounts after creation: roles (a recorder's grid group), disabling, a new password,
and the link to the person's own resident record (which the 回避 guard reads)."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from points.auth.passwords import hash_password
from points.errors import ConflictError, NotFoundError, ValidationError
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


def create_town_supervisor(
    session: Session, *, town: str, username: str, display_name: str, password: str
) -> User:
    """Create a supervisor (镇督导员) of a town: reads the town's totals, creates first admins."""
    user = _new_user(session, username=username, display_name=display_name, password=password)
    user.roles.append(RoleAssignment(role=Role.SUPERVISOR, town=town))
    session.flush()
    return user


def create_first_admin(
    session: Session,
    *,
    village: Village,
    town: str,
    username: str,
    display_name: str,
    password: str,
) -> User:
    """Create a village's first admin from the town; refused once the village has an active
    admin (from then on the village manages its own accounts)."""
    if village.town != town:
        raise ValidationError("只能为本镇的村创建管理员")
    has_admin = session.execute(
        select(User.id)
        .join(RoleAssignment, RoleAssignment.user_id == User.id)
        .where(
            RoleAssignment.village_id == village.id,
            RoleAssignment.role == Role.ADMIN,
            User.active.is_(True),
        )
    ).first()
    if has_admin:
        raise ValidationError(f"{village.name}已有管理员，其他账号由村里自己创建")
    user = _new_user(session, username=username, display_name=display_name, password=password)
    user.roles.append(RoleAssignment(role=Role.ADMIN, village_id=village.id))
    session.flush()
    return user


def _new_user(session: Session, *, username: str, display_name: str, password: str) -> User:
    if not re.match(r"^[A-Za-z0-9_.-]{3,64}$", username or ""):
        raise ValidationError(
            "用户名只能用字母、数字、下划线、点和连字符（3–64 位）",
            errors={"username": ["格式不正确"]},
        )
    if session.execute(select(User.id).where(User.username == username)).first():
        raise ConflictError(f"用户名 {username} 已被使用")
    name = (display_name or "").strip()
    if not name or len(name) > 50:
        raise ValidationError("请填写姓名（不超过 50 字）", errors={"display_name": ["不能为空"]})
    user = User(username=username, display_name=name, password_hash="")
    set_password(session, user=user, password=password)
    session.add(user)
    return user
