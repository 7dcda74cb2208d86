"""Record, declare, review, public notice (公示), objections, and posting claims to the ledger.

The path of a claim: recorded (or declared, or one of an event batch) → pending review when
its rule asks for it → approved, on public notice for the scheme's days → posted exactly once
when the notice ended with no open objection. A rejected claim keeps its whole history and
leaves no ledger trace. Nobody records, approves or resolves objections for their own household.
"""

from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache

from sqlalchemy import Row, and_, bindparam, cast, func, insert, select, update
from sqlalchemy.orm import Session, aliased, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from points import ledger
from points.audit import Note
from points.catalog import rules
from points.catalog.versions import HOUSEHOLD_COLUMNS, find_rule_row, rule_of
from points.cycles.jobs import Job, WorkItem, register_job
from points.db import bulk_postgresql, lock_subjects, lock_village, subject_lock_key
from points.direct import Direct
from points.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from points.models import AuditEvent, CatalogRule, Household, Resident, Scheme, Village
from points.models.claims import (
    Channel,
    Claim,
    ClaimBatch,
    ClaimStatus,
    Objection,
    ObjectionStatus,
)
from points.models.org import Role
from points.org.access import Actor
from points.periods import local_date, period_key, period_start

MAX_BATCH = 500
REVIEWERS = (Role.ADMIN, Role.REVIEWER)


class ConflictOfInterestError(PermissionDeniedError):
    """Someone acted for their own household (回避原则); the attempt is audited."""

    code = "conflict_of_interest"
    message = "不能为自己家庭登记、审核积分或处理异议（回避原则）"


class RuleRefusedError(ValidationError):
    """The rules engine refused the claim; `code` is the engine's stable refusal code."""

    def __init__(self, decision: rules.Decision):
        super().__init__(decision.message)
        self.code = decision.code or "rule_refused"


@dataclass(frozen=True)
class ClaimInput:
    """What a recorder or resident submits for one act."""

    household_id: int
    rule_code: str
    occurred_on: date
    resident_id: int | None = None
    quantity: int = 1
    proposed_points: int | None = None
    description: str = ""
    has_evidence: bool = False


# --- recording ---------------------------------------------------------------------------------


def record(
    session: Session,
    *,
    village: Village,
    scheme: Scheme,
    actor: Actor,
    item: ClaimInput,
    now: datetime,
    channel: Channel = Channel.RECORDED,
    batch: ClaimBatch | None = None,
    audit: Note | None = None,
    attach: bool = True,
) -> Claim:
    """Record one act for a household (or a party member) after the rules engine decided it.
    `audit`: the audit event of the recording, appended with the claim's row. `attach=False`:
    the caller only reads the returned claim (the API's answer), so it is not put in the
    session (a claim posted at once always is: posting changes it)."""
    # The subject's lock (caps, once-only and repeats are reserved at recording) is taken by
    # the rule's own statement, before the subject's cap use is read.
    lock = subject_lock_key(
        session,
        household_id=item.household_id,
        resident_id=item.resident_id if scheme.subject_kind == "resident" else None,
    )
    row, refusal = _rule_or_refusal(
        session, scheme, item.rule_code, item.occurred_on, lock, item.household_id
    )
    subjects = _Subjects.load(
        session,
        village=village,
        scheme=scheme,
        row=row,
        subjects=[(item.household_id, item.resident_id)],
        on=item.occurred_on,
        read_with_rule=True,
    )
    claim = _decide(
        session,
        subjects,
        village=village,
        scheme=scheme,
        actor=actor,
        item=item,
        now=now,
        channel=channel,
        batch=batch,
        row=row,
        refusal=refusal,
    )
    posts_now = notice_over(claim, now)
    _insert_claims(session, [claim], audit, attach=attach or posts_now)
    if posts_now:
        post_claim(session, claim_id=claim.id, now=now, actor_id=actor.user_id)
    return claim


