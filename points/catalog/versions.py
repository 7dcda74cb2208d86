"""Catalog versions: drafts, validation, adoption, the version in force on a date, and diffs.

The 村两委 drafts a scheme's 积分标准; the 村民(代表)大会 adopts it. A draft can be edited or
discarded; an adopted version never changes (the database refuses it too) and is retired when
the next one is adopted. Entries will name the `CatalogRule` row they used, so points keep the
values in force when they were earned. Dates here are village-local calendar dates.
"""

from __future__ import annotations

import marshal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime
from functools import cache
from operator import attrgetter
from typing import Any

from sqlalchemy import Date, Integer, bindparam, func, or_, select
from sqlalchemy.orm import Session

from points.catalog.categories import (
    DEFAULT_CATEGORIES,
    Category,
    categories_from_json,
    category_names,
    category_to_dict,
    check_categories,
)
from points.catalog.conditions import describe_condition
from points.catalog.rules import (
    CODE_PATTERN,
    MESSAGES,
    REPEAT_TEXT,
    ROLE_TEXT,
    SUBJECT_TEXT,
    UNIT_TEXT,
    AutoPeriod,
    Review,
    Rule,
    Unit,
    Window,
    protected_word,
    rule_from_dict,
    rule_to_dict,
    validate_rule,
)
from points.direct import Direct
from points.errors import (
    CatalogImmutableError,
    CatalogProblemsError,
    CatalogStateError,
    NotFoundError,
    ValidationError,
)
from points.models import CatalogRule, CatalogVersion, Household, Scheme
from points.models.catalog import CatalogStatus
from points.periods import local_date

RULE_FIELDS = tuple(f.name for f in fields(Rule))
# One column per field in sheet order; caps get one column per window so a sheet and a diff can
# say "每月上限" instead of showing a dict.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("code", "编码"),
    ("name", "名称"),
    ("category", "类别"),
    ("subcategory", "子类"),
    ("description", "说明"),
    ("sign", "加减分"),
    ("points", "分值"),
    ("min_points", "最低分"),
    ("max_points", "最高分"),
    ("unit", "单位"),
    ("caps.day", "每日上限"),
    ("caps.month", "每月上限"),
    ("caps.period", "每期上限"),
    ("caps.year", "每年上限"),
    ("evidence_required", "需要佐证"),
    ("review", "审核"),
    ("review_threshold", "审核阈值"),
    ("recorder_roles", "可登记角色"),
    ("subjects", "适用对象"),
    ("honourable", "红榜"),
    ("once", "每户限一次"),
    ("caps.ever", "累计上限"),
    ("notice_days", "公示天数"),
    ("repeat_window", "累犯周期"),
    ("repeat_multiplier", "第二次倍数"),
    ("repeat_points", "第三次起扣分"),
    ("veto", "一票否决"),
    ("auto", "自动评定"),
    ("auto_months", "连续月数"),
    ("auto_min_count", "满足次数"),
    ("auto_watch", "条件类别或编码"),
    ("campaign_name", "活动名称"),
    ("campaign_from", "活动开始"),
    ("campaign_to", "活动结束"),
    ("campaign_multiplier", "活动倍数"),
)
FIELD_TEXT = dict(COLUMNS) | {"caps": "上限", "rules": "积分标准"}
SIGN_TEXT = {1: "加分", -1: "扣分"}
REVIEW_TEXT = {Review.always: "必须", Review.never: "无需", Review.threshold: "达到阈值"}
BOOL_TEXT = {True: "是", False: "否"}
# A repeat or veto window as a cell reads it; the automatic period likewise.
SPAN_TEXT = {Window.month: "月", Window.period: "周期", Window.year: "年"}
AUTO_CELL_TEXT = {AutoPeriod.month: "月", AutoPeriod.quarter: "季度", AutoPeriod.year: "年"}
STATUS_TEXT = {
    CatalogStatus.DRAFT: "草案",
    CatalogStatus.ADOPTED: "已通过",
    CatalogStatus.RETIRED: "已停用",
}


