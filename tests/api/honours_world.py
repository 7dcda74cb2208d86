"""Fresh honour lists in a given state for the authorization matrix (approve, publish… use
one up per call)."""

from __future__ import annotations

import itertools

from points import honours
from points.db import utcnow
from points.models import HonourList, Village
from points.org.access import load_actor

# Each fresh list takes its own ended year (2000–2025): one live list per village, kind and
# year. So a matrix rule gets one list, made once: only the role it admits in its own
# village changes the list's state (everyone else is refused first), and only once.
_years = {"awards": itertools.count(2000), "models": itertools.count(2000)}
_made: dict[tuple[int, str], tuple[str, str, str]] = {}
LIST_STATE = {"/approve": "draft", "/nominations": "draft", "/publish": "approved"}


def fresh_list(app, world, state: str = "published", kind: str = "awards") -> tuple[int, int, str]:
    """A 表彰 (or 道德模范) list of village A nominating a member of household 1 (by the
    reviewer, so the admin may approve it). Returns (list id, its entry's id, the household's
    record ref)."""
    with app.extensions["points.sessionmaker"]() as s, s.begin():
        village = s.get(Village, world.a.id)
        admin = load_actor(s, world.users["admin"].id)
        reviewer = load_actor(s, world.users["reviewer"].id)
        year = next(_years[kind])
        item = honours.draft_list(s, village=village, kind=kind, year=year, now=utcnow())
        entry = honours.nominate(
            s, item=item, actor=reviewer, household_id=world.home1.id,
            resident_id=world.members[world.home1.id][0], text="热心公益",
            title="优秀群众" if kind == "awards" else "道德模范", consent_note="本人同意",
        )  # fmt: skip
        if state in ("approved", "published"):
            honours.approve_list(s, item=item, actor=admin, now=utcnow())
        if state == "published":
            honours.publish_list(s, item=item, actor=admin, now=utcnow())
        ref = honours.record_ref(s, village=village, household_id=world.home1.id)
        return item.id, entry.id, ref


def open_honour_appeal(app, world) -> int:
    """An open appeal by household 1's resident against their entry on a published list."""
    list_id, entry_id, _ref = fresh_list(app, world, kind="models")
    with app.extensions["points.sessionmaker"]() as s, s.begin():
        resident = load_actor(s, world.users["resident"].id)
        return honours.appeal(
            s, item=s.get(HonourList, list_id), entry_id=entry_id, actor=resident,
            reason="不属实", now=utcnow(),
        ).id  # fmt: skip


def honour_ids(app, world, rule: str) -> tuple[str, str, str]:
    """Return (list id, entry id, record ref) for a matrix rule, fresh in the state it needs."""
    if "<int:list_id>" not in rule and "<ref>" not in rule:
        return "<int:list_id>", "<int:honour_entry_id>", "<ref>"
    key = (id(app), rule)
    if key not in _made:
        state = next((s for end, s in LIST_STATE.items() if rule.endswith(end)), "published")
        list_id, entry_id, ref = fresh_list(app, world, state)
        _made[key] = (str(list_id), str(entry_id), ref)
    return _made[key]
