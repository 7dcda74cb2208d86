"""Schemathesis over every operation, signed in as an admin and as a resident: whatever a
staff laptop or a resident's phone sends, no answer is a server error or breaks its schema.

Operations are walked one by one with hypothesis, without schemathesis' pytest plugin, so
that this module does not depend on the plugin's API of the installed version."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from tests.api.conftest import build_world, make_app

EXAMPLES = 10
# Every check of `--checks all` but the two that judge which inputs the documented schemas
# accept (cross-field rules such as "username and password, or phone and PIN" are not in
# OpenAPI); a server error, a wrong status, content type, header or body all fail.
EXCLUDED = [positive_data_acceptance, negative_data_rejection]
# Sign-out revokes the token the run uses; it is tested in test_auth.py.
SKIP = {("DELETE", "/api/v1/auth/token")}


@pytest.fixture(scope="module", params=["resident", "admin"])
def signed_in_app(request, databases):
    url = databases.fresh()
    app = make_app(url)
    world = build_world(app)
    app.config["SCHEMATHESIS_TOKEN"] = world.tokens[request.param]
    yield app
    app.extensions["points.engine"].dispose()
    databases.drop(url)


def test_no_operation_answers_with_a_server_error(signed_in_app):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", signed_in_app)
    headers = {"Authorization": f"Bearer {signed_in_app.config['SCHEMATHESIS_TOKEN']}"}
    failures: list[str] = []
    seen = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SKIP:
            continue
        seen += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def run(case):
            case.call_and_validate(headers=headers, excluded_checks=EXCLUDED)

        try:
            run()
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}"[:2000])
    assert seen > 60  # every operation of the API was walked
    assert failures == []