def record_batch(
    session: Session,
    *,
    village: Village,
    scheme: Scheme,
    actor: Actor,
    title: str,
    rule_code: str,
    occurred_on: date,
    subjects: list[tuple[int, int | None]],
    now: datetime,
    quantity: int = 1,
    description: str = "",
    has_evidence: bool = False,
    proposed_points: int | None = None,
    attach: bool = True,
) -> tuple[ClaimBatch, list[Claim]]:
    """Record one rule for many households or people at once (an event); all or nothing.
    `has_evidence`: the event's photos (a 签到表) are attached to every claim of the batch;
    `proposed_points`: the value of a discretionary (ranged) item, the same for everyone;
    `attach=False`: as for `record` (the claims are only read; those posted at once are
    attached all the same).

    Set-based: the rule is found once, the households (with what each already used of the
    rule's caps) and the named people are read in one statement each, the claims are
    inserted together. Each subject is still decided and refused exactly as `record` would.
    """
    if not subjects or len(subjects) > MAX_BATCH:
        raise ValidationError(f"一次批量登记 1–{MAX_BATCH} 人", errors={"subjects": ["数量不对"]})
    if len(set(subjects)) != len(subjects):
        raise ValidationError("名单中有重复的人", errors={"subjects": ["有重复"]})
    if not title.strip():
        raise ValidationError("请填写活动名称", errors={"title": ["不能为空"]})
    row = find_rule_row(session, scheme=scheme, code=rule_code, on=occurred_on)
    # Every subject's lock up front, in id order, so two overlapping events never deadlock.
    _lock_limited(session, scheme, row, subjects)
    loaded = _Subjects.load(
        session, village=village, scheme=scheme, row=row, subjects=subjects, on=occurred_on
    )
    batch = ClaimBatch(
        village_id=village.id,
        title=title.strip(),
        rule_id=row.id,
        occurred_on=occurred_on,
        created_by=actor.user_id,
        created_at=now,
    )
    session.add(batch)
    session.flush()
    claims = []
    rule = rule_of(row)  # the engine's rule, built once for every subject
    for h, r in subjects:
        item = ClaimInput(
            household_id=h,
            resident_id=r,
            rule_code=rule_code,
            occurred_on=occurred_on,
            quantity=quantity,
            description=description or title.strip(),
            has_evidence=has_evidence,
            proposed_points=proposed_points,
        )
        claim = _decide(
            session,
            loaded,
            village=village,
            scheme=scheme,
            actor=actor,
            item=item,
            now=now,
            channel=Channel.BATCH,
            batch=batch,
            row=row,
            refusal=None,
            rule=rule,
        )
        # Two people of one household on the household track share its caps.
        loaded.add_use(h, r, abs(claim.points))
        claims.append(claim)
    posts_now = [c for c in claims if notice_over(c, now)]
    _insert_claims(session, claims, attach=attach or bool(posts_now))
    for claim in posts_now:
        post_claim(session, claim_id=claim.id, now=now, actor_id=actor.user_id)
    return batch, claims


_CLAIM_COLUMNS = tuple(c.key for c in Claim.__table__.columns if c.key != "id")
# A household as `find_rule_row(household_id=…)` reads it with the rule: the columns of
# `households` by name, like the rows `_Subjects._read` reads.
_HouseholdRow = namedtuple("_HouseholdRow", [c.key for c in Household.__table__.c])  # noqa: PYI024
_claims = Claim.__table__.c
# One claim: INSERT … RETURNING its id. A batch: one executemany INSERT (the driver's own
# loop; insertmanyvalues with RETURNING rendered every row's parameters in Python, more work
# than the read back), then the new ids by subject (a batch names each subject once).
_INSERT_CLAIM = Direct(
    insert(Claim.__table__)
    .values({key: bindparam(key, type_=_claims[key].type) for key in _CLAIM_COLUMNS})
    .returning(_claims.id)
)
_INSERT_CLAIMS = insert(Claim.__table__)
_BATCH_IDS = select(_claims.id, _claims.household_id, _claims.resident_id).where(
    _claims.batch_id == bindparam("batch_id")
)


def _insert_claim_and_event():
    # One claim and its audit event in one statement (PostgreSQL's data-modifying WITH): the
    # event's object_id is the new claim's id; the claim's values are bound by column name,
    # the event's as "audit_" + column name. Returns the event's object_id (the claim's id).
    table, events = Claim.__table__, AuditEvent.__table__
    new = (
        insert(table)
        .values({key: bindparam(key, type_=table.c[key].type) for key in _CLAIM_COLUMNS})
        .returning(table.c.id)
        .cte("new_claim")
    )
    names = [c.key for c in events.c if c.key != "id"]
    values = [
        cast(new.c.id, events.c.object_id.type)
        if name == "object_id"
        else bindparam(f"audit_{name}", type_=events.c[name].type)
        for name in names
    ]
    return (
        insert(events)
        .add_cte(new)
        .from_select(names, select(*values).select_from(new))
        .returning(events.c.object_id)
    )


_INSERT_CLAIM_AND_EVENT = Direct(_insert_claim_and_event())


def _insert_claims(
    session: Session, claims: list[Claim], audit: Note | None = None, *, attach: bool = True
) -> None:
    """Insert new claims with Core statements, not the ORM's unit of work (recording's hot
    path: a flush cost more than the INSERT), and put them in the session as if loaded: every
    column is set to what was inserted, and a new claim has no photos and no objections, so
    neither reading them back nor serialising the response sends another statement. Several
    claims must be one batch's. `audit`: one claim's audit event, appended with it (in the
    same statement on one PostgreSQL server). `attach=False`: the claims are left out of the
    session (read-only answers; their values are all set)."""
    rows = []
    for claim in claims:
        state = claim.__dict__
        for key in _CLAIM_COLUMNS:
            if key not in state:
                setattr(claim, key, None)
        rows.append({key: state[key] for key in _CLAIM_COLUMNS})
    connection = session.connection()
    # Ids go straight into the objects' state: make_transient_to_detached below takes every
    # value as loaded, so the ORM's tracking of a set attribute would be thrown away.
    if audit is not None:
        (claim,) = claims
        if bulk_postgresql(session):
            event = {f"audit_{k}": v for k, v in audit.values(claim).items() if k != "object_id"}
            claim.__dict__["id"] = int(_INSERT_CLAIM_AND_EVENT.scalar(connection, rows[0] | event))
        else:
            claim.__dict__["id"] = _INSERT_CLAIM.scalar(connection, rows[0])
            audit.append(session, claim)
    elif len(claims) == 1:
        claims[0].__dict__["id"] = _INSERT_CLAIM.scalar(connection, rows[0])
    else:
        connection.execute(_INSERT_CLAIMS, rows)
        ids = {
            (h, r): claim_id
            for claim_id, h, r in connection.execute(_BATCH_IDS, {"batch_id": claims[0].batch_id})
        }
        for claim in claims:
            claim.__dict__["id"] = ids[claim.household_id, claim.resident_id]
    for claim in claims:
        if attach:
            make_transient_to_detached(claim)
            session.add(claim)
            _no_evidence_yet(claim)
        else:  # a plain object: its collections are plain empty lists
            claim.__dict__.update(evidence=[], objections=[])


