"""A demo village with people, staff and a few months of ledger history, from a fixed seed."""

from __future__ import annotations

import contextlib
import json
import random
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from points import catalog, ledger
from points.auth.passwords import generate_password, hash_password
from points.catalog.rules import rule_from_dict
from points.errors import ConflictError, InsufficientPointsError
from points.models import (
    Group,
    Household,
    JournalEntry,
    Resident,
    RoleAssignment,
    Scheme,
    User,
    Village,
)
from points.models.catalog import ClosePolicy, SubjectKind
from points.models.org import Role
from points.periods import LOCAL_TZ, PeriodKind, local_date, month_key, period_key, period_start

CATALOG_DIR = Path(__file__).parent / "catalog" / "defaults"
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
    passwords: dict[str, str] = field(default_factory=dict)  # staff only
    # Residents who sign in with phone + PIN: phone, pin, name, household, score, can_redeem.
    resident_logins: list[dict] = field(default_factory=list)
    town: str = ""
    board_month: str = ""


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
    # Seeded on purpose (bandit B311 accepted): the demo is reproducible; nothing is a secret.
    rng = random.Random(seed)  # nosec B311
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
    logins = _resident_logins(session, village, homes, rng, now)
    admin_id = session.execute(select(User.id).where(User.username == f"{code}-admin")).scalar_one()
    # Version 1 of each catalog, adopted before the history starts so every act falls under it.
    adopted_on = local_date(now - timedelta(days=30 * months + 7))
    for scheme in (household_scheme, party_scheme):
        _adopt_default_catalog(session, scheme, adopted_on=adopted_on, actor_id=admin_id, now=now)
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
    result.board_month = _story(
        session, now=now, village=village, scheme=household_scheme, homes=homes, admin_id=admin_id
    )
    result.entries = session.execute(
        select(func.count()).select_from(JournalEntry).where(JournalEntry.village_id == village.id)
    ).scalar_one()
    _open_shop(session, village, household_scheme, admin_id=admin_id, now=now)
    result.town = village.town
    period = period_key(household_scheme.period_kind, local_date(now))
    for home, (phone, pin) in zip(homes, logins.items(), strict=False):
        head = session.get(Resident, home.head_id)
        score = ledger.period_score(
            session, scheme=household_scheme, subject_id=home.id, period=period
        )
        result.resident_logins.append(
            {
                "phone": phone,
                "pin": pin,
                "name": head.name,
                "household": home.number,
                "score": score,
                "can_redeem": score >= household_scheme.redemption_threshold,
            }
        )
    return result


def _resident_logins(session, village, homes, rng, now) -> dict[str, str]:
    """Give three households' heads a phone sign-in (手机号 + 6-digit PIN) for the demo."""
    from points.auth import weak_pin_reason
    from points.org import set_resident_pin

    logins = {}
    for home in homes[:3]:
        head = session.get(Resident, home.head_id)
        pin = "".join(rng.choice("0123456789") for _ in range(6))
        while weak_pin_reason(pin, phone=head.phone):
            pin = "".join(rng.choice("0123456789") for _ in range(6))
        set_resident_pin(session, village=village, resident=head, pin=pin, now=now)
        logins[head.phone] = pin
    return logins


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


def _adopt_default_catalog(session, scheme: Scheme, *, adopted_on, actor_id, now) -> None:
    data = json.loads((CATALOG_DIR / f"{scheme.code}.json").read_text(encoding="utf-8"))
    draft = catalog.create_draft(
        session,
        scheme=scheme,
        rules=[rule_from_dict(item) for item in data["rules"]],
        title=data["name"],
        actor_id=actor_id,
        now=now,
    )
    catalog.adopt(
        session,
        version=draft,
        body="村民代表大会",
        adopted_on=adopted_on,
        note="以默认积分标准为底稿，经村民代表大会表决通过（示范数据）",
        actor_id=actor_id,
        now=now,
    )


def load_catalog(scheme_code: str) -> list[dict]:
    """Return the default catalog's rules for a scheme code, as plain dicts."""
    path = CATALOG_DIR / f"{scheme_code}.json"
    return json.loads(path.read_text(encoding="utf-8"))["rules"]