# ---------------------------------------------------------------------------------------------
# Rules as plain values: flattening, display, validation of a whole catalog
# ---------------------------------------------------------------------------------------------


def flatten_rule(rule: Rule) -> dict[str, Any]:
    """Return one value per key of COLUMNS: enums as strings, a cap per window or None."""
    data = rule_to_dict(rule)
    caps = data.pop("caps")
    return {
        key: caps.get(key.removeprefix("caps.")) if key.startswith("caps.") else data[key]
        for key, _ in COLUMNS
    }


def display_value(key: str, value: Any) -> str:
    """Return how a flattened rule value reads in a sheet or a diff (empty for None)."""
    if value is None:
        return ""
    if key == "sign":
        return SIGN_TEXT.get(value, str(value))
    if key == "unit":
        return UNIT_TEXT.get(Unit(value), value) if value in tuple(Unit) else str(value)
    if key == "review":
        return REVIEW_TEXT.get(Review(value), value) if value in tuple(Review) else str(value)
    if isinstance(value, bool):
        return BOOL_TEXT[value]
    if key == "recorder_roles":
        return "、".join(ROLE_TEXT.get(r, r) for r in value)
    if key == "subjects":
        return "、".join(SUBJECT_TEXT.get(s, s) for s in value)
    if key in ("repeat_window", "veto"):
        return SPAN_TEXT.get(Window(value), value) if value in tuple(Window) else str(value)
    if key == "auto":
        return AUTO_CELL_TEXT.get(AutoPeriod(value), value) if value in tuple(AutoPeriod) else value
    if key == "auto_watch":
        return "、".join(value)
    return str(value)


def describe_rule(rule: Rule) -> str:
    """Return a one-line Chinese summary, e.g. '德治·积孝，加分，每次 5 分，每月最多 5 分'."""
    kind = rule.category + (f"·{rule.subcategory}" if rule.subcategory else "")
    unit = UNIT_TEXT.get(rule.unit, str(rule.unit))
    value = rule.points if rule.points is not None else f"{rule.min_points}–{rule.max_points}"
    text = f"{kind}，{SIGN_TEXT.get(rule.sign, rule.sign)}，每{unit} {value} 分"
    flat = flatten_rule(rule)
    for key in ("caps.day", "caps.month", "caps.period", "caps.year", "caps.ever"):
        cap = flat[key]
        if cap is not None:
            text += f"，{FIELD_TEXT[key].removesuffix('上限')}最多 {cap} 分"
    return text + "".join(f"，{part}" for part in rule_features(rule))


def rule_features(rule: Rule) -> list[str]:
    """Return what a rule does beyond a plain act, in plain Chinese, for the public rules page."""
    out = []
    if rule.auto is not None:
        out.append(describe_condition(rule))
    if rule.once:
        out.append("每户（人）限一次")
    if rule.repeat_window is not None:
        span = REPEAT_TEXT[Window(rule.repeat_window)]
        if rule.repeat_multiplier is not None:
            out.append(f"{span}内第 2 次按 {rule.repeat_multiplier} 倍扣分")
        if rule.repeat_points is not None:
            out.append(f"{span}内第 3 次起每次扣 {rule.repeat_points} 分")
    if rule.veto is not None:
        span = {"month": "当月", "period": "本积分周期", "year": "当年"}[str(rule.veto)]
        out.append(f"一票否决：{span}不能上红榜、不评星级")
    if rule.campaign_from is not None:
        dates = f"{rule.campaign_from.isoformat()} 至 {rule.campaign_to.isoformat()}"
        if rule.campaign_multiplier is None:
            out.append(f"仅在“{rule.campaign_name}”期间（{dates}）有效")
        else:
            out.append(f"“{rule.campaign_name}”期间（{dates}）按 {rule.campaign_multiplier} 倍计分")
    if rule.notice_days is not None:
        if rule.notice_days:
            out.append(f"公示 {rule.notice_days} 天")
        else:
            at_once = rule.review == Review.never and rule.sign > 0
            out.append("无需公示，登记即入账" if at_once else "审核通过后无需公示")
    return out


