"""A small village with ledger history and one evidence photo, for backup and move tests."""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from points import ledger
from points.models import CatalogRule, Claim, Evidence
from tests.factories import adopt_catalog, make_household, make_scheme, make_user, make_village

RULE = {
    "code": "MEI-01",
    "name": "庭院整洁",
    "category": "德治",
    "sign": 1,
    "points": 5,
    "unit": "time",
    "review": "never",
    "recorder_roles": ["admin"],
    "subjects": ["household"],
}
PHOTO = b"\xff\xd8\xff\xe0" + b"photo-bytes" * 50


def make_history(session, *, code: str, now, evidence_root: Path | None = None, awards: int = 6):
    """Create village `code` with awards, a reversal and a posted claim with a photo."""
    village = make_village(session, code=code)
    scheme = make_scheme(session, village)
    version = adopt_catalog(session, scheme, [RULE], now=now)
    rule = session.execute(
        select(CatalogRule).where(CatalogRule.version_id == version.id)
    ).scalar_one()
    admin = make_user(session, village, "admin")
    homes = [make_household(session, village) for _ in range(3)]
    entries = []
    for i in range(awards):
        entries.append(
            ledger.award(
                session,
                scheme=scheme,
                subject_id=homes[i % 3].id,
                points=5 + i,
                idem_key=f"{code}-a{i}",
                actor_id=admin.user_id,
                now=now + timedelta(minutes=i),
                rule_id=rule.id,
            )
        )
    ledger.reverse(
        session,
        entry_id=entries[0].id,
        idem_key=f"{code}-rev",
        actor_id=admin.user_id,
        reason="录错了",
        now=now + timedelta(hours=1),
    )
    claim = Claim(
        village_id=village.id,
        scheme_id=scheme.id,
        household_id=homes[1].id,
        rule_id=rule.id,
        channel="recorded",
        requested=5,
        points=5,
        occurred_on=(now - timedelta(days=1)).date(),
        status="in_notice",
        recorded_by=admin.user_id,
        created_at=now,
    )
    session.add(claim)
    session.flush()
    entry = ledger.award(
        session,
        scheme=scheme,
        subject_id=homes[1].id,
        points=5,
        idem_key=f"award:{code}:{claim.id}",
        actor_id=admin.user_id,
        now=now + timedelta(hours=2),
        rule_id=rule.id,
        claim_id=claim.id,
    )
    claim.status, claim.entry_id, claim.posted_at = "posted", entry.id, now
    photo_name = secrets.token_hex(16) + ".jpg"
    session.add(
        Evidence(
            village_id=village.id,
            claim_id=claim.id,
            stored_name=photo_name,
            content_type="image/jpeg",
            size=len(PHOTO),
            created_at=now,
        )
    )
    if evidence_root is not None:
        folder = Path(evidence_root) / str(village.id)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / photo_name).write_bytes(PHOTO)
    session.flush()
    return village
