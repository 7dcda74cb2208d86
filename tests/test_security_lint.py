"""bandit (medium severity and above) reports nothing in the shipped code; an accepted finding
is marked `# nosec BXXX` with its reason beside it. The same command runs in .ci/run."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from tests.processes import run

ROOT = Path(__file__).resolve().parents[1]
COMMAND = ["-c", "pyproject.toml", "-r", "points", "api", "-ll", "-q"]


def test_bandit_finds_nothing_at_medium_or_above():
    exe = shutil.which("bandit") or str(Path(sys.executable).with_name("bandit"))
    if not Path(exe).exists():
        pytest.skip("bandit is not installed (pip install -e '.[test]')")
    result = run([exe, *COMMAND], cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