def _lock_limited(session: Session, scheme: Scheme, row: CatalogRule, subjects) -> None:
    """Take the subjects' locks when the rule has caps, a once-only limit or repeats: caps,
    once-only and repeats are reserved at recording, counted and added under the subject's
    lock, so concurrent recordings cannot exceed a cap (posting re-checks under the chain lock).
    """
    if not (row.caps or row.once or row.repeat_window):
        return
    if scheme.subject_kind == "resident":
        lock_subjects(session, resident_ids=[r for _, r in subjects if r is not None])
    else:
        lock_subjects(session, household_ids=[h for h, _ in subjects])


def notice_over(claim: Claim, now: datetime) -> bool:
    """Whether a claim's public notice has ended (or never ran: a rule with 0 notice days and no
    review, such as attendance, posts at once, by the same path as a notice that ran out)."""
    return claim.notice_until is not None and claim.notice_until <= now


@dataclass
class _Subjects:
    """The households and people named in a recording, with each one's use of the rule's caps."""

    scheme: Scheme
    households: dict[int, Row]  # plain rows of `households` (and `residents`): read, not changed
    residents: dict[int, Row]
    used: dict[int, dict]  # subject id (household or resident by scheme) -> {Window: points}

    @classmethod
    def load(
        cls, session, *, village, scheme, row, subjects, on, read_with_rule: bool = False
    ) -> _Subjects:
        """Read every named household and person: one statement each, caps use included.
        `read_with_rule`: the rule's row carries the one household (`find_rule_row`), taken
        from it when no cap use is to be counted on the household (the count must come from
        a statement after the one that took the subject's lock)."""
        by_household = scheme.subject_kind == "household"
        used: dict[int, dict] = {}
        household_ids = {h for h, _ in subjects}
        if read_with_rule and row is not None and not (by_household and row.caps):
            joined = _HouseholdRow(*(getattr(row, name) for name in HOUSEHOLD_COLUMNS))
            households = {joined.id: joined} if joined.id in household_ids else {}
            if by_household and households:
                used[joined.id] = {}  # no caps: nothing counted
        else:
            households = cls._read(
                session, village, scheme, row, on, Household, household_ids, by_household, used
            )
        resident_ids = {r for _, r in subjects if r is not None}
        residents = (
            cls._read(
                session, village, scheme, row, on, Resident, resident_ids, not by_household, used
            )
            if resident_ids
            else {}
        )
        return cls(scheme, households, residents, used)

    @staticmethod
    def _read(session, village, scheme, row, on, model, ids, counted: bool, used: dict) -> dict:
        # The subjects by id, plain rows; `counted` (with a rule): each one's use of the rule's
        # caps into `used`, by the subject's id.
        counted = counted and row is not None
        windows = tuple(rules.Window(name) for name in row.caps or {}) if counted else ()
        params: dict = {"ids": sorted(ids), "village_id": village.id}
        if windows:
            params |= {"scheme_id": scheme.id, "code": row.code}
            for window in windows:
                start, end = _window_bounds(window, scheme, on)
                params |= {f"start_{window.value}": start, f"end_{window.value}": end}
        found = {}
        width = len(model.__table__.c)
        statement = _subjects_statement(model, windows)
        for subject in session.connection().execute(statement, params):
            found[subject.id] = subject
            if counted:
                sums = subject[width:]
                used[subject.id] = {w: int(v) for w, v in zip(windows, sums, strict=True)}
        return found

    def household(self, village: Village, household_id: int) -> Household:
        household = self.households.get(household_id)
        if household is None or household.village_id != village.id:
            raise NotFoundError("找不到该农户")
        return household

    def used_by(self, household_id: int, resident) -> dict:
        key = household_id if self.scheme.subject_kind == "household" else resident.id
        return dict(self.used.get(key, {}))

    def add_use(self, household_id: int, resident_id: int | None, points: int) -> None:
        key = household_id if self.scheme.subject_kind == "household" else resident_id
        for window in self.used.get(key, {}):
            self.used[key][window] += points


