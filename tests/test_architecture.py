"""The layout holds: import-linter's contracts (pyproject.toml) pass on the real tree and fail
when a forbidden import or a cycle is added; no module imports another module's private name."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import run

ROOT = Path(__file__).resolve().parent.parent
LINT = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """Run `lint-imports` on the tree at `root` with that tree's pyproject.toml."""
    return run(
        [sys.executable, "-c", LINT, "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root)},
    )


def test_the_contracts_hold_on_the_tree():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("points/ledger/journal.py", "import flask", "imports no delivery code"),
        ("points/ledger/verify.py", "from api import db", "imports no delivery code"),
        (
            "points/ledger/statements.py",
            "from points import claims",
            "the ledger imports no feature",
        ),
        ("api/web/helpers.py", "from api.shop import qr", "imports no feature"),
        ("api/claims/rest.py", "from api.shop import actions", "independent of each other"),
        ("points/ledger/journal.py", "from points.ledger import statements", "No import cycles"),
    ],
)
def test_a_forbidden_import_breaks_a_contract(tmp_path, module, line, contract):
    for name in ("points", "api"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    path = tmp_path / module
    path.write_text(path.read_text(encoding="utf-8") + f"\n{line}  # noqa\n", encoding="utf-8")

    result = lint_imports(tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    broken = [row for row in result.stdout.splitlines() if row.endswith("BROKEN")]
    assert broken, result.stdout
    assert contract in result.stdout.replace("\n", " ")


def private_imports(path: Path) -> list[str]:
    """Return `module._name` for each private name `path` imports from a project module."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.ImportFrom):
            continue
        ours = node.level > 0 or (node.module or "").split(".")[0] in ("points", "api")
        found += [f"{node.module}.{a.name}" for a in node.names if ours and a.name.startswith("_")]
    return found


def test_no_module_imports_a_private_name_of_another():
    offenders = {
        str(p.relative_to(ROOT)): private_imports(p)
        for package in ("points", "api")
        for p in (ROOT / package).rglob("*.py")
        if private_imports(p)
    }
    assert offenders == {}


def test_the_private_name_check_sees_one(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("from api.shop.rest import _settings, blp\nfrom flask import _x\n")
    assert private_imports(probe) == ["api.shop.rest._settings"]
