"""Household roster (花名册) import: every row is checked first; all rows land or none do."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, insert, select, text, update
from sqlalchemy.orm import Session

from points import ledger
from points.db import bulk_postgresql, insert_rows
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
CHUNK = 500  # keys per IN list
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
    # Only the roster's own phone numbers are looked up (not every phone in the database).
    wanted = sorted({str(r.get("phone") or "").strip() for _, r in rows} - {""})
    existing_phones: set[str] = set()
    for i in range(0, len(wanted), CHUNK):
        existing_phones.update(
            session.execute(
                select(Resident.phone).where(Resident.phone.in_(wanted[i : i + CHUNK]))
            ).scalars()
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
    by_home: dict[str, list[tuple[int, dict]]] = {}
    for n, row in rows:
        by_home.setdefault(str(row["number"]).strip(), []).append((n, row))
    groups = _ensure_groups(
        session, village, [str(m[0][1]["group"]).strip() for m in by_home.values()], result
    )
    # In bulk: households, then residents, then each household's head, one statement each
    # on PostgreSQL (arrays, with the new ids returned), one executemany each elsewhere (a
    # 500-household village is a handful of statements, not thousands).
    homes = insert_rows(
        session,
        Household.__table__,
        [
            {
                "village_id": village.id,
                "group_id": groups[str(members[0][1]["group"]).strip()],
                "number": number,
                "door_plate": str(members[0][1].get("door_plate") or "").strip() or None,
                "active": True,
                "created_at": now,
            }
            for number, members in by_home.items()
        ],
        returning="number, id",
    )
    if homes is not None:
        home_ids = dict(homes.all())
    else:
        home_ids = _ids_by(session, Household.number, Household.id, village.id, list(by_home))
    # Core rows: the ORM would split the rows wherever a phone is missing.
    people = insert_rows(
        session,
        Resident.__table__,
        [
            {
                "village_id": village.id,
                "household_id": home_ids[number],
                "name": str(row["name"]).strip(),
                "phone": str(row.get("phone") or "").strip() or None,
                "is_party_member": _yes(row.get("is_party_member")),
                "party_branch": str(row.get("party_branch") or "").strip() or None,
                "active": True,
                "created_at": now,
            }
            for number, members in by_home.items()
            for _n, row in members
        ],
        returning="id, household_id",
    )
    # Each household's members in insertion order: ids are handed out in that order within
    # this transaction, which holds the rows it just inserted.
    members_of: dict[int, list[int]] = {}
    if people is not None:
        for rid, hid in sorted(people.all()):
            members_of.setdefault(hid, []).append(rid)
    ids = list(home_ids.values()) if people is None else []
    for i in range(0, len(ids), CHUNK):
        for rid, hid in session.execute(
            select(Resident.id, Resident.household_id)
            .where(Resident.household_id.in_(ids[i : i + CHUNK]))
            .order_by(Resident.id)
        ):
            members_of.setdefault(hid, []).append(rid)
    heads = []
    openings: list[ledger.AwardLine] = []
    for index, (number, members) in enumerate(by_home.items(), 1):
        hid, people = home_ids[number], members_of[home_ids[number]]
        head = next((k for k, (_n, row) in enumerate(members) if _yes(row.get("is_head"))), 0)
        heads.append({"hid": hid, "head": people[head]})
        result.households += 1
        result.residents += len(members)
        opening = sum(_int(r.get("opening")) or 0 for _n, r in members)
        if opening:
            openings.append(
                ledger.AwardLine(hid, opening, f"opening:{hid}", "期初积分（纸质台账结转）")
            )
        if progress:
            progress(index)
    if bulk_postgresql(session):
        session.execute(
            _SET_HEADS,
            {
                "v": village.id,
                "hids": [h["hid"] for h in heads],
                "heads": [h["head"] for h in heads],
            },
        )
    else:
        session.connection().execute(
            update(Household.__table__)
            .where(Household.__table__.c.id == bindparam("hid"))
            .values(head_id=bindparam("head")),
            heads,
        )
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


# Every new household's head in one statement (PostgreSQL).
_SET_HEADS = text(
    """
    UPDATE households SET head_id = h.head
    FROM unnest(CAST(:hids AS INTEGER[]), CAST(:heads AS INTEGER[])) AS h(id, head)
    WHERE households.village_id = :v AND households.id = h.id
    """
)


def _ensure_groups(session, village, names: list[str], result: RosterResult) -> dict[str, int]:
    """Return group name -> id, creating the roster's new groups in one INSERT."""
    groups = dict(
        session.execute(select(Group.name, Group.id).where(Group.village_id == village.id)).all()
    )
    new = sorted(set(names) - set(groups))
    if new:
        session.execute(insert(Group), [{"village_id": village.id, "name": n} for n in new])
        groups = dict(
            session.execute(
                select(Group.name, Group.id).where(Group.village_id == village.id)
            ).all()
        )
        result.groups_created = len(new)
    return groups


def _ids_by(session, key_col, id_col, village_id: int, keys: list[str]) -> dict[str, int]:
    found = {}
    for i in range(0, len(keys), CHUNK):
        found.update(
            session.execute(
                select(key_col, id_col).where(
                    key_col.table.c.village_id == village_id, key_col.in_(keys[i : i + CHUNK])
                )
            ).all()
        )
    return found


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