def _history(
    session, rng, *, now, months, admin_id, household_scheme, party_scheme, homes, party
) -> int:
    """Run a few months of village life through the real path: grid workers record, the
    review group approves, notices end and claims post; the scheduler's automatic rules
    (当月无违规) give clean households their points each month; the shop redeems; one
    correction; one household litters three times (the deduction escalates). The last week
    stays in review and on notice, so the pages have work to show."""
    from points import claims, cycles
    from points.claims import ClaimInput, RuleRefusedError
    from points.models import CatalogRule
    from points.models.claims import ClaimStatus
    from points.org.access import load_actor

    village = session.get(Village, household_scheme.village_id)
    users = {u.username: u.id for u in session.execute(select(User)).scalars()}
    admin = load_actor(session, admin_id)
    reviewer = load_actor(session, users[f"{village.code}-reviewer"])
    groups = sorted({h.group_id for h in homes})
    recorders = {
        g: load_actor(session, users[f"{village.code}-grid{i + 1}"]) for i, g in enumerate(groups)
    }
    choices = {}
    for scheme in (household_scheme, party_scheme):
        version = catalog.adopted_version(session, scheme=scheme)
        choices[scheme.code] = [
            r
            for r in session.execute(
                select(CatalogRule).where(CatalogRule.version_id == version.id)
            ).scalars()
            if not r.evidence_required and set(r.recorder_roles) & {"recorder", "admin"}
        ]
    auto_job = claims.automatic.AUTO_JOB
    # Recorded up front; the weeks below post them when their notice ends, before the month's
    # 当月无违规 is evaluated, so this household misses that award in those months.
    start = now - timedelta(days=30 * months)
    _littering(session, village, household_scheme, homes, recorders, reviewer, start=start, now=now)
    weeks = months * 4
    for week in range(weeks):
        day = start + timedelta(days=7 * week, hours=rng.randint(1, 9))
        if day >= now:
            break
        for scheme, subjects in ((household_scheme, homes), (party_scheme, party)):
            for subject in rng.sample(subjects, max(3, len(subjects) // 4)):
                rule = rng.choice(choices[scheme.code])
                if rule.sign < 0 and rng.random() < 0.7:
                    continue  # violations are rarer than good deeds
                home_id = subject.id if scheme is household_scheme else subject.household_id
                home = session.get(Household, home_id)
                actor = recorders[home.group_id] if "recorder" in rule.recorder_roles else admin
                try:
                    claims.record(
                        session,
                        village=village,
                        scheme=scheme,
                        actor=actor,
                        now=day,
                        item=ClaimInput(
                            household_id=home_id,
                            resident_id=None if scheme is household_scheme else subject.id,
                            rule_code=rule.code,
                            occurred_on=local_date(day),
                            proposed_points=rule.min_points,
                            description="" if rule.sign > 0 else "网格员现场核实",
                        ),
                    )
                except RuleRefusedError:
                    continue  # over the item's cap this month: the engine refused it
        if week < weeks - 1:
            for claim in claims.list_claims(
                session, village=village, actor=admin, status=ClaimStatus.PENDING_REVIEW, limit=500
            ):
                claims.approve(session, claim=claim, actor=reviewer, now=day)
        claims.post_due(session, now=day)
        # What the scheduler would have done that week: evaluate the month that just ended
        # (once: its cycle_runs key also stops the real scheduler from doing it again).
        for item in cycles.due_items(session, auto_job, now=day):
            cycles.run_item(session, item, now=day, job=auto_job)
        for home in rng.sample(homes, 3):
            with contextlib.suppress(InsufficientPointsError):
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
    posted = claims.list_claims(
        session, village=village, actor=admin, status=ClaimStatus.POSTED, limit=1
    )
    if posted:
        with contextlib.suppress(ConflictError):
            claims.reverse_claim(
                session,
                claim=posted[0],
                actor=admin,
                reason="录入时选错农户，予以冲正",
                now=now - timedelta(days=1),
            )
    return session.execute(
        select(func.count()).select_from(JournalEntry).where(JournalEntry.village_id == village.id)
    ).scalar_one()


def _story(session, *, now, village, scheme, homes, admin_id) -> str:
    """Make the demo tell the story on its first day: the printed residents' households (and
    two more) can redeem today, two households' gambling deductions put the last month's 黑榜
    on the drafted board, and a fresh claim sits in 公示 with an open objection. All through
    the real claim path (record, review, notice, post). Returns the drafted board's month."""
    from points import boards, claims
    from points.claims import ClaimInput, RuleRefusedError
    from points.models import CatalogRule
    from points.models.claims import ClaimStatus
    from points.org.access import load_actor

    users = {u.username: u.id for u in session.execute(select(User)).scalars()}
    reviewer = load_actor(session, users[f"{village.code}-reviewer"])
    groups = sorted({h.group_id for h in homes})
    recorder = {
        g: load_actor(session, users[f"{village.code}-grid{i + 1}"]) for i, g in enumerate(groups)
    }
    version = catalog.adopted_version(session, scheme=scheme)
    rules = session.execute(
        select(CatalogRule)
        .where(
            CatalogRule.version_id == version.id,
            CatalogRule.sign == 1,
            CatalogRule.evidence_required.is_(False),
            CatalogRule.points.is_not(None),
        )
        .order_by(CatalogRule.points.desc(), CatalogRule.code)
    ).scalars()
    rules = [r for r in rules if "recorder" in r.recorder_roles]

    def record(home, rule_code, when, **extra):
        item = ClaimInput(
            household_id=home.id, rule_code=rule_code, occurred_on=local_date(when), **extra
        )
        claim = claims.record(
            session,
            village=village,
            scheme=scheme,
            actor=recorder[home.group_id],
            now=when,
            item=item,
        )
        if claim.status == ClaimStatus.PENDING_REVIEW:
            claims.approve(session, claim=claim, actor=reviewer, now=when + timedelta(hours=1))
        return claim

    # Redeemers: top the current period's score up past the threshold, posted 8 days ago.
    current = period_key(scheme.period_kind, local_date(now))
    when = now - timedelta(days=10)
    if local_date(when) >= period_start(scheme.period_kind, current):
        goal = scheme.redemption_threshold + 15
        for home in homes[:5]:
            score = ledger.period_score(session, scheme=scheme, subject_id=home.id, period=current)
            for rule in rules:
                if score >= goal:
                    break
                for _ in range(3):
                    try:
                        score += record(home, rule.code, when).points
                    except RuleRefusedError:
                        break  # the item's cap is reached: the next item
                    if score >= goal:
                        break
        claims.post_due(session, now=now - timedelta(days=1), village_id=village.id)

    # The 黑榜: two households fined for gambling late last month, reviewed and posted before
    # the month ended (a board lists the deductions posted in its month).
    first = local_date(now).replace(day=1)
    fined = datetime.combine(first - timedelta(days=12), time(10), tzinfo=LOCAL_TZ)
    for home in homes[-2:]:
        with contextlib.suppress(RuleRefusedError):
            record(
                home,
                "FZ-51",
                fined,
                has_evidence=True,
                description="网格员现场核实，笔录和照片纸质存档",
            )
    claims.post_due(session, now=fined + timedelta(days=9), village_id=village.id)

    # 公示 with an open objection: yesterday's award to one household, queried by a neighbour.
    with contextlib.suppress(RuleRefusedError):
        claim = record(homes[4 % len(homes)], rules[-1].code, now - timedelta(days=1))
        neighbour = session.execute(
            select(User.id).where(User.resident_id == homes[0].head_id)
        ).scalar_one()
        claims.object_to(
            session,
            claim=claim,
            actor=load_actor(session, neighbour),
            reason="听说那天他家没人参加，请核实",
            now=now - timedelta(hours=20),
        )

    month = month_key(first - timedelta(days=1))
    boards.draft_board(session, village=village, month=month, now=now, actor_id=admin_id)
    return month


def _littering(session, village, scheme, homes, recorders, reviewer, *, start, now) -> None:
    """One household litters three times in the history: −2, then −4 (×2), then −10, each
    notice saying why (一年内第 N 次). Skipped when the dates would cross a new year."""
    from points import claims
    from points.claims import ClaimInput

    home = homes[-1]
    days = [start + (now - start) * f for f in (0.3, 0.6, 0.9)]
    if len({local_date(d).year for d in days}) > 1:
        return
    for day in days:
        claim = claims.record(
            session,
            village=village,
            scheme=scheme,
            actor=recorders[home.group_id],
            now=day,
            item=ClaimInput(
                household_id=home.id,
                rule_code="MEI-51",
                occurred_on=local_date(day),
                description="在村道旁乱倒建筑垃圾，经提醒不改",
                has_evidence=True,
            ),
        )
        claims.approve(session, claim=claim, actor=reviewer, now=day)


# The points shop: name, unit, points (1 分 ≈ 1 元), stock, per-household limit a quarter.
SHOP_GOODS = (
    ("肥皂", "块", 5, 60, None),
    ("牙膏", "支", 10, 40, None),
    ("酱油", "瓶", 12, 30, None),
    ("毛巾", "条", 15, 30, None),
    ("洗衣粉", "袋", 20, 40, None),
    ("鸡蛋（10个）", "盒", 25, 20, 2),
    ("大米（10斤）", "袋", 50, 20, 2),
    ("食用油（5升）", "桶", 85, 4, 1),  # nearly gone: it shows on the low-stock list
)


def _open_shop(session: Session, village: Village, scheme: Scheme, *, admin_id, now) -> None:
    """Open 村积分超市 with goods donated by a 帮扶单位, and a redemption window.

    Villages usually redeem in the last two weeks of a quarter; the demo's window is the last
    14 days, widened to reach back to today so that the demo can be tried the day it is made.
    """
    from points import shop
    from points.periods import next_period_start, period_key
    from points.shop import redemption

    store = shop.create_store(
        session, village=village, name="村积分超市", address="村委会一楼", now=now
    )
    for name, unit, price, stock, limit in SHOP_GOODS:
        good = shop.create_good(
            session,
            store=store,
            name=name,
            unit=unit,
            price=price,
            limit_per_period=limit,
            now=now,
        )
        shop.move_stock(
            session,
            good=good,
            kind="donation",
            quantity=stock,
            actor_id=admin_id,
            now=now,
            source="县供销社（帮扶单位）",
        )
    today = local_date(now)
    end = next_period_start(scheme.period_kind, period_key(scheme.period_kind, today))
    days = max(14, (end - today).days)
    redemption.set_window(session, scheme=scheme, days=days, actor_id=admin_id, now=now)