@dataclass(frozen=True)
class CatalogProblem:
    """One problem in a submitted catalog: the rule's 1-based position (0: the whole catalog)."""

    position: int
    rule_code: str | None
    field: str
    code: str
    message: str

    def __str__(self) -> str:
        where = f"第 {self.position} 项" if self.position else "积分标准"
        if self.position and self.rule_code:
            where += f"（{self.rule_code}）"
        label = FIELD_TEXT.get(self.field, self.field)
        return f"{where} {label}：{self.message}" if self.position else f"{where}：{self.message}"


def _item(position: int) -> str:
    return f"第 {position} 项"


def check_rules(
    rules: Sequence[Rule],
    *,
    categories: Sequence[Category] = DEFAULT_CATEGORIES,
    where: Callable[[int], str] = _item,
) -> list[CatalogProblem]:
    """Return every problem of a catalog: its categories', each rule's (whose category must be
    one of them), then repeated codes (empty when valid).

    `where(position)` names an earlier rule in a duplicate's message ('第 3 项', '第 5 行').
    Category problems have position 0 and field "categories"; the message names the category.
    """
    out = [
        CatalogProblem(0, None, "categories", p.code, f"第 {p.position} 个类别：{p.message}")
        if p.position
        else CatalogProblem(0, None, "categories", p.code, p.message)
        for p in check_categories(categories)
    ]
    if not rules:
        return out + [CatalogProblem(0, None, "rules", "catalog_empty", "积分标准至少要有一项")]
    names = category_names(categories)
    out += [
        CatalogProblem(n, rule.code, p.field, p.code, p.message)
        for n, rule in enumerate(rules, start=1)
        for p in validate_rule(rule, names)
    ]
    out += _check_conditions(rules, names)
    first: dict[str, int] = {}
    for n, rule in enumerate(rules, start=1):
        if not isinstance(rule.code, str) or not rule.code:
            continue
        if rule.code in first:
            message = f"编码“{rule.code}”与{where(first[rule.code])}重复"
            out.append(CatalogProblem(n, rule.code, "code", "code_duplicate", message))
        else:
            first[rule.code] = n
    return sorted(out, key=lambda p: p.position)


def _check_conditions(rules: Sequence[Rule], names: Sequence[str]) -> list[CatalogProblem]:
    """An automatic rule watches codes of this catalog, never one about a protected right."""
    by_code = {r.code: r for r in rules if isinstance(r.code, str)}
    out = []
    for n, rule in enumerate(rules, start=1):
        if rule.auto is None:
            continue
        for item in sorted(rule.auto_watch):
            watched = by_code.get(item)
            if item in names or not CODE_PATTERN.fullmatch(str(item)):
                continue
            if watched is None:
                message = f"条件中的项目编码“{item}”不在本积分标准中"
                out.append(
                    CatalogProblem(n, rule.code, "auto_watch", "auto_watch_missing", message)
                )
            elif word := protected_word(watched.name, watched.description):
                message = MESSAGES["protected_right"].format(word=word)
                out.append(CatalogProblem(n, rule.code, "auto_watch", "protected_right", message))
    return out