@cache
def _subjects_statement(model, windows: tuple[rules.Window, ...]):
    """Households (or residents) by id, each with its points from one rule (by code, across
    catalog versions) in each capped window, as correlated subqueries: what `_used_sums`
    counts, for a set of subjects. Built once per shape, with bound parameters (recording's
    hot path: building the statement cost as much as running it)."""
    statuses = [
        str(s) for s in (ClaimStatus.PENDING_REVIEW, ClaimStatus.IN_NOTICE, ClaimStatus.POSTED)
    ]
    subject_col = Claim.household_id if model is Household else Claim.resident_id
    columns = []
    for window in windows:
        used = (
            select(func.coalesce(func.sum(func.abs(Claim.points)), 0))
            .join(
                CatalogRule,
                and_(CatalogRule.id == Claim.rule_id, CatalogRule.village_id == Claim.village_id),
            )
            .where(
                Claim.village_id == model.village_id,
                Claim.scheme_id == bindparam("scheme_id"),
                CatalogRule.code == bindparam("code"),
                Claim.status.in_(statuses),
                Claim.occurred_on >= bindparam(f"start_{window.value}"),
                Claim.occurred_on < bindparam(f"end_{window.value}"),
                subject_col == model.id,
            )
        )
        columns.append(used.scalar_subquery().label(f"used_{window.value}"))
    # The village too: on Citus that makes it a query of one worker (decision 0018).
    # Plain rows, not ORM objects: recording reads a subject's columns and never changes it.
    return select(*model.__table__.c, *columns).where(
        model.id.in_(bindparam("ids", expanding=True)),
        model.village_id == bindparam("village_id"),
    )


def _rule_or_refusal(session, scheme, code, on, lock=None, household_id=None):
    """Find the rule (and the household, see `find_rule_row`), keeping a not-found to raise
    after the subject and permission checks."""
    try:
        row = find_rule_row(
            session, scheme=scheme, code=code, on=on, lock=lock, household_id=household_id
        )
        return row, None
    except NotFoundError as error:
        return None, error


def _decide(
    session: Session,
    subjects: _Subjects,
    *,
    village: Village,
    scheme: Scheme,
    actor: Actor,
    item: ClaimInput,
    now: datetime,
    channel: Channel,
    batch: ClaimBatch | None,
    row: CatalogRule | None,
    refusal: NotFoundError | None,
    rule: rules.Rule | None = None,
) -> Claim:
    """Check one subject and ask the rules engine; return the (unsaved) claim or raise.
    `rule`: `rule_of(row)` when the caller built it already (a batch: once for all)."""
    household = subjects.household(village, item.household_id)
    if channel == Channel.DECLARED:
        if actor.household_id != household.id:
            raise PermissionDeniedError("村民只能为自己家庭申报")
        role = Role.RESIDENT
    else:
        _no_own_household(actor, household, "登记")
        actor.require_recorder_for(village, household)
        role = Role.ADMIN if actor.has(village, Role.ADMIN) else Role.RECORDER
    resident = _resident(subjects.residents, household, item.resident_id, scheme)
    if item.occurred_on > local_date(now):
        raise ValidationError("发生日期不能晚于今天", errors={"occurred_on": ["不能是将来的日期"]})
    if refusal is not None:
        raise refusal
    rule = rule or rule_of(row)
    subject_kind = "party_member" if scheme.subject_kind == "resident" else "household"
    # The subject's lock is held (record/record_batch took it before reading the cap use).
    ever, repeats = _earlier(session, scheme, rule, household.id, resident, item.occurred_on)
    facts = rules.Facts(
        subject_kind=subject_kind,
        recorder_role=role,
        quantity=item.quantity,
        proposed_points=item.proposed_points,
        has_evidence=item.has_evidence,
        reason=item.description or None,
        used=subjects.used_by(household.id, resident),
        occurred_on=item.occurred_on,
        ever=ever,
        repeats=repeats,
    )
    decision = rules.decide(rule, facts)
    if not decision.ok:
        raise RuleRefusedError(decision)
    # Declarations always go through review: the resident is asking for their own points.
    needs_review = decision.needs_review or channel == Channel.DECLARED
    return _new_claim(
        village_id=village.id,
        scheme_id=scheme.id,
        household_id=household.id,
        resident_id=resident.id if resident else None,
        rule_id=row.id,
        batch_id=batch.id if batch else None,
        channel=channel,
        quantity=item.quantity,
        proposed_points=item.proposed_points,
        requested=decision.requested,
        points=decision.points,
        cut_note=decision.message if decision.cuts else None,
        rule_note=decision.note,
        description=item.description,
        occurred_on=item.occurred_on,
        status=ClaimStatus.PENDING_REVIEW if needs_review else ClaimStatus.IN_NOTICE,
        recorded_by=actor.user_id,
        created_at=now,
        notice_until=None if needs_review else _notice_end(scheme, now, row),
    )


_CLAIM_MANAGER = Claim.__mapper__.class_manager


