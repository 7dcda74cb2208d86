"""A psycopg cursor that describes a result only when the description is read.

psycopg builds one `Column` object per result column each time `cursor.description` is read
(about eight Python calls a column). SQLAlchemy reads it after every statement, but for a
statement it has run before (the compiled statement caches its result metadata) it only
checks whether there is a description at all: on recording's hot path that was a tenth of the
request's Python calls (a rule's row has 40-odd columns). Here the description is a sequence
that builds psycopg's own columns the first time anything in it is read, so code that does
read it gets exactly what psycopg gives. Installed by `points.db.make_engine` as the
connections' `cursor_factory` (client-side cursors; named server-side cursors are psycopg's).
"""

from __future__ import annotations

from collections.abc import Sequence

import psycopg
from psycopg.pq import ExecStatus

_TUPLES = (ExecStatus.TUPLES_OK, ExecStatus.SINGLE_TUPLE, ExecStatus.TUPLES_CHUNK)


class Cursor(psycopg.Cursor):
    """`psycopg.Cursor` with a lazily built `description` (see the module's text)."""

    __slots__ = ()

    @property
    def description(self) -> _Description | None:
        res = self.pgresult
        # As psycopg decides: columns if the result has fields or says it returned tuples.
        if res and (res.nfields or res.status in _TUPLES):
            return _Description(self, res)
        return None


class _Description(Sequence):
    """psycopg's list of `Column`s for one result, built on first read. It must be read
    before the cursor moves to another result (SQLAlchemy reads it at once, if at all)."""

    __slots__ = ("_columns", "_cursor", "_result")

    def __init__(self, cursor: Cursor, result) -> None:
        self._cursor, self._result, self._columns = cursor, result, None

    def _built(self) -> list[psycopg.Column]:
        if self._columns is None:
            if self._cursor.pgresult is not self._result:
                raise RuntimeError("a result's description read after the cursor moved on")
            self._columns = [psycopg.Column(self._cursor, i) for i in range(self._result.nfields)]
        return self._columns

    def __len__(self) -> int:
        return self._result.nfields

    def __getitem__(self, index):
        return self._built()[index]

    def __iter__(self):
        return iter(self._built())

    def __eq__(self, other) -> bool:
        return list(self) == other

    __hash__ = None  # a list's (unhashable)

    def __repr__(self) -> str:
        return repr(self._built())
