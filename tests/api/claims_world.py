"""Fresh claims in a given state, for tests that use one up per call (approve, post…)."""

from __future__ import annotations

from datetime import timedelta

from points import claims
from points.db import utcnow
from points.ledger.statements import get_scheme
from points.models import Claim, Evidence, Village
from points.org.access import load_actor


def make_claim(app, world, state: str = "in_notice", home=None, *, evidence: bool = False) -> int:
    """Create a claim for `home` (default household 1) in `state`; return its id.

    States: pending_review, in_notice, due (notice ended), posted.
    """
    home = home or world.home1
    now = utcnow()
    with app.extensions["points.sessionmaker"]() as s, s.begin():
        village = s.get(Village, world.a.id)
        scheme = get_scheme(s, village=village, code="household")
        # The grid worker records (so admins and reviewers may approve: maker ≠ checker).
        who = "recorder" if home.group_id == world.group1.id else "admin"
        admin = load_actor(s, world.users[who].id)
        code, description = ("FZ-59", "核实属实") if state == "pending_review" else ("ZZ-09", "")
        claim = claims.record(
            s,
            village=village,
            scheme=scheme,
            actor=admin,
            now=now,
            item=claims.ClaimInput(
                household_id=home.id,
                rule_code=code,
                occurred_on=now.date(),
                description=description,
            ),
        )
        if state in ("due", "posted"):
            claim.notice_until = now - timedelta(minutes=1)
            s.flush()
        if state == "posted":
            claims.post_claim(s, claim_id=claim.id, now=now)
        if evidence:
            from api.claims.evidence import evidence_dir

            with app.app_context():
                (evidence_dir(village.id) / f"m{claim.id}.png").write_bytes(b"\x89PNG\r\n\x1a\n")
            s.add(
                Evidence(
                    village_id=village.id,
                    claim_id=claim.id,
                    stored_name=f"m{claim.id}.png",
                    content_type="image/png",
                    size=8,
                    created_at=now,
                )
            )
        s.flush()
        return claim.id


def evidence_of(app, claim_id: int) -> int:
    """Return the id of a claim's first photo."""
    with app.extensions["points.sessionmaker"]() as s:
        return s.query(Evidence.id).filter(Evidence.claim_id == claim_id).scalar()


def open_objection(app, world) -> int:
    """Create an open objection on a claim in notice; return its id."""
    claim_id = make_claim(app, world)
    with app.extensions["points.sessionmaker"]() as s, s.begin():
        claim = s.get(Claim, claim_id)
        resident = load_actor(s, world.users["resident"].id)
        return claims.object_to(s, claim=claim, actor=resident, reason="有疑问", now=utcnow()).id


def make_draft(app, world) -> int:
    """Create a new draft of village A's household catalog (a copy of the adopted one)."""
    from points import catalog

    with app.extensions["points.sessionmaker"]() as s, s.begin():
        scheme = get_scheme(s, village=s.get(Village, world.a.id), code="household")
        draft = catalog.latest_draft(s, scheme=scheme)
        if draft is None:
            draft = catalog.create_draft(
                s,
                scheme=scheme,
                rules=None,
                title="修订稿",
                actor_id=None,
                now=utcnow(),
                based_on=catalog.adopted_version(s, scheme=scheme),
            )
        return draft.number
