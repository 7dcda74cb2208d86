"""The default catalogs a new village starts from (defaults/<scheme code>.json): the first
draft is this one, edited by the 村两委 and adopted by the villagers' meeting."""

from __future__ import annotations

import json
from pathlib import Path

from points.catalog.rules import Rule, rule_from_dict

DEFAULTS = Path(__file__).parent / "defaults"


def default_catalog(scheme_code: str) -> tuple[str, list[Rule]] | None:
    """Return (title, rules) of the default catalog for a scheme code, or None if there is none."""
    path = DEFAULTS / f"{scheme_code}.json"
    if not path.exists():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    return data["name"], [rule_from_dict(item) for item in data["rules"]]