def _new_claim(**values) -> Claim:
    """A new Claim holding `values` (the other columns None, the id to come), for
    `_insert_claims` only: it inserts the row itself and then puts the object in the session
    as loaded, so the constructor's per-attribute change tracking (most of the Python work of
    a recording's ORM object) would be thrown away. The instance is made the way the ORM makes
    one it loads (its class manager, no __init__) and its values go straight to its state."""
    claim = _CLAIM_MANAGER.new_instance()
    claim.__dict__.update(dict.fromkeys(_CLAIM_COLUMNS), **values)
    return claim


def _no_evidence_yet(claim: Claim) -> None:
    # A claim just inserted has no photos and no objections: say so, instead of letting the
    # response's serialisation load two empty collections with two more statements.
    set_committed_value(claim, "evidence", [])
    set_committed_value(claim, "objections", [])


# --- review, notice, objections ----------------------------------------------------------------


def approve(
    session: Session, *, claim: Claim, actor: Actor, now: datetime, note: str | None = None
) -> Claim:
    """Approve a claim waiting for review; it goes on public notice for the scheme's days."""
    village, household = _context(session, claim)
    actor.require(village, *REVIEWERS)
    _no_own_household(actor, household, "审核")
    if claim.recorded_by == actor.user_id:
        raise PermissionDeniedError(
            "登记人不能审核自己登记的积分（登记与审核分离）", reason="maker_checker"
        )
    _require_status(claim, ClaimStatus.PENDING_REVIEW, "审核")
    row = session.get(CatalogRule, claim.rule_id)
    notice_until = _notice_end(session.get(Scheme, claim.scheme_id), now, row)
    # A group award is reviewed once: approving one of its claims approves them all.
    for one in [claim, *_group_of(session, claim, ClaimStatus.PENDING_REVIEW, actor, "审核")]:
        one.status = ClaimStatus.IN_NOTICE
        one.reviewed_by, one.reviewed_at, one.review_note = actor.user_id, now, note
        one.notice_until = notice_until
    session.flush()
    return claim


def reject(session: Session, *, claim: Claim, actor: Actor, now: datetime, reason: str) -> Claim:
    """Reject a claim in review, with a reason the household will read."""
    village, household = _context(session, claim)
    actor.require(village, *REVIEWERS)
    _no_own_household(actor, household, "审核")
    _require_status(claim, ClaimStatus.PENDING_REVIEW, "驳回")
    if not (reason or "").strip():
        raise ValidationError("驳回必须写明理由", errors={"reason": ["不能为空"]})
    for one in [claim, *_group_of(session, claim, ClaimStatus.PENDING_REVIEW, actor, "审核")]:
        one.status = ClaimStatus.REJECTED
        one.reviewed_by, one.reviewed_at, one.review_note = actor.user_id, now, reason.strip()
    session.flush()
    return claim


def object_to(
    session: Session, *, claim: Claim, actor: Actor, reason: str, now: datetime
) -> Objection:
    """Raise an objection (异议) during the notice window; anyone of the village may."""
    village, _ = _context(session, claim)
    if not actor.roles_in(village):
        raise PermissionDeniedError("只有本村村民和工作人员可以提出异议")
    if claim.status != ClaimStatus.IN_NOTICE or claim.notice_until <= now:
        raise ConflictError("该事项不在公示期内，不能提出异议", reason="not_in_notice")
    if not (reason or "").strip() or len(reason) > 2000:
        raise ValidationError("请写明异议理由（2000 字以内）", errors={"reason": ["不能为空"]})
    objection = Objection(
        village_id=village.id,
        claim_id=claim.id,
        raised_by=actor.user_id,
        reason=reason.strip(),
        status=ObjectionStatus.OPEN,
        created_at=now,
    )
    # Through the collection, so a claim loaded in this session lists it at once.
    claim.objections.append(objection)
    session.flush()
    return objection


def resolve_objection(
    session: Session, *, objection: Objection, actor: Actor, uphold: bool, note: str, now: datetime
) -> Objection:
    """Uphold (the claim is rejected) or dismiss (it continues) an open objection."""
    claim = session.get(Claim, objection.claim_id)
    village, household = _context(session, claim)
    actor.require(village, *REVIEWERS)
    _no_own_household(actor, household, "处理异议")
    if objection.status != ObjectionStatus.OPEN:
        raise ConflictError("该异议已经处理过了", reason="objection_resolved")
    if not (note or "").strip():
        raise ValidationError("请写明处理意见", errors={"note": ["不能为空"]})
    objection.status = ObjectionStatus.UPHELD if uphold else ObjectionStatus.DISMISSED
    objection.resolved_by, objection.resolved_at = actor.user_id, now
    objection.resolution_note = note.strip()
    if uphold and claim.status == ClaimStatus.IN_NOTICE:
        # An upheld objection to a group award rejects it for every member household.
        for one in [claim, *_group_of(session, claim, ClaimStatus.IN_NOTICE, actor, "处理异议")]:
            one.status = ClaimStatus.REJECTED
            one.review_note = f"异议成立：{note.strip()}"
    session.flush()
    return objection


# --- posting -----------------------------------------------------------------------------------


def due_claims(session: Session, *, now: datetime, village_id: int | None = None) -> list[int]:
    """Return ids of claims whose notice ended with no open objection: ready to post."""
    return [claim_id for claim_id, _ in session.execute(_due(now, village_id))]


