"""Who may do what where: the one place where roles and scopes are decided.

A user holds grants: a role in a village, a recorder's role in one group of a village, or a
supervisor's role over a town. A user linked to a resident is also a `resident` of that
resident's village, seeing that household only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, bindparam, false, select, true
from sqlalchemy.orm import Session

from points.errors import PermissionDeniedError
from points.models import ApiToken, Household, Resident, User, Village
from points.models.org import Role, RoleAssignment

STAFF_ROLES = frozenset({Role.ADMIN, Role.REVIEWER, Role.RECORDER, Role.CLERK})
# Roles that see every household of their village (recorders see their group, residents theirs).
VILLAGE_WIDE = frozenset({Role.ADMIN, Role.REVIEWER, Role.CLERK})


@dataclass(frozen=True)
class Grant:
    role: str
    village_id: int | None = None
    group_id: int | None = None
    town: str | None = None


@dataclass(frozen=True)
class Actor:
    """The signed-in user as the domain sees them: id, grants, and own household if a resident."""

    user_id: int
    name: str
    grants: tuple[Grant, ...]
    resident_id: int | None = None
    household_id: int | None = None
    village_id: int | None = None  # the resident's village

    def roles_in(self, village: Village) -> set[str]:
        """Return the roles this actor holds in `village` (supervisor via its town)."""
        roles = {
            g.role
            for g in self.grants
            if g.village_id == village.id or (g.town is not None and g.town == village.town)
        }
        if self.resident_id is not None and self.village_id == village.id:
            roles.add(Role.RESIDENT)
        return roles

    def has(self, village: Village, *roles: str) -> bool:
        """Return True when the actor holds any of `roles` in the village."""
        return bool(self.roles_in(village) & set(roles))

    def require(self, village: Village, *roles: str) -> None:
        """Raise PermissionDeniedError unless the actor holds one of `roles` in the village."""
        if not self.has(village, *roles):
            raise PermissionDeniedError(
                "您在本村没有执行此操作的权限", village=village.code, roles=sorted(roles)
            )

    def recorder_groups(self, village: Village) -> set[int]:
        """Return the groups in which the actor records (empty unless a scoped recorder)."""
        return {
            g.group_id
            for g in self.grants
            if g.role == Role.RECORDER and g.village_id == village.id and g.group_id is not None
        }

    def household_scope(self, village: Village) -> ColumnElement[bool]:
        """Return a WHERE clause on Household limiting it to what this actor may see."""
        roles = self.roles_in(village)
        if roles & VILLAGE_WIDE or (Role.RECORDER in roles and not self.recorder_groups(village)):
            return true()
        clauses = []
        if Role.RECORDER in roles:
            clauses.append(Household.group_id.in_(self.recorder_groups(village)))
        if Role.RESIDENT in roles and self.household_id is not None:
            clauses.append(Household.id == self.household_id)
        if not clauses:
            return false()
        from sqlalchemy import or_

        return or_(*clauses)

    def can_see_household(self, village: Village, household: Household) -> bool:
        """Return True when the household is within the actor's scope in the village."""
        if household.village_id != village.id:
            return False
        roles = self.roles_in(village)
        if roles & VILLAGE_WIDE:
            return True
        groups = self.recorder_groups(village)
        if Role.RECORDER in roles and (not groups or household.group_id in groups):
            return True
        return Role.RESIDENT in roles and household.id == self.household_id

    def require_household(self, village: Village, household: Household) -> None:
        """Raise PermissionDeniedError unless the household is within the actor's scope."""
        if not self.can_see_household(village, household):
            raise PermissionDeniedError("您只能查看或操作自己权限范围内的农户")

    def can_read_statement(self, village: Village, household: Household) -> bool:
        """Return True when the actor may read the household's full statement (every entry
        with its reason): admins and reviewers, recorders in scope, the household itself.
        A clerk alone sees what the counter needs (balance, threshold, redemptions)."""
        if not self.can_see_household(village, household):
            return False
        roles = self.roles_in(village)
        if roles & {Role.ADMIN, Role.REVIEWER}:
            return True
        groups = self.recorder_groups(village)
        if Role.RECORDER in roles and (not groups or household.group_id in groups):
            return True
        return Role.RESIDENT in roles and household.id == self.household_id

    def require_statement_reader(self, village: Village, household: Household) -> None:
        """Raise PermissionDeniedError unless the actor may read the household's statement."""
        if not self.can_read_statement(village, household):
            raise PermissionDeniedError(
                "收银员只能查看农户的余额和兑换记录，不能查看积分明细", reason="statement"
            )

    def require_recorder_for(self, village: Village, household: Household) -> None:
        """Raise unless the actor may record for this household (admins anywhere, recorders
        in their own group); nobody records for their own household."""
        if household.village_id != village.id:
            raise PermissionDeniedError("该农户不属于本村")
        if self.household_id is not None and self.household_id == household.id:
            raise PermissionDeniedError(
                "不能为自己家庭登记或审核积分（回避原则）", reason="own_household"
            )
        roles = self.roles_in(village)
        if Role.ADMIN in roles:
            return
        groups = self.recorder_groups(village)
        if Role.RECORDER in roles and (not groups or household.group_id in groups):
            return
        raise PermissionDeniedError("网格员只能为本网格的农户登记积分")

    def towns(self) -> set[str]:
        """Return the towns this actor supervises."""
        return {g.town for g in self.grants if g.role == Role.SUPERVISOR and g.town}