def rule_of(row: CatalogRule) -> Rule:
    """Return the engine's Rule for a stored catalog rule (a row or a plain row of its columns).

    Building a Rule (enums, sets, a frozen dataclass of 32 fields) costs more than reading the
    row, and every record builds one, so Rules are kept by the exact values they are built
    from: their `marshal` bytes, which write each value with its exact type (1, True and 1.0
    differ; a str subclass, a date are refused), so equal bytes are identical values and a row
    whose values changed, or another database's row of the same id, never gets another's Rule.
    A Rule is immutable (frozen; its caps are its own copy, read, never written): one may be
    shared."""
    values = _rule_values(row)
    try:
        key = marshal.dumps(values)
    except ValueError:  # a dated (campaign) rule's dates: built every time
        return rule_from_dict(dict(zip(RULE_FIELDS, values, strict=True)))
    rule = _RULES.get(key)
    if rule is None:
        rule = rule_from_dict(dict(zip(RULE_FIELDS, values, strict=True)))
        if len(_RULES) >= _RULES_KEPT:
            _RULES.clear()
        _RULES[key] = rule
    return rule


_rule_values = attrgetter(*RULE_FIELDS)
_RULES: dict[bytes, Rule] = {}
_RULES_KEPT = 4096  # the rules of every catalog version in use; then start again


def rules_of(version: CatalogVersion) -> list[Rule]:
    """Return a version's rules in their catalog order."""
    return [rule_of(row) for row in version.rules]


def categories_of(version: CatalogVersion | None) -> list[Category]:
    """Return a version's categories in their order (no version, or one stored before they
    were catalog data: the four defaults)."""
    return categories_from_json(version.categories if version is not None else None)


# ---------------------------------------------------------------------------------------------
# Drafts
# ---------------------------------------------------------------------------------------------


def _row_values(rule: Rule) -> dict[str, Any]:
    # The JSON form, but dates stay dates for the Date columns.
    values = rule_to_dict(rule)
    values["campaign_from"], values["campaign_to"] = rule.campaign_from, rule.campaign_to
    return values


def _rows(version: CatalogVersion, rules: Sequence[Rule]) -> list[CatalogRule]:
    return [CatalogRule(village_id=version.village_id, **_row_values(rule)) for rule in rules]


def _require_valid(rules: Sequence[Rule], categories: Sequence[Category]) -> None:
    problems = check_rules(rules, categories=categories)
    if problems:
        raise CatalogProblemsError(problems)


def _require_draft(version: CatalogVersion, doing: str) -> None:
    if version.status != CatalogStatus.DRAFT:
        status = STATUS_TEXT[CatalogStatus(version.status)]
        raise CatalogImmutableError(
            f"第 {version.number} 版积分标准{status}，不能{doing}；请另建草案",
            version=version.number,
        )


def create_draft(
    session: Session,
    *,
    scheme: Scheme,
    rules: Sequence[Rule] | None,
    title: str,
    actor_id: int | None,
    now: datetime,
    based_on: CatalogVersion | None = None,
    categories: Sequence[Category] | None = None,
) -> CatalogVersion:
    """Create the scheme's next numbered draft from `rules` (or a copy of `based_on`'s rules).

    `categories` None: those of `based_on`, else of the adopted version (a village's own
    categories carry over), else the defaults. Every rule is validated first;
    CatalogProblemsError lists all problems and nothing is written.
    """
    if based_on is not None and based_on.scheme_id != scheme.id:
        raise ValidationError("只能以同一积分方案的版本为底稿")
    if rules is None:
        if based_on is None:
            raise ValidationError("请提供积分标准条目或底稿版本")
        rules = rules_of(based_on)
    if categories is None:
        categories = categories_of(based_on or adopted_version(session, scheme=scheme))
    _require_valid(rules, categories)
    last = session.execute(
        select(func.max(CatalogVersion.number)).where(CatalogVersion.scheme_id == scheme.id)
    ).scalar_one()
    version = CatalogVersion(
        village_id=scheme.village_id,
        scheme_id=scheme.id,
        number=(last or 0) + 1,
        status=CatalogStatus.DRAFT,
        title=title.strip() or f"{scheme.name}积分标准",
        note="",
        created_at=now,
        created_by=actor_id,
        categories=[category_to_dict(c) for c in categories],
    )
    session.add(version)
    session.flush()
    version.rules = _rows(version, rules)
    session.flush()
    return version


