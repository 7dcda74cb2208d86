"""Hot statements compiled once per dialect and run straight on the driver's cursor.

Recording's few statements each cost more in SQLAlchemy's execution machinery (the compiled
cache's key, an execution context, a cursor result, row processing) than in the database:
on SQLite about 80 of a statement's 100 µs, on PostgreSQL about 120 of 300 (decision 0032).
A `Direct` statement is a Core statement compiled once per dialect; running it converts the
parameters with the statement's own bind processors, sends the SQL on the connection's
driver cursor and converts the rows with the columns' own result processors, so what is
written and read is what `Connection.execute` would write and read (tests compare both).

What stays as with `Connection.execute`: the statement runs on the caller's connection in
its transaction (the connection begins it first, so SQLite's write turn and BEGIN IMMEDIATE
apply); the engine's `before_cursor_execute` and `after_cursor_execute` listeners see it
(statement budgets, the read-only guard; listeners that rewrite the statement, `retval=True`,
are not supported); a driver error is raised as SQLAlchemy's exception (IntegrityError …)
and a lost connection invalidates it. What does not: echo logging, and statements whose text
depends on their parameters (expanding IN lists, literal-execute values), which are refused
when the plan is built.
"""

from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.sql import ClauseElement


@dataclass(frozen=True, slots=True)
class _Plan:
    sql: str
    names: tuple[str, ...]  # bind names in the order the driver takes them (positional)
    positional: bool
    defaults: dict[str, Any]  # a bind's own value, used when the caller does not give one
    binders: tuple[tuple[str, Any], ...]  # (name, processor) for binds that convert
    readers: tuple[tuple[int, Any], ...]  # (column index, processor) for columns that convert
    row: type | None  # the row class (names of the columns); None: no rows returned


class Direct:
    """A Core statement run on the driver's cursor (see the module's text)."""

    __slots__ = ("_plans", "statement")

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._plans: dict[tuple[str, str], _Plan] = {}

    def _plan(self, dialect) -> _Plan:
        compiled = self.statement.compile(dialect=dialect)
        if (
            compiled.literal_execute_params
            or compiled.post_compile_params
            or compiled.escaped_bind_names
        ):
            raise ValueError("a Direct statement's text may not depend on its parameters")
        binds = compiled.binds
        names = tuple(compiled.positiontup) if compiled.positional else tuple(binds)
        binders = []
        for name, bind in binds.items():
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                binders.append((name, processor))
        defaults = {
            name: bind.value
            for name, bind in binds.items()
            if bind.value is not None or not bind.required
        }
        columns = list(getattr(self.statement, "exported_columns", ()))
        readers = []
        for index, column in enumerate(columns):
            processor = column.type.dialect_impl(dialect).result_processor(dialect, None)
            if processor is not None:
                readers.append((index, processor))
        row = namedtuple("Row", [c.key for c in columns], rename=True) if columns else None  # noqa: PYI024
        return _Plan(
            sql=compiled.string,
            names=names,
            positional=bool(compiled.positional),
            defaults=defaults,
            binders=tuple(binders),
            readers=tuple(readers),
            row=row,
        )

    def rows(self, connection: Connection, params: dict) -> list:
        """Run with `params` (by bind name) on `connection`; the rows, as named tuples."""
        dialect = connection.dialect
        key = (dialect.name, dialect.driver)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = self._plan(dialect)
        values = plan.defaults | params if plan.defaults else dict(params)
        for name, processor in plan.binders:
            values[name] = processor(values[name])
        args = tuple(values[name] for name in plan.names) if plan.positional else values
        # The connection's DB-API connection; a Connection begins its transaction on first use
        # (the engine's begin hooks: SQLite's write turn and BEGIN IMMEDIATE).
        if not connection.in_transaction():
            connection.begin()
        found = send(connection, plan.sql, args, fetch=plan.row is not None)
        if plan.row is None:
            return []
        make = plan.row._make
        if not plan.readers:
            return [make(r) for r in found]
        out = []
        for r in found:
            r = list(r)
            for index, processor in plan.readers:
                r[index] = processor(r[index])
            out.append(make(r))
        return out

    def first(self, connection: Connection, params: dict):
        """The first row, or None."""
        found = self.rows(connection, params)
        return found[0] if found else None

    def scalar(self, connection: Connection, params: dict):
        """The first row's first column (the row must exist)."""
        return self.rows(connection, params)[0][0]


def send(connection: Connection, sql: str, args=(), *, fetch: bool = False) -> list:
    """Send `sql` as it is on `connection`'s driver cursor, as `Connection.exec_driver_sql`
    would (the engine's cursor listeners see it; a driver error is raised as SQLAlchemy's),
    without beginning a transaction first: also for the transaction's own BEGIN, sent from
    the engine's begin hook. The rows when `fetch`, as the driver gives them."""
    cursor = connection.connection.dbapi_connection.cursor()
    try:
        dispatch = connection.dispatch
        if dispatch.before_cursor_execute:
            dispatch.before_cursor_execute(connection, cursor, sql, args, None, False)
        found = []
        try:
            cursor.execute(sql, args)
            if fetch:
                found = cursor.fetchall()
        except Exception as error:  # noqa: BLE001 - translated (or re-raised) by SQLAlchemy
            connection._handle_dbapi_exception(error, sql, args, cursor, None)
        if dispatch.after_cursor_execute:
            dispatch.after_cursor_execute(connection, cursor, sql, args, None, False)
        return found
    finally:
        cursor.close()
