"""Household roster (花名册) import: every row is checked first; all rows land or none do."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from points import ledger
from points.errors import ValidationError
from points.models import Group, Household, Resident, Scheme, Village
from points.models.ledger import EntryKind

# Column keys and their Chinese headers, in sheet order. `*` marks a required cell.
COLUMNS = {
    "number": "户号*",
    "group": "小组*",
    "door_plate": "门牌",
    "name": "姓名*",
    "is_head": "户主",
    "phone": "手机号",
    "is_party_member": "党员",
    "party_branch": "党支部",
    "opening": "期初积分",
}
# Accepted and dropped without storing: the product never keeps full ID numbers.
DROPPED_HEADERS = {"身份证号", "身份证", "身份证号码"}
PHONE_RE = re.compile(r"^1\d{10}$")
YES, NO = {"是", "y", "yes", "1", "true", "√"}, {"否", "", "n", "no", "0", "false"}


def _col(key: str) -> str:
    return COLUMNS[key].rstrip("*")


# A hostile or mangled file can have a problem in every cell: the answer lists this many.
MAX_PROBLEMS_SHOWN = 200


@dataclass(frozen=True)
class Problem:
    row: int
    column: str
    message: str

    def __str__(self) -> str:
        return f"第 {self.row} 行 {self.column}：{self.message}"


class RosterProblemsError(ValidationError):
    """The roster has bad rows; nothing was imported. `problems` lists every one."""

    code = "roster_invalid"

    def __init__(self, problems: list[Problem]):
        shown = problems[:MAX_PROBLEMS_SHOWN]
        more = f"（只列出前 {len(shown)} 处）" if len(problems) > len(shown) else ""
        super().__init__(
            f"花名册有 {len(problems)} 处问题，未导入任何数据{more}",
            errors={"rows": [p.__dict__ for p in shown]},
        )
        self.problems = problems


@dataclass
class RosterResult:
    households: int = 0
    residents: int = 0
    groups_created: int = 0
    opening_entries: int = 0


def validate_rows(
    session: Session, *, village: Village, rows: list[tuple[int, dict]]
) -> list[Problem]:
    """Return every problem of the rows (row number, column header, Chinese message)."""
    problems: list[Problem] = []
    add = problems.append
    existing_numbers = set(
        session.execute(
            select(Household.number).where(Household.village_id == village.id)
        ).scalars()
    )
    existing_phones = set(
        session.execute(select(Resident.phone).where(Resident.phone.is_not(None))).scalars()
    )
    seen_phones: dict[str, int] = {}
    homes: dict[str, dict] = {}
    for n, row in rows:
        for key in ("number", "group", "name"):
            if not str(row.get(key) or "").strip():
                add(Problem(n, _col(key), "必填，不能为空"))
        number = str(row.get("number") or "").strip()
        if len(number) > 32:
            add(Problem(n, _col("number"), "户号不能超过 32 个字符"))
        if number in existing_numbers:
            add(Problem(n, _col("number"), f"户号 {number} 在本村已存在"))
        if len(str(row.get("name") or "")) > 50:
            add(Problem(n, _col("name"), "姓名不能超过 50 个字"))
        if len(str(row.get("group") or "")) > 100:
            add(Problem(n, _col("group"), "小组名称不能超过 100 个字"))
        phone = str(row.get("phone") or "").strip()
        if phone:
            if not PHONE_RE.match(phone):
                add(Problem(n, _col("phone"), f"手机号“{phone}”应为 11 位数字"))
            elif phone in existing_phones:
                add(Problem(n, _col("phone"), "该手机号已登记在其他村民名下"))
            elif phone in seen_phones:
                add(Problem(n, _col("phone"), f"与第 {seen_phones[phone]} 行手机号重复"))
            seen_phones.setdefault(phone, n)
        for key in ("is_head", "is_party_member"):
            if str(row.get(key) or "").strip().lower() not in YES | NO:
                add(Problem(n, _col(key), "请填“是”或“否”"))
        opening = row.get("opening")
        if opening not in (None, ""):
            value = _int(opening)
            if value is None or value < 0 or value > 100_000:
                add(Problem(n, _col("opening"), "期初积分应为 0–100000 的整数"))
        if number:
            home = homes.setdefault(
                number, {"group": row.get("group"), "row": n, "opening_row": None, "heads": 0}
            )
            if str(row.get("group") or "").strip() != str(home["group"] or "").strip():
                add(
                    Problem(
                        n,
                        _col("group"),
                        f"同一户（户号 {number}）的小组与第 {home['row']} 行不一致",
                    )
                )
            if opening not in (None, "", 0, "0"):
                if home["opening_row"] is not None:
                    add(
                        Problem(
                            n,
                            _col("opening"),
                            f"同一户的期初积分只能填一次（已在第 {home['opening_row']} 行填写）",
                        )
                    )
                home["opening_row"] = home["opening_row"] or n
            if _yes(row.get("is_head")):
                home["heads"] += 1
                if home["heads"] > 1:
                    add(Problem(n, _col("is_head"), f"户号 {number} 有多个户主"))
    return problems


def import_roster(
    session: Session,
    *,
    village: Village,
    rows: list[tuple[int, dict]],
    actor_id: int | None,
    now: datetime,
    progress: Callable[[int], None] | None = None,
) -> RosterResult:
    """Validate every row, then create groups, households, residents and opening balances.

    `rows` are (sheet row number, {column key: cell value}). Raises RosterProblemsError with
    every problem and writes nothing when any row is bad.
    """
    if not rows:
        raise RosterProblemsError([Problem(1, "表头", "花名册没有数据行")])
    problems = validate_rows(session, village=village, rows=rows)
    if problems:
        raise RosterProblemsError(problems)
    result = RosterResult()
    groups = {
        g.name: g
        for g in session.execute(select(Group).where(Group.village_id == village.id)).scalars()
    }
    by_home: dict[str, list[tuple[int, dict]]] = {}
    for n, row in rows:
        by_home.setdefault(str(row["number"]).strip(), []).append((n, row))
    openings: list[ledger.AwardLine] = []
    for index, (number, members) in enumerate(by_home.items(), 1):
        first = members[0][1]
        group_name = str(first["group"]).strip()
        if group_name not in groups:
            groups[group_name] = Group(village_id=village.id, name=group_name)
            session.add(groups[group_name])
            session.flush()
            result.groups_created += 1
        home = Household(
            village_id=village.id,
            group_id=groups[group_name].id,
            number=number,
            door_plate=str(first.get("door_plate") or "").strip() or None,
        )
        session.add(home)
        session.flush()
        people = []
        for _n, row in members:
            person = Resident(
                village_id=village.id,
                household_id=home.id,
                name=str(row["name"]).strip(),
                phone=str(row.get("phone") or "").strip() or None,
                is_party_member=_yes(row.get("is_party_member")),
                party_branch=str(row.get("party_branch") or "").strip() or None,
            )
            people.append((person, _yes(row.get("is_head"))))
        session.add_all([p for p, _ in people])
        session.flush()
        home.head_id = next((p.id for p, head in people if head), people[0][0].id)
        result.households += 1
        result.residents += len(people)
        opening = sum(_int(r.get("opening")) or 0 for _n, r in members)
        if opening:
            openings.append(
                ledger.AwardLine(home.id, opening, f"opening:{home.id}", "期初积分（纸质台账结转）")
            )
        if progress:
            progress(index)
    session.flush()
    if openings:
        scheme = (
            session.execute(
                select(Scheme)
                .where(
                    Scheme.village_id == village.id,
                    Scheme.subject_kind == "household",
                    Scheme.redeemable.is_(True),
                )
                .order_by(Scheme.id)
            )
            .scalars()
            .first()
        )
        if scheme is None:
            raise ValidationError("本村还没有可兑换的户积分方案，无法导入期初积分")
        ledger.post_awards(
            session,
            scheme=scheme,
            lines=openings,
            actor_id=actor_id,
            now=now,
            kind=EntryKind.OPENING,
        )
        result.opening_entries = len(openings)
    return result


def _yes(value) -> bool:
    return str(value or "").strip().lower() in YES


def _int(value) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    text = str(value).strip()
    return int(text) if re.fullmatch(r"\d+", text) else None