def update_draft(
    session: Session,
    *,
    version: CatalogVersion,
    rules: Sequence[Rule],
    title: str | None = None,
    categories: Sequence[Category] | None = None,
) -> CatalogVersion:
    """Replace a draft's rules (and title, and categories unless None); refuse an adopted or
    retired version."""
    _require_draft(version, "修改")
    if categories is None:
        categories = categories_of(version)
    _require_valid(rules, categories)
    version.categories = [category_to_dict(c) for c in categories]
    # Old rows go first: the new ones may reuse their codes, which are UNIQUE per version.
    version.rules = []
    session.flush()
    version.rules = _rows(version, rules)
    if title is not None and title.strip():
        version.title = title.strip()
    session.flush()
    return version


def save_draft(
    session: Session,
    *,
    scheme: Scheme,
    rules: Sequence[Rule],
    title: str,
    actor_id: int | None,
    now: datetime,
    categories: Sequence[Category] | None = None,
) -> tuple[CatalogVersion, bool]:
    """Put `rules` into the scheme's open draft, or a new one; return (draft, created).

    One open draft per scheme keeps version numbers meaningful: re-importing a corrected sheet
    before the meeting replaces the draft instead of piling up versions nobody voted on.
    """
    draft = latest_draft(session, scheme=scheme)
    if draft is None:
        draft = create_draft(
            session,
            scheme=scheme,
            rules=rules,
            title=title,
            actor_id=actor_id,
            now=now,
            categories=categories,
        )
        return draft, True
    return update_draft(
        session, version=draft, rules=rules, title=title, categories=categories
    ), False


def discard_draft(session: Session, *, version: CatalogVersion) -> None:
    """Delete a draft and its rules; refuse an adopted or retired version."""
    _require_draft(version, "删除")
    session.delete(version)
    session.flush()


# ---------------------------------------------------------------------------------------------
# Reads
# ---------------------------------------------------------------------------------------------


def list_versions(session: Session, *, scheme: Scheme) -> list[CatalogVersion]:
    """Return every version of the scheme's catalog, oldest first."""
    return list(
        session.execute(
            select(CatalogVersion)
            .where(CatalogVersion.scheme_id == scheme.id)
            .order_by(CatalogVersion.number)
        )
        .scalars()
        .all()
    )


def find_version(session: Session, *, scheme: Scheme, number: int) -> CatalogVersion | None:
    """Return version `number` of the scheme's catalog, or None."""
    return session.execute(
        select(CatalogVersion).where(
            CatalogVersion.scheme_id == scheme.id, CatalogVersion.number == number
        )
    ).scalar_one_or_none()


def get_version(session: Session, *, scheme: Scheme, number: int) -> CatalogVersion:
    """Return version `number` of the scheme's catalog; raise NotFoundError."""
    version = find_version(session, scheme=scheme, number=number)
    if version is None:
        raise NotFoundError(f"{scheme.name}没有第 {number} 版积分标准", number=number)
    return version


def latest_draft(session: Session, *, scheme: Scheme) -> CatalogVersion | None:
    """Return the scheme's newest draft, or None."""
    return session.execute(
        select(CatalogVersion)
        .where(CatalogVersion.scheme_id == scheme.id, CatalogVersion.status == CatalogStatus.DRAFT)
        .order_by(CatalogVersion.number.desc())
        .limit(1)
    ).scalar_one_or_none()


def adopted_version(
    session: Session, *, scheme: Scheme, on: date | None = None
) -> CatalogVersion | None:
    """Return the adopted version, or with `on` the version in force on that local date.

    A version adopted today may take effect next month: until then its retired predecessor is
    the one in force, so `on` looks at effective dates, not at status.
    """
    return session.execute(_version_query(select(CatalogVersion), scheme, on)).scalar_one_or_none()