def _due(now: datetime, village_id: int | None):
    open_objection = (
        select(Objection.id)
        .where(
            Objection.claim_id == Claim.id,
            Objection.village_id == Claim.village_id,
            Objection.status == ObjectionStatus.OPEN,
        )
        .exists()
    )
    sibling = aliased(Claim)
    group_objection = (
        select(Objection.id)
        .join(
            sibling,
            and_(sibling.id == Objection.claim_id, sibling.village_id == Objection.village_id),
        )
        .join(
            ClaimBatch,
            and_(ClaimBatch.id == sibling.batch_id, ClaimBatch.village_id == sibling.village_id),
        )
        .where(
            ClaimBatch.grouped.is_(True),
            sibling.batch_id == Claim.batch_id,
            sibling.village_id == Claim.village_id,
            Objection.status == ObjectionStatus.OPEN,
        )
        .exists()
    )
    q = select(Claim.id, Claim.village_id).where(
        Claim.status == ClaimStatus.IN_NOTICE,
        Claim.notice_until <= now,
        ~open_objection,
        ~group_objection,
    )
    if village_id is not None:
        q = q.where(Claim.village_id == village_id)
    return q.order_by(Claim.id)


def post_claim(
    session: Session, *, claim_id: int, now: datetime, actor_id: int | None = None
) -> Claim:
    """Post one claim whose notice ended: exactly once, caps re-checked under the chain lock."""
    claim = session.get(Claim, claim_id)
    if claim is None:
        raise NotFoundError("找不到该积分事项")
    # Serialise with every other posting in the village, then look again: a concurrent
    # poster may have finished first, and caps must count what it posted.
    lock_village(session, claim.village_id)
    session.refresh(claim)
    if claim.status == ClaimStatus.POSTED:
        return claim
    _require_status(claim, ClaimStatus.IN_NOTICE, "入账")
    if claim.notice_until > now:
        raise ConflictError("公示期尚未结束，不能入账", reason="notice_running")
    if any(o.status == ObjectionStatus.OPEN for o in claim.objections) or _group_objection(
        session, claim
    ):
        raise ConflictError("有未处理的异议，不能入账", reason="objection_open")
    scheme = session.get(Scheme, claim.scheme_id)
    row = session.get(CatalogRule, claim.rule_id)
    resident = session.get(Resident, claim.resident_id) if claim.resident_id else None
    used = _used(
        session,
        scheme,
        row,
        claim.household_id,
        resident,
        claim.occurred_on,
        claim.id,
        (ClaimStatus.POSTED,),
    )
    allowed = _cap_room(row, used, abs(claim.points))
    if allowed <= 0:
        claim.status = ClaimStatus.REJECTED
        claim.review_note = "入账时已达到本项积分上限，未入账"
        session.flush()
        return claim
    if allowed < abs(claim.points):
        claim.cut_note = f"入账时按上限调整为 {allowed} 分"
        claim.points = allowed if claim.points > 0 else -allowed
    subject_id = claim.household_id if scheme.subject_kind == "household" else claim.resident_id
    kwargs = dict(
        scheme=scheme,
        subject_id=subject_id,
        points=abs(claim.points),
        idem_key=f"award:{claim.id}",
        actor_id=actor_id,
        now=now,
        # A household's statement names the member who did it; a party member is the subject.
        memo=_memo(row, claim, resident if scheme.subject_kind == "household" else None),
        category=row.category,
        rule_id=row.id,
        claim_id=claim.id,
    )
    entry = (
        ledger.award(session, **kwargs) if claim.points > 0 else ledger.deduct(session, **kwargs)
    )
    done = session.execute(
        update(Claim)
        .where(Claim.id == claim.id, Claim.status == ClaimStatus.IN_NOTICE)
        .values(status=ClaimStatus.POSTED, entry_id=entry.id, posted_at=now)
        .execution_options(synchronize_session="fetch")
    ).rowcount
    if done != 1:
        raise ConflictError("该事项已被其他操作处理", reason="claim_changed")
    session.refresh(claim)
    return claim


def post_due(session: Session, *, now: datetime, village_id: int | None = None) -> list[Claim]:
    """Post every claim whose notice ended with no open objection; return what was handled."""
    return [
        post_claim(session, claim_id=i, now=now)
        for i in due_claims(session, now=now, village_id=village_id)
    ]


def reverse_claim(session: Session, *, claim: Claim, actor: Actor, reason: str, now: datetime):
    """Correct a posted claim with a visible reversing entry (admins only)."""
    village, _ = _context(session, claim)
    actor.require(village, Role.ADMIN)
    if claim.status != ClaimStatus.POSTED:
        raise ConflictError("只有已入账的事项才能冲正", reason="not_posted")
    return ledger.reverse(
        session, entry_id=claim.entry_id, reason=reason, actor_id=actor.user_id, now=now
    )


# --- reads -------------------------------------------------------------------------------------


def get_claim(session: Session, *, village: Village, claim_id: int) -> Claim:
    """Return a claim of the village; raise NotFoundError."""
    claim = session.get(Claim, claim_id)
    if claim is None or claim.village_id != village.id:
        raise NotFoundError("找不到该积分事项")
    return claim


