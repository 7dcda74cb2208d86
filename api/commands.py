"""What every feature's `points …` commands share."""

from __future__ import annotations

import click
from sqlalchemy import select

from points import org
from points.models import Village


def pick_village(session, code: str | None) -> Village:
    """Return the village named by --village, or the only one when there is one."""
    if code:
        return org.get_village(session, code)
    villages = session.execute(select(Village)).scalars().all()
    if len(villages) != 1:
        raise click.UsageError("请用 --village 指定村庄编码 (several or no villages exist)")
    return villages[0]
