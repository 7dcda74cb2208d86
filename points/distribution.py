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

UPGRADING a database already distributed: migrations/env.py installs `CitusUpgrade` (below) on the
migration context, so a new migration's foreign keys, unique keys and tables are fitted to the
cluster in the migration's own transaction (decision 0025); migrations carry no Citus branch.
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


# --- Migrating a database that is already distributed --------------------------------------
#
# A fresh cluster migrates everything and then distributes (above). A later migration run on a
# distributed database would fail as written: `ForeignKey("households.id")` needs `households.id`
# alone to be unique, which it no longer is (the key is (village_id, id)), and a new unique index
# without village_id on a distributed table is refused. `CitusUpgrade` makes such a run work
# without any Citus branch in the migration: migrations/env.py installs it on alembic's
# migration context when the database already has distributed tables; then, in the migration's
# own transaction,
#
# - every foreign key a migration creates (in a new table, on an added column, or by
#   create_foreign_key) is set aside instead of created;
# - a unique constraint or unique index created on a table that is already distributed gets
#   village_id in front (the same rule as `_rekey`); new tables are rekeyed by `distribute`;
# - after the last migration, `finish()` runs `distribute()` (new tables become distributed or
#   reference tables, colocated as usual) and adds the set-aside foreign keys back exactly as the
#   fresh path would: composite between village tables, dropped from a global to a village table,
#   unchanged otherwise.
#
# A migration that fails part-way rolls back whole (PostgreSQL's transactional DDL), distribution
# included, so the database is never left half upgraded.


@dataclass(frozen=True)
class DeferredForeignKey:
    """A foreign key a migration asked for, to be created once its tables are distributed."""

    table: str
    name: str | None
    columns: tuple[str, ...]
    ref: str
    ref_columns: tuple[str, ...]
    ondelete: str | None = None
    onupdate: str | None = None
    deferrable: bool | None = None
    initially: str | None = None
    match: str | None = None

    @classmethod
    def of(cls, fk) -> DeferredForeignKey:
        """From a sqlalchemy ForeignKeyConstraint attached to its table."""
        targets = [element.target_fullname.split(".") for element in fk.elements]
        refs = {t[-2] for t in targets}
        if len(refs) != 1:
            raise ValueError(f"foreign key {fk.name} names several tables: {sorted(refs)}")
        return cls(
            table=fk.table.name,
            name=str(fk.name) if fk.name else None,
            columns=tuple(fk.column_keys),
            ref=refs.pop(),
            ref_columns=tuple(t[-1] for t in targets),
            ondelete=fk.ondelete,
            onupdate=fk.onupdate,
            deferrable=fk.deferrable,
            initially=fk.initially,
            match=fk.match,
        )

    def as_distributed(self) -> DeferredForeignKey | None:
        """The key as the fresh path leaves it on the cluster: composite between village tables,
        None (no key) from a global table to a village table, unchanged otherwise."""
        kind, ref_kind = TABLES.get(self.table), TABLES.get(self.ref)
        if kind == GLOBAL and ref_kind == VILLAGE:
            return None
        if kind == VILLAGE and ref_kind == VILLAGE and DISTRIBUTION_COLUMN not in self.columns:
            return DeferredForeignKey(
                self.table,
                self.name,
                (DISTRIBUTION_COLUMN, *self.columns),
                self.ref,
                (DISTRIBUTION_COLUMN, *self.ref_columns),
                self.ondelete,
                self.onupdate,
                self.deferrable,
                self.initially,
                self.match,
            )
        return self

    def create(self, conn: Connection) -> None:
        from sqlalchemy import Column, ForeignKeyConstraint, Integer, MetaData, Table
        from sqlalchemy.schema import AddConstraint

        metadata = MetaData()
        ref = Table(self.ref, metadata, *(Column(c, Integer) for c in self.ref_columns))
        table = (
            ref
            if self.ref == self.table
            else Table(self.table, metadata, *(Column(c, Integer) for c in self.columns))
        )
        for column in self.columns:
            if column not in table.c:
                table.append_column(Column(column, Integer))
        fk = ForeignKeyConstraint(
            list(self.columns),
            [ref.c[c] for c in self.ref_columns],
            name=self.name,
            ondelete=self.ondelete,
            onupdate=self.onupdate,
            deferrable=self.deferrable,
            initially=self.initially,
            match=self.match,
        )
        table.append_constraint(fk)
        conn.execute(AddConstraint(fk))


