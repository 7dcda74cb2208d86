"""Schemathesis against our own OpenAPI document, every operation, signed in as an admin:
no response is a server error, and every response conforms to the documented schema."""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.api.conftest import build_world, make_app


@pytest.fixture(scope="module")
def admin_app(databases):
    url = databases.fresh()
    app = make_app(url)
    world = build_world(app)
    app.config["SCHEMATHESIS_TOKEN"] = world.tokens["admin"]
    yield app
    app.extensions["points.engine"].dispose()
    databases.drop(url)


@pytest.fixture(scope="module")
def api_schema(admin_app):
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", admin_app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors_and_responses_match_the_schema(case, admin_app):
    # The sign-out operation would revoke the shared token mid-run; it is covered elsewhere.
    if case.method == "DELETE" and case.path == "/api/v1/auth/token":
        pytest.skip("revokes the token the run uses")
    token = admin_app.config["SCHEMATHESIS_TOKEN"]
    case.call_and_validate(
        headers={"Authorization": f"Bearer {token}"},
        checks=[not_a_server_error, response_schema_conformance],
    )
