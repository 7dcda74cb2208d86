"""The domain package stays free of delivery libraries (ARCHITECTURE: layers)."""

import ast
from pathlib import Path

FORBIDDEN = {
    "flask",
    "werkzeug",
    "flask_smorest",
    "marshmallow",
    "apscheduler",
    "qrcode",
    "click",
    "jinja2",
    "itsdangerous",
    "openpyxl",
    "yaml",
    "reportlab",
    "api",
}
ROOT = Path(__file__).resolve().parent.parent


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_points_imports_no_delivery_library():
    offenders = {
        str(p.relative_to(ROOT)): sorted(_imports(p) & FORBIDDEN)
        for p in (ROOT / "points").rglob("*.py")
        if _imports(p) & FORBIDDEN
    }
    assert offenders == {}


def test_the_check_itself_sees_imports(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("import flask\nfrom marshmallow import fields\n")
    assert _imports(probe) & FORBIDDEN == {"flask", "marshmallow"}