def load_actor(session: Session, user_id: int) -> Actor:
    """Build the Actor of a user from its role assignments and resident link."""
    found = find_signed_in(session, user_id=user_id)
    return found.actor if found else actor_of(session.get(User, user_id))


@dataclass(frozen=True)
class SignedIn:
    """An active user as a request signs in: the Actor, built from rows (no ORM objects), the
    user's page-session epoch and, when found by a bearer token, the token's id and life."""

    actor: Actor
    session_epoch: int
    token_id: int | None = None
    token_expires_at: datetime | None = None
    token_revoked_at: datetime | None = None


# Built once, and plain rows rather than ORM objects: this runs on every signed-in request,
# where building the statement and loading a user with its roles through the ORM cost more
# than the query itself. One row per role assignment (one with NULLs when there is none).
_users, _tokens = User.__table__.c, ApiToken.__table__.c
_residents, _roles = Resident.__table__.c, RoleAssignment.__table__.c
_SIGN_IN_COLUMNS = (
    _users.id,
    _users.display_name,
    _users.session_epoch,
    _users.resident_id,
    _residents.household_id,
    _residents.village_id,
    _roles.role,
    _roles.village_id,
    _roles.group_id,
    _roles.town,
)
_SIGN_IN_BY_ID = (
    select(*_SIGN_IN_COLUMNS)
    .select_from(User.__table__)
    .outerjoin(Resident.__table__, _residents.id == _users.resident_id)
    .outerjoin(RoleAssignment.__table__, _roles.user_id == _users.id)
    .where(_users.id == bindparam("user_id"), _users.active.is_(True))
    .order_by(_roles.id)
)


def _by_token(*extra):
    return (
        select(_tokens.id, _tokens.expires_at, _tokens.revoked_at, *_SIGN_IN_COLUMNS, *extra)
        .select_from(ApiToken.__table__)
        .join(User.__table__, _users.id == _tokens.user_id)
        .outerjoin(Resident.__table__, _residents.id == _users.resident_id)
        .outerjoin(RoleAssignment.__table__, _roles.user_id == _users.id)
        .where(_tokens.token_hash == bindparam("token_hash"), _users.active.is_(True))
    )


_SIGN_IN_BY_TOKEN = _by_token().order_by(_roles.id)
# The same rows, with the order of each (its role assignment's id) as a last column, for a
# statement that reads them together with something else (`org.find_signed_in_at_village`).
SIGN_IN_BY_TOKEN_ROWS = _by_token(_roles.id.label("role_order"))


def find_signed_in(
    session: Session, *, user_id: int | None = None, token_hash: str | None = None
) -> SignedIn | None:
    """Return an active user by id, or by a bearer token's hash with the token; else None.

    One statement: the user, its role assignments and its resident link come back together
    (with the token), so signing a request in costs one round trip on the hot path of every
    API call. The caller checks the token's expiry and revocation.
    """
    if token_hash is not None:
        rows = session.connection().execute(_SIGN_IN_BY_TOKEN, {"token_hash": token_hash}).all()
        return signed_in_from_rows(rows, token=True)
    rows = session.connection().execute(_SIGN_IN_BY_ID, {"user_id": user_id}).all()
    return signed_in_from_rows(rows, token=False)


def signed_in_from_rows(rows, *, token: bool) -> SignedIn | None:
    """The SignedIn of `_SIGN_IN_BY_TOKEN`'s (`token`) or `_SIGN_IN_BY_ID`'s rows (one per
    role assignment, in order; a role's columns NULL when there is none); None without rows."""
    if not rows:
        return None
    skip = 3 if token else 0
    first = rows[0]
    uid, name, epoch, resident_id, household_id, village_id = first[skip : skip + 6]
    grants = tuple(Grant(*row[skip + 6 : skip + 10]) for row in rows if row[skip + 6] is not None)
    actor = Actor(
        user_id=uid,
        name=name,
        grants=grants,
        resident_id=resident_id,
        household_id=household_id if resident_id is not None else None,
        village_id=village_id if resident_id is not None else None,
    )
    if not token:
        return SignedIn(actor, epoch)
    return SignedIn(actor, epoch, first[0], first[1], first[2])


def actor_of(user: User) -> Actor:
    """Return the Actor of a loaded user (roles and resident loaded with it)."""
    grants = tuple(Grant(r.role, r.village_id, r.group_id, r.town) for r in user.roles)
    resident = user.resident
    return Actor(
        user_id=user.id,
        name=user.display_name,
        grants=grants,
        resident_id=user.resident_id,
        household_id=resident.household_id if resident else None,
        village_id=resident.village_id if resident else None,
    )
