"""The Citus mode: every table classified once, and the step that distributes the schema.

Deployments on one server (SQLite or PostgreSQL) never run this. On a Citus cluster
(`POINTS_DISTRIBUTED=citus`, docs/deploy.md, decision 0018) `points migrate` runs the alembic
migrations as everywhere, then `distribute()`:

- village tables (every row belongs to one village: `village_id NOT NULL`) are hash-distributed
  by `village_id`, all colocated, so one village's rows of every table live on one worker;
- global tables (villages, users, tokens, audit, ...) become reference tables (a copy on every
  node);
- because Citus requires it, each primary key and unique constraint/index of a village table
  that lacks `village_id` is rebuilt with `village_id` in front (ids stay unique in practice:
  the coordinator's sequences hand them out), and each foreign key between village tables
  becomes composite `(village_id, x) -> (village_id, id)`, which also guarantees that a row
  never points into another village. Foreign keys from a global table to a village table
  (users.resident_id, role_assignments.group_id) cannot exist on Citus: they are dropped there
  and the code that writes them checks the row it names.

ADDING A TABLE: list it in `TABLES` below, as VILLAGE or GLOBAL. The step refuses to run
(`UnclassifiedTableError`) while a table of the database is not listed, so a new table can never
end up as a coordinator-only table by accident. Nothing else is needed: keys and foreign keys are
rewritten from the database's own catalog.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sqlalchemy import Connection, text

VILLAGE = "village"  # distributed by village_id, colocated with every other village table
GLOBAL = "global"  # a reference table, copied to every node

DISTRIBUTION_COLUMN = "village_id"

# Every table of the schema (alembic's own alembic_version excepted). Keep it sorted.
TABLES: dict[str, str] = {
    "accounts": VILLAGE,
    "api_tokens": GLOBAL,
    "audit_events": GLOBAL,  # village_id is NULL for town- and system-wide events
    "backups": GLOBAL,
    "board_appeals": VILLAGE,
    "board_entries": VILLAGE,
    "boards": VILLAGE,
    "catalog_rules": VILLAGE,
    "catalog_versions": VILLAGE,
    "chain_heads": VILLAGE,
    "claim_batches": VILLAGE,
    "claim_evidence": VILLAGE,
    "claims": VILLAGE,
    "cycle_runs": VILLAGE,
    "event_attendances": VILLAGE,
    "event_groups": VILLAGE,
    "events": VILLAGE,
    "goods": VILLAGE,
    "groups": VILLAGE,
    "honour_appeals": VILLAGE,
    "honour_entries": VILLAGE,
    "honour_lists": VILLAGE,
    "honour_records": VILLAGE,
    "household_cards": VILLAGE,
    "households": VILLAGE,
    "idempotency_records": GLOBAL,  # keyed by user
    "journal_entries": VILLAGE,
    "leases": GLOBAL,
    "moved_ids": VILLAGE,
    "objections": VILLAGE,
    "party_reviews": VILLAGE,
    "periods": VILLAGE,
    "postings": VILLAGE,
    "qr_nonces": VILLAGE,
    "redemption_items": VILLAGE,
    "redemption_policies": VILLAGE,
    "redemption_quotas": VILLAGE,
    "redemptions": VILLAGE,
    "residents": VILLAGE,
    "role_assignments": GLOBAL,  # village_id is NULL for town supervisors
    "schemes": VILLAGE,
    "setting_changes": VILLAGE,
    "shop_order_items": VILLAGE,
    "shop_orders": VILLAGE,
    "stock_movements": VILLAGE,
    "stores": VILLAGE,
    "users": GLOBAL,
    "village_moves": VILLAGE,
    "villages": GLOBAL,
}

IGNORED = frozenset({"alembic_version"})  # alembic's bookkeeping stays on the coordinator


class UnclassifiedTableError(RuntimeError):
    """A table of the database is not listed in points.distribution.TABLES."""


@dataclass
class DistributionReport:
    reference: list[str] = field(default_factory=list)
    distributed: list[str] = field(default_factory=list)
    rekeyed: list[str] = field(default_factory=list)  # constraints/indexes given village_id
    dropped_foreign_keys: list[str] = field(default_factory=list)  # global -> village table


def is_citus(conn: Connection) -> bool:
    """True when the database has the citus extension."""
    if conn.dialect.name != "postgresql":
        return False
    return bool(
        conn.execute(text("SELECT count(*) FROM pg_extension WHERE extname = 'citus'")).scalar()
    )


def check_classified(conn: Connection) -> None:
    """Raise UnclassifiedTableError naming every table of the database missing from TABLES."""
    tables = _tables(conn)
    missing = sorted(t for t in tables if t not in TABLES)
    if missing:
        raise UnclassifiedTableError(
            f"table(s) {', '.join(missing)} not classified for the Citus mode: add each to "
            "points.distribution.TABLES as VILLAGE (has village_id NOT NULL) or GLOBAL"
        )
    wrong = sorted(
        t
        for t, kind in TABLES.items()
        if kind == VILLAGE and t in tables and not _has_village_id(conn, t)
    )
    if wrong:
        raise UnclassifiedTableError(
            f"table(s) {', '.join(wrong)} are classified VILLAGE but have no village_id NOT NULL"
        )


def distribute(conn: Connection, *, shard_count: int | None = None) -> DistributionReport:
    """Distribute every table not yet known to Citus; idempotent (a second run does nothing).

    Runs inside the caller's transaction on a connection to the coordinator; the caller commits.
    """
    if not is_citus(conn):
        raise RuntimeError("the Citus mode needs the citus extension in this database")
    check_classified(conn)
    report = DistributionReport()
    known = set(
        conn.execute(text("SELECT logicalrelid::regclass::text FROM pg_dist_partition")).scalars()
    )
    # A write to many shards in parallel followed by a write to a reference table (an audit
    # event, a user's sign-in counters) in one transaction is refused by Citus; one connection
    # per worker for multi-shard writes avoids it (router writes, the usual case, are unaffected).
    database = conn.execute(text("SELECT quote_ident(current_database())")).scalar()
    conn.execute(
        text(f"ALTER DATABASE {database} SET citus.multi_shard_modify_mode = 'sequential'")
    )
    todo = sorted(t for t in _tables(conn) if t not in known)
    if not todo:
        return report
    conn.execute(text("SET LOCAL citus.enable_unsafe_triggers = on"))
    conn.execute(text("SET LOCAL citus.multi_shard_modify_mode = 'sequential'"))
    if shard_count:
        conn.execute(text(f"SET LOCAL citus.shard_count = {int(shard_count)}"))

    # 1. Foreign keys touching a table to convert: dropped now, put back (composite) at the end.
    fks = conn.execute(
        text(
            "SELECT c.conname, c.conrelid::regclass::text, c.confrelid::regclass::text, "
            "pg_get_constraintdef(c.oid) FROM pg_constraint c "
            "JOIN pg_namespace n ON n.oid = c.connamespace "
            "WHERE c.contype = 'f' AND n.nspname = current_schema() "
            "AND (c.conrelid::regclass::text = ANY(:t) OR c.confrelid::regclass::text = ANY(:t)) "
            "ORDER BY 2, 1"
        ),
        {"t": todo},
    ).all()
    for name, table, _ref, _def in fks:
        conn.execute(text(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"'))

    # 2. Keys of village tables without village_id get it in front.
    for table in (t for t in todo if TABLES[t] == VILLAGE):
        report.rekeyed += _rekey(conn, table)

    # 3. Global tables first (village tables have foreign keys to them), then village tables.
    for table in (t for t in todo if TABLES[t] == GLOBAL):
        conn.execute(text("SELECT create_reference_table(:t)"), {"t": table})
        report.reference.append(table)
    anchor = conn.execute(
        text(
            "SELECT logicalrelid::regclass::text FROM pg_dist_partition "
            "WHERE partmethod = 'h' ORDER BY colocationid, logicalrelid LIMIT 1"
        )
    ).scalar()
    for table in (t for t in todo if TABLES[t] == VILLAGE):
        conn.execute(
            text("SELECT create_distributed_table(:t, :col, colocate_with => :with)"),
            {"t": table, "col": DISTRIBUTION_COLUMN, "with": anchor or "default"},
        )
        anchor = anchor or table
        report.distributed.append(table)

    # 4. Foreign keys back: between village tables composite, global -> village dropped.
    for name, table, ref, definition in fks:
        kind, ref_kind = TABLES.get(table), TABLES.get(ref)
        if kind == GLOBAL and ref_kind == VILLAGE:
            report.dropped_foreign_keys.append(f"{table}.{name}")
            continue
        if kind == VILLAGE and ref_kind == VILLAGE:
            definition = _composite(definition)
        conn.execute(text(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}'))
    return report


def _tables(conn: Connection) -> set[str]:
    rows = conn.execute(
        text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
    ).scalars()
    return {t for t in rows if t not in IGNORED}


def _has_village_id(conn: Connection, table: str) -> bool:
    return bool(
        conn.execute(
            text(
                "SELECT count(*) FROM information_schema.columns WHERE table_schema = "
                "current_schema() AND table_name = :t AND column_name = :c AND is_nullable = 'NO'"
            ),
            {"t": table, "c": DISTRIBUTION_COLUMN},
        ).scalar()
    )


def _rekey(conn: Connection, table: str) -> list[str]:
    """Rebuild the table's primary key, unique constraints and unique indexes that lack
    village_id with village_id as their first column; return their names."""
    done = []
    constraints = conn.execute(
        text(
            "SELECT c.conname, c.contype, pg_get_constraintdef(c.oid) FROM pg_constraint c "
            "WHERE c.conrelid = CAST(:t AS regclass) AND c.contype IN ('p', 'u') "
            "AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.conrelid "
            "AND a.attnum = ANY(c.conkey) AND a.attname = :col)"
        ),
        {"t": table, "col": DISTRIBUTION_COLUMN},
    ).all()
    for name, _kind, definition in constraints:
        # 'PRIMARY KEY (id)' / 'UNIQUE (store_id, name)' -> village_id first
        rekeyed = re.sub(r"\(", f"({DISTRIBUTION_COLUMN}, ", definition, count=1)
        conn.execute(text(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"'))
        conn.execute(text(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {rekeyed}'))
        done.append(f"{table}.{name}")
    indexes = conn.execute(
        text(
            "SELECT ci.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "JOIN pg_class ci ON ci.oid = i.indexrelid "
            "WHERE i.indrelid = CAST(:t AS regclass) AND i.indisunique "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid) "
            "AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey) AND a.attname = :col)"
        ),
        {"t": table, "col": DISTRIBUTION_COLUMN},
    ).all()
    for name, definition in indexes:
        # 'CREATE UNIQUE INDEX x ON public.t USING btree (household_id) WHERE ...'
        rekeyed = re.sub(
            r"USING (\w+) \(", rf"USING \1 ({DISTRIBUTION_COLUMN}, ", definition, count=1
        )
        conn.execute(text(f'DROP INDEX "{name}"'))
        conn.execute(text(rekeyed))
        done.append(f"{table}.{name}")
    return done


_FK = re.compile(
    r"^FOREIGN KEY \((?P<cols>[^)]*)\) REFERENCES (?P<ref>[^(]+)\((?P<refcols>[^)]*)\)"
)


def _composite(definition: str) -> str:
    """'FOREIGN KEY (household_id) REFERENCES households(id)' ->
    'FOREIGN KEY (village_id, household_id) REFERENCES households(village_id, id)'."""
    m = _FK.match(definition)
    if m is None:
        raise ValueError(f"unexpected foreign key definition: {definition}")
    cols = [c.strip() for c in m["cols"].split(",")]
    if DISTRIBUTION_COLUMN in cols:
        return definition
    col = DISTRIBUTION_COLUMN
    return (
        f"FOREIGN KEY ({col}, {m['cols']}) REFERENCES {m['ref']}({col}, {m['refcols']})"
        + definition[m.end() :]
    )