def find_rule(
    session: Session, *, scheme: Scheme, code: str, on: date, lock: tuple[int, int] | None = None
) -> tuple[CatalogVersion, CatalogRule]:
    """Return the version in force on local date `on` and its rule `code`; raise NotFoundError.
    `lock`: a subject's advisory lock key (`points.db.subject_lock_key`) to take in the same
    statement (PostgreSQL), or None."""
    # One statement (recording's hot path): the version in force, and its rule if it has one.
    # Built once per shape with bound parameters: building it cost as much as running it.
    found = session.execute(_rule_statement(lock is not None), _rule_params(scheme, code, on, lock))
    found = found.first()
    if found is None or found[1] is None:
        raise _rule_not_found(scheme, code, on, found and found[0].number)
    return found[0], found[1]


def find_rule_row(
    session: Session,
    *,
    scheme: Scheme,
    code: str,
    on: date,
    lock: tuple[int, int] | None = None,
    household_id: int | None = None,
):
    """`find_rule`'s rule as a plain row (every column of `catalog_rules` by name, read-only),
    not an ORM object: what recording reads, for a fraction of the loading work. Same
    statement, same refusals. With `household_id`, the row also carries that household of the
    scheme's village (`HOUSEHOLD_COLUMNS`, all None when there is no such household): one
    round trip for both."""
    statement = _rule_rows(lock is not None, household_id is not None)
    params = _rule_params(scheme, code, on, lock)
    if household_id is not None:
        params["household_id"] = household_id
    found = statement.first(session.connection(), params)
    if found is None or found.id is None:
        raise _rule_not_found(scheme, code, on, found and found.catalog_version_number)
    return found


# The household's columns in `find_rule_row(household_id=…)`'s row, by these labels.
HOUSEHOLD_COLUMNS = tuple(f"household_{c.key}" for c in Household.__table__.c)


def _rule_not_found(scheme: Scheme, code: str, on: date, number: int | None) -> NotFoundError:
    """No version in force on `on` (number None), or version `number` has no rule `code`."""
    if number is None:
        return NotFoundError(f"{on.isoformat()} 没有生效的{scheme.name}积分标准", code=code)
    return NotFoundError(f"第 {number} 版积分标准中没有编码为“{code}”的项目", code=code)


def _rule_params(scheme: Scheme, code: str, on: date, lock) -> dict:
    params = {"scheme_id": scheme.id, "village_id": scheme.village_id, "code": code, "on": on}
    if lock is not None:
        params["lock_k1"], params["lock_key"] = lock
    return params


@cache
def _rule_rows(locked: bool, household: bool) -> Direct:
    # Recording's statement, run on the driver's cursor (decision 0032).
    return Direct(_rule_statement(locked, rows=True, household=household))


@cache
def _rule_statement(locked: bool, rows: bool = False, household: bool = False):
    if rows:
        versions = CatalogVersion.__table__.c
        columns = (versions.number.label("catalog_version_number"), *CatalogRule.__table__.c)
    else:
        columns = (CatalogVersion, CatalogRule)
    q = (
        select(*columns)
        .select_from(CatalogVersion)
        .outerjoin(
            CatalogRule,
            (CatalogRule.version_id == CatalogVersion.id)
            & (CatalogRule.village_id == CatalogVersion.village_id)
            & (CatalogRule.code == bindparam("code")),
        )
    )
    if household:
        # At most one row: the household by id, in the version's (the scheme's) village.
        households = Household.__table__
        q = q.outerjoin(
            households,
            (households.c.id == bindparam("household_id", type_=Integer))
            & (households.c.village_id == CatalogVersion.village_id),
        ).add_columns(
            *(c.label(label) for c, label in zip(households.c, HOUSEHOLD_COLUMNS, strict=True))
        )
    if locked:
        q = q.add_columns(
            func.pg_advisory_xact_lock(
                bindparam("lock_k1", type_=Integer), bindparam("lock_key", type_=Integer)
            ).label("subject_lock")
        )
    return _in_force(
        q,
        bindparam("scheme_id", type_=Integer),
        bindparam("village_id", type_=Integer),
        bindparam("on", type_=Date),
    )


