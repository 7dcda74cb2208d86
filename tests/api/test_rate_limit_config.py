"""The limiter's before-request pass is skipped while no limit applies there (issue 18, fourth
pass); a limit configured for every request still applies to the record path."""

from __future__ import annotations

import pytest

from api.web.identity import limiter
from tests.api.conftest import auth, make_app


@pytest.fixture
def restore_limiter():
    # The limiter is one object for every app of the process: limits configured for one app
    # stay on it (Flask-Limiter keeps them), so put back what the other tests run with.
    manager = limiter.limit_manager
    saved = (manager._default_limits, manager._application_limits)
    yield
    manager.set_default_limits(saved[0])
    manager.set_application_limits(saved[1])


@pytest.mark.parametrize("setting", ["RATELIMIT_DEFAULT", "RATELIMIT_APPLICATION"])
def test_a_configured_limit_applies_to_recording(db_url, world, setting, restore_limiter):
    app = make_app(db_url, **{setting: "2 per minute"})
    client = app.test_client()
    url = f"/api/v1/villages/{world.a.code}/claims"
    body = {"household_id": world.home2.id, "rule_code": "MEI-01", "occurred_on": "2026-11-20"}
    headers = auth(world.tokens["admin"])
    answers = [client.post(url, json=body, headers=headers) for _ in range(3)]
    assert [a.status_code for a in answers] == [201, 201, 429]
    assert answers[2].json["error"] == "too_many_requests"
    assert answers[0].headers["X-RateLimit-Limit"] == "2"


def test_without_a_configured_limit_recording_is_not_limited(client, world):
    url = f"/api/v1/villages/{world.a.code}/claims"
    body = {"household_id": world.home2.id, "rule_code": "MEI-01", "occurred_on": "2026-11-20"}
    headers = auth(world.tokens["admin"])
    answers = [client.post(url, json=body, headers=headers) for _ in range(3)]
    assert [a.status_code for a in answers] == [201, 201, 201]
    assert "X-RateLimit-Limit" not in answers[0].headers