def list_claims(
    session: Session,
    *,
    village: Village,
    actor: Actor,
    status: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Claim]:
    """Return claims of the households the actor may see, newest first."""
    q = (
        select(Claim)
        .join(
            Household,
            and_(Household.id == Claim.household_id, Household.village_id == Claim.village_id),
        )
        .where(Claim.village_id == village.id, actor.household_scope(village))
    )
    if status:
        q = q.where(Claim.status == status)
    return list(session.execute(q.order_by(Claim.id.desc()).limit(limit).offset(offset)).scalars())


def recent_rule_codes(
    session: Session, *, village: Village, user_id: int, scheme: Scheme, limit: int = 5
) -> list[str]:
    """Return the codes of the items this user recorded most recently (newest first, distinct),
    so a recorder finds the few items they use every week at the top of a long catalog."""
    rows = session.execute(
        select(CatalogRule.code, func.max(Claim.id).label("last"))
        .join(
            CatalogRule,
            and_(CatalogRule.id == Claim.rule_id, CatalogRule.village_id == Claim.village_id),
        )
        .where(
            Claim.village_id == village.id,
            Claim.scheme_id == scheme.id,
            Claim.recorded_by == user_id,
        )
        .group_by(CatalogRule.code)
        .order_by(func.max(Claim.id).desc())
        .limit(limit)
    )
    return [code for code, _ in rows]


def open_notices(session: Session, *, village: Village, now: datetime) -> list[Claim]:
    """Return the claims on public notice now, oldest first."""
    return list(
        session.execute(
            select(Claim)
            .where(
                Claim.village_id == village.id,
                Claim.status == ClaimStatus.IN_NOTICE,
                Claim.notice_until > now,
            )
            .order_by(Claim.notice_until)
        ).scalars()
    )


def count_open_objections(session: Session, *, village: Village) -> int:
    """Return how many objections wait for a reviewer."""
    return session.execute(
        select(func.count())
        .select_from(Objection)
        .where(Objection.village_id == village.id, Objection.status == ObjectionStatus.OPEN)
    ).scalar_one()


# --- helpers -----------------------------------------------------------------------------------


def _notice_end(scheme: Scheme, now: datetime, row: CatalogRule | None = None) -> datetime:
    days = row.notice_days if row is not None and row.notice_days is not None else None
    return now + timedelta(days=scheme.notice_days if days is None else days)


def _earlier(session, scheme, rule: rules.Rule, household_id, resident, d: date):
    """Claims of this rule's code the subject already has (not rejected): ever, and in the
    repeat window; zero when the rule has no once-only limit or repeat escalation."""
    live = (ClaimStatus.PENDING_REVIEW, ClaimStatus.IN_NOTICE, ClaimStatus.POSTED)

    def count(start: date | None, end: date | None) -> int:
        q = (
            select(func.count())
            .select_from(Claim)
            .join(
                CatalogRule,
                and_(CatalogRule.id == Claim.rule_id, CatalogRule.village_id == Claim.village_id),
            )
            .where(
                Claim.scheme_id == scheme.id,
                CatalogRule.code == rule.code,
                Claim.status.in_([str(s) for s in live]),
            )
        )
        if start is not None:
            q = q.where(Claim.occurred_on >= start, Claim.occurred_on < end)
        if scheme.subject_kind == "household":
            q = q.where(Claim.household_id == household_id)
        else:
            q = q.where(Claim.resident_id == (resident.id if resident else None))
        return int(session.execute(q).scalar_one())

    ever = count(None, None) if rule.once else 0
    repeats = 0
    if rule.repeat_window is not None:
        repeats = count(*_window_bounds(rules.Window(rule.repeat_window), scheme, d))
    return ever, repeats


def _memo(row: CatalogRule, claim: Claim, resident: Resident | None = None) -> str:
    # The member who did the act is named on the household's statement and history.
    text = row.name + (f"（{resident.name}）" if resident is not None else "")
    if claim.description and claim.description != row.name:
        text += f"：{claim.description}"
    return text[:500]


def _household(session: Session, village: Village, household_id: int) -> Household:
    household = session.get(Household, household_id)
    if household is None or household.village_id != village.id:
        raise NotFoundError("找不到该农户")
    return household


def _resident(residents: dict, household: Household, resident_id: int | None, scheme: Scheme):
    if scheme.subject_kind == "resident" and resident_id is None:
        raise ValidationError("党员积分须指定党员本人", errors={"resident_id": ["必填"]})
    if resident_id is None:
        return None
    resident = residents.get(resident_id)
    if resident is None or resident.household_id != household.id:
        raise ValidationError("该村民不是这户的成员", errors={"resident_id": ["不属于该户"]})
    if scheme.subject_kind == "resident" and not resident.is_party_member:
        raise ValidationError("该村民不是党员", errors={"resident_id": ["不是党员"]})
    return resident


def _grouped(session: Session, claim: Claim) -> bool:
    if claim.batch_id is None:
        return False
    return bool(session.get(ClaimBatch, claim.batch_id).grouped)


