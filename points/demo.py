"""A demo village with people, staff and a few months of ledger history, from a fixed seed."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from points import ledger
from points.errors import ConflictError, InsufficientPointsError
from points.models import Group, Household, Resident, RoleAssignment, Scheme, User, Village
from points.models.catalog import ClosePolicy, SubjectKind
from points.models.org import Role
from points.passwords import generate_password, hash_password
from points.periods import PeriodKind

CATALOG_DIR = Path(__file__).parent / "catalogs"
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
GIVEN = "建国秀英桂兰志强海燕春梅玉珍德明红霞永福丽华金凤长江淑芬国庆小军文静立新"
GROUPS = ("第一村民小组", "第二村民小组", "第三村民小组")


@dataclass
class DemoResult:
    """What the demo created; `passwords` maps staff usernames to their printed passwords."""

    village: Village
    households: int = 0
    residents: int = 0
    party_members: int = 0
    entries: int = 0
    passwords: dict[str, str] = field(default_factory=dict)


def create_demo_village(
    session: Session,
    *,
    now: datetime,
    code: str = "demo",
    seed: int = 2026,
    households: int = 60,
    months: int = 4,
) -> DemoResult:
    """Create the demo village `code` with its people, staff, schemes and ledger history."""
    rng = random.Random(seed)
    village = Village(
        code=code, name="示范村", town="城关镇", county="示范县", privacy_mode="masked"
    )
    session.add(village)
    session.flush()
    result = DemoResult(village=village)

    groups = [Group(village_id=village.id, name=name) for name in GROUPS]
    session.add_all(groups)
    session.flush()
    homes: list[Household] = []
    party: list[Resident] = []
    for n in range(households):
        group = groups[n % len(groups)]
        home = Household(
            village_id=village.id,
            group_id=group.id,
            number=f"{n % 3 + 1:02d}-{n // 3 + 1:03d}",
            door_plate=f"{group.name[:3]}{n // 3 + 1}号",
        )
        session.add(home)
        session.flush()
        surname = rng.choice(SURNAMES)
        for m in range(rng.choice((2, 3, 3, 4, 4, 5))):
            person = Resident(
                village_id=village.id,
                household_id=home.id,
                name=(surname if m == 0 or rng.random() < 0.6 else rng.choice(SURNAMES))
                + "".join(rng.sample(GIVEN, rng.choice((1, 2)))),
                phone="1"
                + rng.choice("3589")
                + "".join(rng.choice("0123456789") for _ in range(9)),
            )
            session.add(person)
            session.flush()
            if m == 0:
                home.head_id = person.id
            result.residents += 1
        homes.append(home)
    session.flush()
    members = (
        session.execute(
            select(Resident).where(Resident.village_id == village.id).order_by(Resident.id)
        )
        .scalars()
        .all()
    )
    for person in rng.sample(members, 20):
        person.is_party_member = True
        person.party_branch = "示范村党支部"
        party.append(person)
    result.households, result.party_members = len(homes), len(party)

    household_scheme = Scheme(
        village_id=village.id,
        code="household",
        name="户积分（道德积分银行）",
        subject_kind=SubjectKind.HOUSEHOLD,
        period_kind=PeriodKind.QUARTER,
        close_policy=ClosePolicy.RESET,
        base_score=0,
        redemption_threshold=60,
        notice_days=7,
        redeemable=True,
    )
    party_scheme = Scheme(
        village_id=village.id,
        code="party",
        name="党员积分",
        subject_kind=SubjectKind.RESIDENT,
        period_kind=PeriodKind.YEAR,
        close_policy=ClosePolicy.CARRY,
        base_score=60,
        notice_days=7,
        redeemable=False,
    )
    session.add_all([household_scheme, party_scheme])
    session.flush()

    result.passwords = _create_staff(session, village, groups)
    admin_id = session.execute(select(User.id).where(User.username == f"{code}-admin")).scalar_one()
    result.entries = _history(
        session,
        rng,
        now=now,
        months=months,
        admin_id=admin_id,
        household_scheme=household_scheme,
        party_scheme=party_scheme,
        homes=homes,
        party=party,
    )
    return result


def _create_staff(session: Session, village: Village, groups: list[Group]) -> dict[str, str]:
    staff = [
        ("admin", "村书记 王建国", Role.ADMIN, None),
        ("reviewer", "评议小组 李秀英", Role.REVIEWER, None),
        ("clerk", "积分超市 张海燕", Role.CLERK, None),
        ("supervisor", "城关镇 督导员", Role.SUPERVISOR, None),
    ] + [(f"grid{i + 1}", f"网格员 {i + 1} 组", Role.RECORDER, g) for i, g in enumerate(groups)]
    passwords = {}
    for suffix, name, role, group in staff:
        username = f"{village.code}-{suffix}"
        password = generate_password()
        user = User(username=username, display_name=name, password_hash=hash_password(password))
        user.roles.append(
            RoleAssignment(
                role=role,
                village_id=None if role == Role.SUPERVISOR else village.id,
                group_id=group.id if group else None,
                town=village.town if role == Role.SUPERVISOR else None,
            )
        )
        session.add(user)
        passwords[username] = password
    session.flush()
    return passwords


def load_catalog(scheme_code: str) -> list[dict]:
    """Return the default catalog's rules for a scheme code, as plain dicts."""
    path = CATALOG_DIR / f"{scheme_code}.json"
    return json.loads(path.read_text(encoding="utf-8"))["rules"]


