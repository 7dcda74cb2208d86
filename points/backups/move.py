"""Move one village, with its whole history and photos, from one database into another.

`export_village` writes a zip: `village.json` (every row the village owns, table by table, in
an order where each row's references come first) and `evidence/` (its claim photos).
`import_village` inserts those rows into a database that may hold other villages: every row
gets a new id, every reference is rewritten through the id map, and the ledger rows (entries,
postings, hashes, seq, chain head) are copied unchanged.

The hash of an entry covers the ids it names (docs/decisions/0010-backups-and-moving.md), so
the import also writes `village_moves` (the head it came with) and `moved_ids` (new id -> the id
the entry was hashed with, for the tables the hash names); verify hashes the imported part of
the chain through that map, and entries posted after the move hash their own ids as usual.
"""

from __future__ import annotations

import json
import zipfile
from datetime import date, datetime
from pathlib import Path

from sqlalchemy import Date, DateTime, Table, insert, select, update
from sqlalchemy.orm import Session

from points.db import Base
from points.errors import ConflictError, PointsError, ValidationError
from points.ledger.journal import HASHED_ID_TABLES
from points.models import (
    AuditEvent,
    ChainHead,
    Evidence,
    MovedId,
    User,
    Village,
    VillageMove,
)

FORMAT = 1
# Tables never moved: global state of the source database, credentials and request caches
# (API tokens are issued again; idempotency records only guard retries of recent requests).
SKIPPED = {
    "leases",
    "api_tokens",
    "idempotency_records",
    "backups",
    "village_moves",
    "moved_ids",
}
# References that point forwards (to a row inserted later): inserted as NULL, then set.
DEFERRED = {
    ("households", "head_id"),
    ("claims", "entry_id"),
    ("boards", "correction_of"),
    ("boards", "corrected_by"),
    ("honour_lists", "correction_of"),
    ("honour_lists", "corrected_by"),
}
# Columns written with a placeholder and set at the end: rules can be inserted only into a draft
# catalog version (a trigger freezes adopted ones); a posted claim must name its entry, which is
# inserted after it.
LATE_VALUES = {("catalog_versions", "status"): "draft", ("claims", "status"): "in_notice"}


class VillageExistsError(ConflictError):
    code = "village_exists"


class MoveFileError(PointsError):
    code = "move_file_invalid"


def move_order() -> list[Table]:
    """Return the moved tables so that every non-deferred reference points to an earlier one."""
    tables = {t.name: t for t in Base.metadata.sorted_tables if t.name not in SKIPPED}
    deps = {
        name: {
            fk.column.table.name
            for fk in t.foreign_keys
            if (name, fk.parent.name) not in DEFERRED
            and fk.column.table.name != name
            and fk.column.table.name in tables
        }
        for name, t in tables.items()
    }
    order: list[Table] = []
    done: set[str] = set()
    while len(done) < len(tables):
        ready = sorted(n for n in tables if n not in done and deps[n] <= done)
        if not ready:
            raise RuntimeError(f"cyclic references among {set(tables) - done}")
        for name in ready:
            order.append(tables[name])
            done.add(name)
    return order


# ---------------------------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------------------------


