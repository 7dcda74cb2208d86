"""How many SQL statements a record request runs: the hot path's budget, counted (not timed).

Counting is deterministic: it breaks when a change adds a lazy load, loads the user twice or
makes the batch do per-household work, which is what made recording slow at 16 clients.
Transaction control (SQLite's `BEGIN IMMEDIATE`; PostgreSQL's BEGIN is implicit in the driver
and never reaches the listener) is not a query and is not counted, so both databases count
the same statements.
"""

from __future__ import annotations

from sqlalchemy import event

from tests.api.conftest import auth

# One record: sign-in and village (one statement), the rule with the subject's lock (and the
# household, when no cap use is counted on it), the household's cap use (capped rules), the
# claim and its audit event (one statement on PostgreSQL, two on SQLite).
ONE_RECORD_BUDGET = {"postgresql": 4, "sqlite": 5}
UNCAPPED_RECORD_BUDGET = {"postgresql": 3, "sqlite": 4}
BATCH_BUDGET = 30
TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


class StatementLog:
    """Every statement the app's engine sends while a request runs."""

    def __init__(self, app):
        self.engine = app.extensions["points.engine"]
        self.statements: list[str] = []

    def _on_execute(self, conn, cursor, statement, parameters, context, executemany):
        if not statement.lstrip().upper().startswith(TRANSACTION_CONTROL):
            self.statements.append(statement)

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._on_execute)
        return self

    def __exit__(self, *exc):
        event.remove(self.engine, "before_cursor_execute", self._on_execute)

    def report(self) -> str:
        return "\n".join(f"{i + 1:3}. {s[:160]}" for i, s in enumerate(self.statements))


def _record_twice(app, client, world, rule_code: str, budgets: dict):
    """Record by `rule_code` twice (the first warms the caches: compiled statements, the
    adopted catalog) and count the second's statements against this database's budget."""
    headers = auth(world.tokens["admin"])
    body = {"household_id": world.home2.id, "rule_code": rule_code, "occurred_on": "2026-11-20"}
    url = f"/api/v1/villages/{world.a.code}/claims"
    warm = client.post(url, json=body, headers=headers)
    assert warm.status_code == 201, warm.json
    with StatementLog(app) as log:
        response = client.post(url, json=body, headers=headers)
    assert response.status_code == 201, response.json
    budget = budgets[app.extensions["points.engine"].dialect.name]
    assert len(log.statements) <= budget, log.report()
    return response.json


def test_recording_one_claim_runs_at_most_its_budget(app, client, world):
    answer = _record_twice(app, client, world, "MEI-01", ONE_RECORD_BUDGET)
    assert answer["points"] == 5 and answer["evidence"] == [] and answer["objections"] == []


def test_recording_by_an_uncapped_rule_reads_no_cap_use(app, client, world):
    answer = _record_twice(app, client, world, "ZZ-09", UNCAPPED_RECORD_BUDGET)
    assert answer["points"] == 1 and answer["household_id"] == world.home2.id


def test_a_twenty_household_batch_runs_at_most_thirty_statements(app, client, world):
    from tests.factories import make_household

    maker = app.extensions["points.sessionmaker"]
    with maker() as s, s.begin():
        from points.models import Group, Village

        village = s.get(Village, world.a.id)
        group = s.get(Group, world.group2.id)
        homes = [make_household(s, village, group).id for _ in range(19)]
    subjects = [{"household_id": h} for h in [world.home2.id, *homes]]
    headers = auth(world.tokens["admin"])
    body = {
        "title": "清扫村道",
        "rule_code": "MEI-01",
        "occurred_on": "2026-11-20",
        "subjects": subjects,
    }
    warm = client.post(
        f"/api/v1/villages/{world.a.code}/claims/batch",
        json={**body, "subjects": subjects[:2], "occurred_on": "2026-11-19"},
        headers=headers,
    )
    assert warm.status_code == 201, warm.json
    with StatementLog(app) as log:
        response = client.post(
            f"/api/v1/villages/{world.a.code}/claims/batch", json=body, headers=headers
        )
    assert response.status_code == 201, response.json
    assert len(response.json["claims"]) == 20
    assert {c["points"] for c in response.json["claims"]} == {5}
    # The answer's claims are only read (not kept in the session): still whole, no photos yet.
    assert all(c["evidence"] == [] and c["objections"] == [] for c in response.json["claims"])
    assert len({c["id"] for c in response.json["claims"]}) == 20
    assert len(log.statements) <= BATCH_BUDGET, log.report()
