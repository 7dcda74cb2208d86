"""Moving a village from a laptop's SQLite file into a database that holds other villages."""

from __future__ import annotations

import json
import zipfile
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from api.migrate import upgrade
from points import backups, ledger
from points.db import make_engine, make_sessionmaker
from points.demo import create_demo_village
from points.ledger.verify import verify
from points.models import Account, Evidence, Household, JournalEntry, Scheme, User, Village
from tests.points.backup_world import PHOTO, make_history


@pytest.fixture
def laptop(tmp_path, now):
    """A laptop's SQLite file with the village `hill` (demo history plus a claim photo)."""
    url = f"sqlite:///{tmp_path / 'laptop.db'}"
    engine = make_engine(url)
    upgrade(engine)
    evidence = tmp_path / "laptop-evidence"
    maker = make_sessionmaker(engine)
    with maker() as s, s.begin():
        make_history(s, code="other", now=now)  # so the laptop's ids are not 1, 2, 3 either
        create_demo_village(s, now=now, code="hill", households=12, months=2, seed=7)
    with maker() as s, s.begin():
        # A photo and a reversal in `hill` too (the demo has neither).
        hill = s.execute(select(Village).where(Village.code == "hill")).scalar_one()
        entry = s.execute(
            select(JournalEntry)
            .where(JournalEntry.village_id == hill.id, JournalEntry.kind == "award")
            .limit(1)
        ).scalar_one()
        ledger.reverse(s, entry_id=entry.id, reason="录错了", actor_id=None, now=now)
        claim_id = s.execute(
            select(func.min(JournalEntry.claim_id)).where(JournalEntry.village_id == hill.id)
        ).scalar_one()
        if claim_id is not None:
            s.add(
                Evidence(
                    village_id=hill.id,
                    claim_id=claim_id,
                    stored_name="f00d" * 8 + ".jpg",
                    content_type="image/jpeg",
                    size=len(PHOTO),
                    created_at=now,
                )
            )
            folder = evidence / str(hill.id)
            folder.mkdir(parents=True)
            (folder / ("f00d" * 8 + ".jpg")).write_bytes(PHOTO)
    yield maker, evidence
    engine.dispose()


def _balances(session, code):
    vid = session.execute(select(Village.id).where(Village.code == code)).scalar_one()
    rows = session.execute(
        select(Household.number, Account.key, Account.balance)
        .join(Household, Household.id == Account.household_id)
        .where(Account.village_id == vid)
    ).all()
    return sorted((n, k, b) for n, k, b in rows)


def test_village_moves_into_a_database_with_two_other_villages(
    laptop, session_factory, tmp_path, now
):
    source, source_evidence = laptop
    export = tmp_path / "hill.zip"
    with source() as s:
        before = verify(s, village_code="hill")
        assert before.ok, before.breaches
        balances = _balances(s, "hill")
        laptop_ids = s.execute(
            select(Village.id, func.min(JournalEntry.id))
            .join(JournalEntry, JournalEntry.village_id == Village.id)
            .where(Village.code == "hill")
            .group_by(Village.id)
        ).one()
        manifest = backups.export_village(
            s, code="hill", path=export, evidence_root=source_evidence, now=now
        )
    assert manifest["head"] == list(before.heads["hill"])
    county_evidence = tmp_path / "county-evidence"
    with session_factory() as s, s.begin():
        make_history(s, code="east", now=now, evidence_root=county_evidence)
        make_history(s, code="west", now=now, evidence_root=county_evidence)
    with session_factory() as s, s.begin():
        result = backups.import_village(s, path=export, evidence_root=county_evidence, now=now)
    assert result["code"] == "hill"
    with session_factory() as s:
        after = verify(s)
        assert after.ok, after.breaches
        assert after.heads["hill"] == before.heads["hill"]
        assert _balances(s, "hill") == balances
        hill = s.execute(select(Village).where(Village.code == "hill")).scalar_one()
        county_ids = s.execute(
            select(Village.id, func.min(JournalEntry.id))
            .join(JournalEntry, JournalEntry.village_id == Village.id)
            .where(Village.code == "hill")
            .group_by(Village.id)
        ).one()
        # Ids were remapped (the county's own villages hold the laptop's ids), yet the chain
        # checks out with the same head.
        assert county_ids[0] != laptop_ids[0] and county_ids[1] != laptop_ids[1]
        assert s.execute(select(func.count()).select_from(User)).scalar_one() > 2
        photo = s.execute(select(Evidence).where(Evidence.village_id == hill.id)).scalar_one()
    assert (county_evidence / str(hill.id) / photo.stored_name).read_bytes() == PHOTO
    # Life goes on in the county: a new award after the move hashes the new ids.
    with session_factory() as s, s.begin():
        scheme = s.execute(
            select(Scheme).where(Scheme.village_id == hill.id, Scheme.code == "household")
        ).scalar_one()
        home = s.execute(select(Household).where(Household.village_id == hill.id)).scalars().first()
        ledger.award(
            s,
            scheme=scheme,
            subject_id=home.id,
            points=3,
            idem_key="county-1",
            actor_id=None,
            now=now + timedelta(days=1),
        )
    with session_factory() as s:
        later = verify(s, village_code="hill", expected_head=tuple(before.heads["hill"]))
        assert later.ok, later.breaches
        assert later.heads["hill"][0] == before.heads["hill"][0] + 1
    # The same village code again is refused, and nothing is written.
    with session_factory() as s, s.begin(), pytest.raises(backups.VillageExistsError):
        backups.import_village(s, path=export, evidence_root=county_evidence, now=now)


def test_an_export_edited_on_the_way_fails_verify(laptop, session_factory, tmp_path, now):
    source, source_evidence = laptop
    export = tmp_path / "hill.zip"
    with source() as s:
        backups.export_village(s, code="hill", path=export, evidence_root=None, now=now)
    with zipfile.ZipFile(export) as zf:
        manifest = zf.read("manifest.json")
        rows = json.loads(zf.read("village.json"))
    # Someone adds points to a posting on the way (and to its account, to hide it).
    posting = rows["postings"][5]
    posting["amount"] += 100
    for account in rows["accounts"]:
        if account["id"] == posting["account_id"]:
            account["balance"] += 100
    for entry_posting in rows["postings"]:
        if entry_posting["entry_id"] == posting["entry_id"] and entry_posting is not posting:
            entry_posting["amount"] -= 100
            for account in rows["accounts"]:
                if account["id"] == entry_posting["account_id"] and account["balance"] is not None:
                    account["balance"] -= 100
            break
    edited = tmp_path / "edited.zip"
    with zipfile.ZipFile(edited, "w") as zf:
        zf.writestr("manifest.json", manifest)
        zf.writestr("village.json", json.dumps(rows, ensure_ascii=False))
    with session_factory() as s, s.begin():
        backups.import_village(s, path=edited, evidence_root=None, now=now)
    with session_factory() as s:
        report = verify(s, village_code="hill")
    assert not report.ok
    assert any("was altered" in b for b in report.breaches), report.breaches