class CitusUpgrade:
    """One alembic run on an already distributed database (see the comment above)."""

    def __init__(self, conn: Connection, *, hashed: set[str] | None = None) -> None:
        self.conn = conn
        self.deferred: list[DeferredForeignKey] = []
        self.report: DistributionReport | None = None
        # the tables already hash-distributed (unique keys created on them need village_id)
        self.hashed = (
            hashed
            if hashed is not None
            else set(
                conn.execute(
                    text(
                        "SELECT logicalrelid::regclass::text FROM pg_dist_partition "
                        "WHERE partmethod = 'h'"
                    )
                ).scalars()
            )
        )

    @classmethod
    def needed(cls, conn: Connection) -> CitusUpgrade | None:
        """A CitusUpgrade when the database is a Citus coordinator whose schema is already
        distributed; None otherwise (a fresh cluster migrates first and distributes after)."""
        if not is_citus(conn):
            return None
        distributed = conn.execute(
            text(
                "SELECT count(*) FROM pg_dist_partition p JOIN pg_class c "
                "ON c.oid = p.logicalrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = current_schema()"
            )
        ).scalar()
        return cls(conn) if distributed else None

    def install(self, migration_context) -> None:
        """Route the migration context's DDL through the rules above."""
        impl = migration_context.impl
        impl.__class__ = _citus_impl_class(type(impl))
        impl.citus_upgrade = self
        self.conn.execute(text("SET LOCAL citus.enable_unsafe_triggers = on"))
        self.conn.execute(text("SET LOCAL citus.multi_shard_modify_mode = 'sequential'"))

    def defer(self, fk) -> None:
        key = DeferredForeignKey.of(fk)
        if key not in self.deferred:
            self.deferred.append(key)

    def forget(self, table: str, name: str | None = None) -> bool:
        """Drop set-aside keys of a table (all, or the one named); True if any was dropped."""
        before = len(self.deferred)
        self.deferred = [
            k for k in self.deferred if not (k.table == table and (name is None or k.name == name))
        ]
        return len(self.deferred) < before

    def on_distributed_table(self, table) -> bool:
        return table is not None and table.name in self.hashed

    def finish(self) -> DistributionReport:
        """Distribute the tables the migrations created, then add the set-aside foreign keys."""
        self.report = distribute(self.conn)
        for key in self.deferred:
            final = key.as_distributed()
            if final is None:
                self.report.dropped_foreign_keys.append(f"{key.table}.{key.name}")
                continue
            final.create(self.conn)
        return self.report


_IMPL_CLASSES: dict[type, type] = {}


def _citus_impl_class(base: type) -> type:
    """A subclass of alembic's PostgreSQL implementation applying CitusUpgrade's rules."""
    if base in _IMPL_CLASSES or base in _IMPL_CLASSES.values():
        return _IMPL_CLASSES.get(base, base)
    from sqlalchemy import Column, ForeignKeyConstraint, Index, Integer, UniqueConstraint

    def _with_village_id(table) -> None:
        if DISTRIBUTION_COLUMN not in table.c:
            table.append_column(Column(DISTRIBUTION_COLUMN, Integer))

    class CitusImpl(base):
        citus_upgrade: CitusUpgrade

        def create_table(self, table, **kw):
            for fk in table.foreign_key_constraints:
                self.citus_upgrade.defer(fk)
            super().create_table(table, include_foreign_key_constraints=[], **kw)

        def drop_table(self, table, **kw):
            self.citus_upgrade.forget(table.name)
            super().drop_table(table, **kw)

        def add_column(self, table_name, column, *, inline_references=None, **kw):
            if inline_references:
                for fk in column.foreign_keys:
                    self.citus_upgrade.defer(fk.constraint)
            super().add_column(table_name, column, inline_references=False, **kw)

        def add_constraint(self, const, **kw):
            if isinstance(const, ForeignKeyConstraint):
                self.citus_upgrade.defer(const)
                return
            if (
                isinstance(const, UniqueConstraint)
                and self.citus_upgrade.on_distributed_table(const.table)
                and DISTRIBUTION_COLUMN not in const.columns
            ):
                table = const.table
                _with_village_id(table)
                const = UniqueConstraint(
                    table.c[DISTRIBUTION_COLUMN],
                    *const.columns,
                    name=const.name,
                    deferrable=const.deferrable,
                    initially=const.initially,
                    **const.dialect_kwargs,
                )
            super().add_constraint(const, **kw)

        def drop_constraint(self, const, **kw):
            table = getattr(const, "table", None)
            if (
                const.name
                and table is not None
                and self.citus_upgrade.forget(table.name, const.name)
            ):
                return  # never created: it was set aside earlier in this run
            super().drop_constraint(const, **kw)

        def create_index(self, index, **kw):
            names = {getattr(e, "name", None) for e in index.expressions}
            if (
                index.unique
                and self.citus_upgrade.on_distributed_table(index.table)
                and DISTRIBUTION_COLUMN not in names
            ):
                table = index.table
                _with_village_id(table)
                index = Index(
                    index.name,
                    table.c[DISTRIBUTION_COLUMN],
                    *index.expressions,
                    unique=True,
                    **index.dialect_kwargs,
                )
            super().create_index(index, **kw)

    CitusImpl.__name__ = CitusImpl.__qualname__ = f"Citus{base.__name__}"
    _IMPL_CLASSES[base] = CitusImpl
    return CitusImpl
