"""`points --help` lists every command without loading what the commands need (SQLAlchemy
models, the spreadsheet and PDF libraries, the pinyin dictionary): it used to take ~2.3 s of
imports. Checked by what the process imported, not by a clock."""

from __future__ import annotations

import json
import sys

import click

from api.cli import FEATURE_COMMANDS, main
from tests.processes import run

HEAVY = ("sqlalchemy", "openpyxl", "reportlab", "pypinyin", "points.models", "qrcode")

PROBE = """
import io, json, sys
from contextlib import redirect_stdout
from api.cli import main
out = io.StringIO()
with redirect_stdout(out):
    try:
        main(["--help"])
    except SystemExit:
        pass
print(json.dumps({"help": out.getvalue(), "modules": sorted(sys.modules)}))
"""


def test_help_lists_every_command_and_imports_nothing_heavy():
    probe = run([sys.executable, "-c", PROBE])
    assert probe.returncode == 0, probe.stderr
    result = json.loads(probe.stdout)
    for name in [*FEATURE_COMMANDS, "serve", "verify", "demo", "migrate"]:
        assert f"\n  {name} " in result["help"], name
    loaded = [m for m in result["modules"] for h in HEAVY if m == h or m.startswith(h + ".")]
    assert loaded == []


def test_the_listing_says_what_each_feature_command_says_of_itself():
    ctx = click.Context(main)
    for name, (_module, short_help) in FEATURE_COMMANDS.items():
        command = main.get_command(ctx, name)
        assert command is not None and command.name == name
        assert command.get_short_help_str(200) == short_help, name