def _version_query(q, scheme: Scheme, on: date | None):
    return _in_force(q, scheme.id, scheme.village_id, on)


def _in_force(q, scheme_id, village_id, on):
    # The village too: on Citus that makes it a query of one worker (decision 0018).
    q = q.where(CatalogVersion.scheme_id == scheme_id, CatalogVersion.village_id == village_id)
    if on is None:
        q = q.where(CatalogVersion.status == CatalogStatus.ADOPTED)
    else:
        q = q.where(
            CatalogVersion.status != CatalogStatus.DRAFT,
            CatalogVersion.effective_from <= on,
            or_(CatalogVersion.effective_to.is_(None), CatalogVersion.effective_to > on),
        )
    return q.order_by(CatalogVersion.effective_from.desc()).limit(1)


# ---------------------------------------------------------------------------------------------
# Adoption and retirement
# ---------------------------------------------------------------------------------------------


def adopt(
    session: Session,
    *,
    version: CatalogVersion,
    body: str,
    adopted_on: date,
    note: str = "",
    actor_id: int | None,
    now: datetime,
    effective_from: date | None = None,
) -> CatalogVersion:
    """Adopt a draft as voted by `body` on `adopted_on`; retire the version it replaces.

    It takes effect on `effective_from` (default: the adoption date), which must be later than
    the start of the version it replaces; that version stays in force until the day before.
    """
    _require_draft(version, "再次通过")
    errors: dict[str, list[str]] = {}
    if not body or not body.strip():
        errors["body"] = ["请填写通过本标准的会议或机构，如村民代表大会"]
    if adopted_on > local_date(now):
        errors["adopted_on"] = [f"通过日期 {adopted_on.isoformat()} 晚于今天"]
    effective_from = effective_from or adopted_on
    scheme = session.get(Scheme, version.scheme_id)
    current = adopted_version(session, scheme=scheme)
    # Windows never overlap: after the current version's start, and after any retired end.
    ended = session.execute(
        select(func.max(CatalogVersion.effective_to)).where(
            CatalogVersion.scheme_id == version.scheme_id,
            CatalogVersion.status == CatalogStatus.RETIRED,
        )
    ).scalar_one()
    if current is not None and effective_from <= current.effective_from:
        errors["effective_from"] = [
            f"生效日期须晚于现行第 {current.number} 版的生效日期 "
            f"{current.effective_from.isoformat()}"
        ]
    elif ended is not None and effective_from < ended:
        errors["effective_from"] = [f"生效日期不能早于上一版停用的日期 {ended.isoformat()}"]
    if errors:
        raise ValidationError("无法通过积分标准", errors=errors)
    if current is not None:
        current.status = CatalogStatus.RETIRED
        current.effective_to = effective_from
        # Flushed first: the database allows one adopted version per scheme at a time.
        session.flush()
    version.status = CatalogStatus.ADOPTED
    version.adopted_on = adopted_on
    version.adopted_by_body = body.strip()
    version.note = note or ""
    version.effective_from = effective_from
    version.adopted_by = actor_id
    session.flush()
    return version


def retire(session: Session, *, version: CatalogVersion, on: date) -> CatalogVersion:
    """Stop the adopted version from local date `on`; the scheme then has no catalog in force."""
    if version.status != CatalogStatus.ADOPTED:
        raise CatalogStateError(f"第 {version.number} 版积分标准不是现行版本，不能停用")
    if on < version.effective_from:
        raise ValidationError(
            f"停用日期不能早于生效日期 {version.effective_from.isoformat()}",
            errors={"on": ["停用日期早于生效日期"]},
        )
    version.status = CatalogStatus.RETIRED
    version.effective_to = on
    session.flush()
    return version


