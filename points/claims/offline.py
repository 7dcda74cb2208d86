"""Records made on a phone without signal reach the server later: refuse one whose rule or
household changed in the meantime, rather than record it under terms the recorder never saw."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy.orm import Session

from points.catalog.versions import find_rule
from points.errors import ConflictError, NotFoundError
from points.models import Group, Household, Resident, Scheme, Village


class ChangedSinceRecordedError(ConflictError):
    """What a queued record was made against changed before it reached the server; the
    recorder must look again and record anew (nothing is altered silently)."""

    code = "changed_since_recorded"
    message = "登记后情况有变，请核实后重新登记"

    def __init__(self, code: str, message: str, **details):
        super().__init__(message, **details)
        self.code = code


@dataclass(frozen=True)
class MadeAgainst:
    """What the recorder's page showed when the record was made (possibly offline)."""

    rule_id: int  # the catalog rule row, i.e. the item in one catalog version
    group_id: int | None = None  # the household's grid (网格/小组) then


def check_unchanged(
    session: Session,
    *,
    village: Village,
    scheme: Scheme,
    household_id: int,
    resident_id: int | None,
    rule_code: str,
    occurred_on: date,
    made_against: MadeAgainst,
) -> None:
    """Raise ChangedSinceRecordedError when the rule in force for the act's date is no longer
    the one the recorder saw, or the household (or member) left, or moved to another grid."""
    household = session.get(Household, household_id)
    if household is None or household.village_id != village.id or not household.active:
        raise ChangedSinceRecordedError(
            "household_gone", "该户已注销、合并或不在本村，本条登记未记入；请核实后重新登记"
        )
    if made_against.group_id is not None and household.group_id != made_against.group_id:
        group = session.get(Group, household.group_id)
        raise ChangedSinceRecordedError(
            "household_moved",
            f"户 {household.number} 已调整到“{group.name if group else '其他网格'}”，"
            "本条登记未记入；请由该网格的网格员核实后登记",
        )
    if resident_id is not None:
        person = session.get(Resident, resident_id)
        if person is None or person.household_id != household.id or not person.active:
            raise ChangedSinceRecordedError(
                "member_gone", "所选成员已迁出、去世或不在该户，本条登记未记入；请核实后重新登记"
            )
    try:
        version, row = find_rule(session, scheme=scheme, code=rule_code, on=occurred_on)
    except NotFoundError as exc:
        raise ChangedSinceRecordedError(
            "rule_changed", "登记后积分标准已更新，该项目已取消，本条登记未记入；请按新标准重新登记"
        ) from exc
    if row.id != made_against.rule_id:
        raise ChangedSinceRecordedError(
            "rule_changed",
            f"登记后积分标准已更新（现行第 {version.number} 版），“{row.name}”的分值或条件可能已变，"
            "本条登记未记入；请按新标准重新登记",
        )
