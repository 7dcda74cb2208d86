"""The record and batch operations are served by lean views (issue 18, fourth pass) but are
documented exactly as flask-smorest documented them before: their OpenAPI entries, with every
component schema they reference, equal the snapshot taken from the decorated views.

Regenerate the snapshot only for an intended change of the documented contract:
    python -m tests.api.test_record_openapi > tests/api/data/record_openapi.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.api.conftest import make_app

SNAPSHOT = Path(__file__).parent / "data" / "record_openapi.json"
OPERATIONS = (
    ("/api/v1/villages/{code}/claims", "post"),
    ("/api/v1/villages/{code}/claims/batch", "post"),
)


def documented(spec: dict) -> dict:
    """The record operations of `spec` and the component schemas they reach, by name."""
    operations = {
        f"{method.upper()} {path}": spec["paths"][path][method] for path, method in OPERATIONS
    }
    parameters = {path: spec["paths"][path].get("parameters") for path, _ in OPERATIONS}
    schemas: dict = {}
    pending = [operations]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/components/"):
                kind, name = ref.split("/")[2:4]
                key = f"{kind}/{name}"
                if key not in schemas:
                    schemas[key] = spec["components"][kind][name]
                    pending.append(schemas[key])
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return {"operations": operations, "path_parameters": parameters, "components": schemas}


def _spec(tmp_path) -> dict:
    app = make_app(f"sqlite:///{tmp_path / 'spec.db'}")
    response = app.test_client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    return response.json


def test_record_operations_are_documented_as_before(tmp_path):
    got = documented(_spec(tmp_path))
    assert got == json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    # The snapshot is not vacuous: both bodies, both answers and the error envelope are there.
    record = got["operations"]["POST /api/v1/villages/{code}/claims"]
    assert set(record["responses"]) >= {"201", "401", "403", "404", "409", "422"}
    assert "requestBody" in record and "schemas/Error" in got["components"]


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        spec = _spec(Path(folder))
    json.dump(documented(spec), sys.stdout, ensure_ascii=False, indent=1, sort_keys=True)
    sys.stdout.write("\n")