# ---------------------------------------------------------------------------------------------
# Diffs
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldChange:
    """One changed column of a rule, as flattened values (see COLUMNS)."""

    field: str
    before: Any
    after: Any

    def __str__(self) -> str:
        before = display_value(self.field, self.before) or "（空）"
        after = display_value(self.field, self.after) or "（空）"
        return f"{FIELD_TEXT[self.field]} {before} → {after}"


@dataclass(frozen=True)
class RuleChange:
    """A rule present in both versions whose values differ."""

    code: str
    name: str
    changes: tuple[FieldChange, ...]


@dataclass(frozen=True)
class CatalogDiff:
    """What a new version adds, removes and changes relative to an old one."""

    added: tuple[Rule, ...] = ()
    removed: tuple[Rule, ...] = ()
    changed: tuple[RuleChange, ...] = ()
    # Category changes, one readable line each ('+ 新增类别 乡风文明').
    category_lines: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed or self.category_lines)

    def summary(self) -> str:
        """Return e.g. '新增 1 项，删除 0 项，修改 2 项' (or '没有变化')."""
        if self.empty:
            return "没有变化"
        text = (
            f"新增 {len(self.added)} 项，删除 {len(self.removed)} 项，修改 {len(self.changed)} 项"
        )
        if self.category_lines:
            text += f"，类别变动 {len(self.category_lines)} 处"
        return text

    def lines(self) -> list[str]:
        """Return one readable Chinese line per category change and per changed rule."""
        out = list(self.category_lines)
        out += [f"+ 新增 {r.code} {r.name}（{describe_rule(r)}）" for r in self.added]
        out += [f"- 删除 {r.code} {r.name}" for r in self.removed]
        out += [
            f"* 修改 {c.code} {c.name}：" + "；".join(str(f) for f in c.changes)
            for c in self.changed
        ]
        return out


def diff_rules(old: Sequence[Rule], new: Sequence[Rule]) -> CatalogDiff:
    """Compare two catalogs by rule code, field by field (order within a catalog is ignored)."""
    before = {r.code: r for r in old}
    after = {r.code: r for r in new}
    changed = []
    for rule in new:
        if rule.code not in before:
            continue
        a, b = flatten_rule(before[rule.code]), flatten_rule(rule)
        changes = tuple(FieldChange(k, a[k], b[k]) for k, _ in COLUMNS if a[k] != b[k])
        if changes:
            changed.append(RuleChange(rule.code, rule.name, changes))
    return CatalogDiff(
        added=tuple(r for r in new if r.code not in before),
        removed=tuple(r for r in old if r.code not in after),
        changed=tuple(changed),
    )


def diff_categories(old: Sequence[Category], new: Sequence[Category]) -> tuple[str, ...]:
    """Return one line per category added, removed or changed (name order is not a change)."""
    before = {c.name: c for c in old}
    after = {c.name: c for c in new}
    out = [f"+ 新增类别 {c.name}" + (f"（{c.description}）" if c.description else "")
           for c in new if c.name not in before]  # fmt: skip
    out += [f"- 删除类别 {c.name}" for c in old if c.name not in after]
    for c in new:
        was = before.get(c.name)
        if was is None:
            continue
        if was.black != c.black:
            out.append(f"* 类别 {c.name}：扣分上黑榜 {BOOL_TEXT[was.black]} → {BOOL_TEXT[c.black]}")
        if was.description != c.description:
            out.append(
                f"* 类别 {c.name}：说明 {was.description or '（空）'} → {c.description or '（空）'}"
            )
    return tuple(out)


def diff_versions(old: CatalogVersion | None, new: CatalogVersion) -> CatalogDiff:
    """Compare a version with an older one (None: everything is new), categories included."""
    rules = diff_rules(rules_of(old) if old is not None else [], rules_of(new))
    lines = diff_categories(categories_of(old), categories_of(new)) if old is not None else ()
    return CatalogDiff(rules.added, rules.removed, rules.changed, lines)