def export_village(
    session: Session, *, code: str, path: Path, evidence_root: Path | None, now: datetime
) -> dict:
    """Write village `code` with its whole history and photos to the zip `path`; return its
    manifest (code, head, row counts). Reads only."""
    village = session.execute(select(Village).where(Village.code == code)).scalar_one_or_none()
    if village is None:
        raise ValidationError(f"村庄 {code} 不存在")
    if session.execute(select(VillageMove.id).where(VillageMove.village_id == village.id)).first():
        raise ValidationError(
            f"村庄 {code} 是从别处迁入的，暂不支持再次迁出（见 docs/decisions/0010）"
        )
    vid = village.id
    rows: dict[str, list[dict]] = {}
    for table in move_order():
        if table.name == "villages":
            q = select(table).where(table.c.id == vid)
        elif table.name == "users":
            continue  # below, once every reference to a user is known
        elif "village_id" in table.c:
            q = select(table).where(table.c.village_id == vid)
        else:
            raise RuntimeError(f"table {table.name} has no village_id and is not handled")
        pk = list(table.primary_key.columns)
        rows[table.name] = [_dump(table, r._mapping) for r in session.execute(q.order_by(*pk))]
    user_ids = _referenced_users(rows)
    user_ids |= set(
        session.execute(
            select(User.id).where(
                User.resident_id.in_([r["id"] for r in rows.get("residents", [])])
            )
        ).scalars()
    )
    users = User.__table__
    rows["users"] = [
        _dump(users, r._mapping)
        for r in session.execute(
            select(users).where(users.c.id.in_(sorted(user_ids))).order_by(users.c.id)
        )
    ]
    head = session.execute(
        select(ChainHead.seq, ChainHead.hash).where(ChainHead.village_id == vid)
    ).first()
    manifest = {
        "format": FORMAT,
        "code": code,
        "name": village.name,
        "exported_at": now.isoformat(),
        "head": [head.seq, head.hash] if head else [0, ""],
        "counts": {name: len(r) for name, r in rows.items()},
    }
    photos = (
        session.execute(select(Evidence.stored_name).where(Evidence.village_id == vid))
        .scalars()
        .all()
    )
    partial = Path(str(path) + ".part")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("manifest.json", json.dumps(manifest, ensure_ascii=False, indent=1))
        zf.writestr("village.json", json.dumps(rows, ensure_ascii=False))
        if evidence_root is not None:
            for name in photos:
                file = Path(evidence_root) / str(vid) / name
                if file.is_file():
                    zf.write(file, f"evidence/{name}", compress_type=zipfile.ZIP_STORED)
    partial.replace(path)
    return manifest


def _referenced_users(rows: dict[str, list[dict]]) -> set[int]:
    found: set[int] = set()
    for name, table_rows in rows.items():
        cols = [
            fk.parent.name
            for fk in Base.metadata.tables[name].foreign_keys
            if fk.column.table.name == "users"
        ]
        for row in table_rows:
            found.update(row[c] for c in cols if row[c] is not None)
    return found


def _dump(table: Table, mapping) -> dict:
    out = {}
    for col in table.columns:
        value = mapping[col.name]
        if isinstance(value, datetime | date):
            value = value.isoformat()
        out[col.name] = value
    return out


def _load(table: Table, row: dict) -> dict:
    out = {}
    for col in table.columns:
        value = row.get(col.name)
        if value is not None and isinstance(col.type, DateTime):
            value = datetime.fromisoformat(value)
        elif value is not None and isinstance(col.type, Date):
            value = date.fromisoformat(value)
        elif (
            value is not None and hasattr(col.type, "impl") and isinstance(col.type.impl, DateTime)
        ):
            value = datetime.fromisoformat(value)
        out[col.name] = value
    return out


# ---------------------------------------------------------------------------------------------
# Import
# ---------------------------------------------------------------------------------------------


def read_move_manifest(path: Path) -> dict:
    """Return an export file's manifest; refuse a file that is not a village export."""
    try:
        with zipfile.ZipFile(path) as zf:
            manifest = json.loads(zf.read("manifest.json"))
            zf.getinfo("village.json")
        if manifest.get("format") != FORMAT or not manifest.get("code"):
            raise ValueError("format")
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise MoveFileError(f"不是有效的村庄迁移文件：{path}") from exc
    return manifest