def _group_of(session, claim: Claim, status: ClaimStatus, actor: Actor, doing: str) -> list:
    """The other claims of a group award in `status` (none for an ordinary claim); the actor
    must not belong to any of their households."""
    if not _grouped(session, claim):
        return []
    others = list(
        session.execute(
            select(Claim).where(
                Claim.batch_id == claim.batch_id, Claim.id != claim.id, Claim.status == status
            )
        ).scalars()
    )
    for other in others:
        _no_own_household(actor, session.get(Household, other.household_id), doing)
    return others


def _group_objection(session: Session, claim: Claim) -> bool:
    if not _grouped(session, claim):
        return False
    return (
        session.execute(
            select(Objection.id)
            .join(
                Claim,
                and_(Claim.id == Objection.claim_id, Claim.village_id == Objection.village_id),
            )
            .where(Claim.batch_id == claim.batch_id, Objection.status == ObjectionStatus.OPEN)
            .limit(1)
        ).first()
        is not None
    )


def _context(session: Session, claim: Claim) -> tuple[Village, Household]:
    return session.get(Village, claim.village_id), session.get(Household, claim.household_id)


def _no_own_household(actor: Actor, household: Household, doing: str) -> None:
    if actor.household_id is not None and actor.household_id == household.id:
        raise ConflictOfInterestError(
            f"不能为自己家庭{doing}积分（回避原则）", household_id=household.id, doing=doing
        )


def _require_status(claim: Claim, status: ClaimStatus, doing: str) -> None:
    if claim.status != status:
        raise ConflictError(
            f"该事项当前状态不能{doing}", reason="wrong_status", status=claim.status
        )


def _window_bounds(window: rules.Window, scheme: Scheme, d: date) -> tuple[date, date]:
    if window is rules.Window.ever:
        return date.min, date.max
    if window is rules.Window.day:
        return d, d + timedelta(days=1)
    kind = {rules.Window.month: "month", rules.Window.year: "year"}.get(window, scheme.period_kind)
    key = period_key(kind, d)
    start = period_start(kind, key)
    months = {"month": 1, "quarter": 3, "year": 12}[kind]
    m = start.month - 1 + months
    return start, date(start.year + m // 12, m % 12 + 1, 1)


def _used(
    session,
    scheme,
    row: CatalogRule,
    household_id: int,
    resident,
    d: date,
    exclude_id: int | None,
    statuses,
) -> dict:
    """Points (magnitudes) the subject already has from this item in each capped window.

    Counted by rule code across catalog versions: a new version does not reset a cap.
    """
    subject = (
        household_id if scheme.subject_kind == "household" else (resident.id if resident else None)
    )
    windows = _used_sums(scheme, row, d, statuses, exclude_id, subject)
    if not windows:
        return {}
    sums = session.execute(select(*(col for _, col in windows))).one()
    return {w: int(v) for (w, _), v in zip(windows, sums, strict=True)}


def _used_sums(scheme, row: CatalogRule, d: date, statuses, exclude_id, subject) -> list:
    """One scalar subquery per capped window: the subject's points from this item in it.

    `subject` is an id, or the Household/Resident id column of an enclosing query (then each
    row of that query gets its own sums, correlated, in the same statement).
    """
    by_household = scheme.subject_kind == "household"
    subject_col = Claim.household_id if by_household else Claim.resident_id
    columns = []
    for window_name in row.caps or {}:
        window = rules.Window(window_name)
        start, end = _window_bounds(window, scheme, d)
        q = (
            select(func.coalesce(func.sum(func.abs(Claim.points)), 0))
            .join(
                CatalogRule,
                and_(CatalogRule.id == Claim.rule_id, CatalogRule.village_id == Claim.village_id),
            )
            .where(
                Claim.village_id == scheme.village_id,
                Claim.scheme_id == scheme.id,
                CatalogRule.code == row.code,
                Claim.status.in_([str(s) for s in statuses]),
                Claim.occurred_on >= start,
                Claim.occurred_on < end,
                subject_col == subject,
            )
        )
        if exclude_id is not None:
            q = q.where(Claim.id != exclude_id)
        columns.append((window, q.scalar_subquery().label(f"used_{window_name}")))
    return columns


def _cap_room(row: CatalogRule, used: dict, wanted: int) -> int:
    room = wanted
    for window_name, cap in (row.caps or {}).items():
        room = min(room, cap - used.get(rules.Window(window_name), 0))
    return room


# --- the scheduler's job: post claims whose notice ended ---------------------------------------


def _due_posts(session: Session, now: datetime):
    return [
        WorkItem("claims_post", village_id, f"claim:{claim_id}", {"claim_id": claim_id})
        for claim_id, village_id in session.execute(_due(now, None))
    ]


def _run_post(session: Session, item, now: datetime) -> dict:
    claim = post_claim(session, claim_id=item.params["claim_id"], now=now)
    return {"status": claim.status, "entry_id": claim.entry_id, "points": claim.points}


def _register() -> None:
    register_job(Job("claims_post", _due_posts, _run_post, order=10))


_register()