def _history(
    session, rng, *, now, months, admin_id, household_scheme, party_scheme, homes, party
) -> int:
    """Post a few months of awards, deductions, redemptions and one correction."""
    rules = {code: load_catalog(code) for code in ("household", "party")}
    start = now - timedelta(days=30 * months)
    count = 0
    # One posting day a week, in order, so the chain's seq follows time.
    for week in range(months * 4):
        day = start + timedelta(days=7 * week, hours=rng.randint(1, 9))
        if day >= now:
            break
        for scheme, subjects in ((household_scheme, homes), (party_scheme, party)):
            for subject in rng.sample(subjects, max(3, len(subjects) // 4)):
                rule = rng.choice(rules[scheme.code])
                points = rule.get("points") or rule.get("min_points") or 1
                if rule["sign"] < 0 and rng.random() < 0.7:
                    continue  # violations are rarer than good deeds
                kwargs = dict(
                    scheme=scheme,
                    subject_id=subject.id,
                    points=points,
                    idem_key=f"demo:{scheme.code}:{week}:{subject.id}",
                    actor_id=admin_id,
                    now=day,
                    memo=rule["name"],
                    category=rule.get("category"),
                )
                if rule["sign"] > 0:
                    ledger.award(session, **kwargs)
                else:
                    ledger.deduct(session, **kwargs)
                count += 1
        for home in rng.sample(homes, 3):
            try:
                ledger.spend(
                    session,
                    scheme=household_scheme,
                    subject_id=home.id,
                    points=rng.choice((5, 20, 50)),
                    idem_key=f"demo:spend:{week}:{home.id}",
                    actor_id=admin_id,
                    now=day + timedelta(hours=1),
                    memo="积分超市兑换",
                )
                count += 1
            except InsufficientPointsError:
                pass
    first = session.execute(
        select(ledger.JournalEntry.id)
        .where(
            ledger.JournalEntry.village_id == household_scheme.village_id,
            ledger.JournalEntry.kind == "award",
        )
        .order_by(ledger.JournalEntry.seq)
        .limit(1)
    ).scalar_one_or_none()
    if first is not None:
        try:
            ledger.reverse(
                session,
                entry_id=first,
                reason="录入时选错农户，予以冲正",
                actor_id=admin_id,
                now=now - timedelta(days=1),
            )
            count += 1
        except ConflictError:
            pass
    return count