def import_village(
    session: Session,
    *,
    path: Path,
    evidence_root: Path | None,
    now: datetime,
    actor_id: int | None = None,
) -> dict:
    """Insert the village in export `path` with new ids; return {code, village_id, head, counts}.

    Refuses a village code that exists here. Staff usernames taken here by someone else are
    renamed `<username>@<code>` (reported); a resident's phone taken here is refused, since a
    phone signs one person in. Flushes, never commits: the caller's transaction is the import.
    """
    manifest = read_move_manifest(path)
    code = manifest["code"]
    if session.execute(select(Village.id).where(Village.code == code)).first():
        raise VillageExistsError(f"村庄代码 {code} 已存在，不能重复导入")
    with zipfile.ZipFile(path) as zf:
        rows: dict[str, list[dict]] = json.loads(zf.read("village.json"))
        photos = [i for i in zf.infolist() if i.filename.startswith("evidence/")]
        ids: dict[str, dict[int, int]] = {}
        later: list[tuple[Table, int, str, object]] = []  # (table, new id, column, value)
        renamed: dict[str, str] = {}
        for table in move_order():
            for row in rows.get(table.name, []):
                values = _load(table, row)
                if table.name == "users":
                    _free_user_names(session, values, code, renamed)
                old_id = values.pop("id", None) if "id" in table.c else None
                for fk in table.foreign_keys:
                    col, target = fk.parent.name, fk.column.table.name
                    old_ref = values.get(col)
                    if old_ref is None:
                        continue
                    if (table.name, col) in DEFERRED:
                        values[col] = None
                        later.append((table, old_id, col, (target, old_ref)))
                        continue
                    try:
                        values[col] = ids[target][old_ref]
                    except KeyError as exc:
                        raise MoveFileError(
                            f"迁移文件不完整：{table.name}.{col} 指向缺失的 {target} {old_ref}"
                        ) from exc
                for (tname, col), placeholder in LATE_VALUES.items():
                    if tname == table.name and values.get(col) != placeholder:
                        later.append((table, old_id, col, values[col]))
                        values[col] = placeholder
                if old_id is None:
                    session.execute(insert(table).values(**values))
                    continue
                new_id = session.execute(
                    insert(table).values(**values).returning(table.c.id)
                ).scalar_one()
                ids.setdefault(table.name, {})[old_id] = new_id
        for table, old_id, col, value in later:
            if isinstance(value, tuple):
                target, old_ref = value
                value = ids[target][old_ref]
            session.execute(
                update(table).where(table.c.id == ids[table.name][old_id]).values({col: value})
            )
        village_id = ids["villages"][rows["villages"][0]["id"]]
        head = manifest["head"]
        session.add(
            VillageMove(
                village_id=village_id,
                moved_at=now,
                source=Path(path).name[:200],
                through_seq=head[0],
                through_hash=head[1] or "",
            )
        )
        session.add_all(
            MovedId(village_id=village_id, kind=kind, new_id=new, old_id=old)
            for kind in HASHED_ID_TABLES
            for old, new in ids.get(kind, {}).items()
        )
        if evidence_root is not None:
            folder = Path(evidence_root) / str(village_id)
            folder.mkdir(parents=True, exist_ok=True)
            for info in photos:
                name = info.filename.removeprefix("evidence/")
                if not name or "/" in name or ".." in name:
                    raise MoveFileError("迁移文件中有不安全的路径")
                (folder / name).write_bytes(zf.read(info))
    session.add(
        AuditEvent(
            village_id=village_id,
            actor_id=actor_id,
            action="village.import",
            object_type="village",
            object_id=str(village_id),
            summary=f"从 {Path(path).name} 迁入村庄 {code}，账链头 {head[0]}",
            details={"head": head, "renamed_users": renamed},
            created_at=now,
        )
    )
    session.flush()
    return {
        "code": code,
        "village_id": village_id,
        "head": head,
        "counts": {k: len(v) for k, v in rows.items()},
        "renamed_users": renamed,
    }


def _free_user_names(session: Session, values: dict, code: str, renamed: dict) -> None:
    username, phone = values.get("username"), values.get("phone")
    if username and session.execute(select(User.id).where(User.username == username)).first():
        new = f"{username}@{code}"[:64]
        if session.execute(select(User.id).where(User.username == new)).first():
            raise ConflictError(f"用户名 {username} 和 {new} 都已被使用")
        values["username"] = renamed[username] = new
    if phone and session.execute(select(User.id).where(User.phone == phone)).first():
        raise ConflictError(
            "迁移文件中有用户的手机号已在本系统登记，请先处理重复的手机号",
            errors={"phone": ["已被使用"]},
        )
