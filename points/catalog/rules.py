"""The rules engine: what one catalog rule allows for one recorded act, as pure functions.

No session, no I/O, standard library only. Callers gather the facts (who records, how much this
subject already got in each cap window) and persist what `decide` returns.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import date
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from points.catalog.categories import DEFAULT_NAMES


class Unit(StrEnum):
    """What one unit of quantity is: an occurrence, an hour or a day."""

    time = "time"
    hour = "hour"
    day = "day"


class Window(StrEnum):
    """A cap window per subject, declared smallest first."""

    day = "day"
    month = "month"
    period = "period"
    year = "year"
    ever = "ever"  # a lifetime limit (累计上限), beyond any calendar window


class AutoPeriod(StrEnum):
    """How often the scheduler evaluates an automatic (state-based) rule: after each such period."""

    month = "month"
    quarter = "quarter"
    year = "year"


class Review(StrEnum):
    """Whether a recorded act goes to the 评议小组 before 公示."""

    always = "always"
    never = "never"
    threshold = "threshold"


# The default categories; a catalog's own list (points.catalog.categories) is what rules check.
CATEGORIES = DEFAULT_NAMES
MORAL_SUBCATEGORIES = ("积孝", "积善", "积信", "积勤", "积俭", "积美")
ROLES = ("admin", "reviewer", "recorder", "clerk", "resident")
SUBJECT_KINDS = ("household", "resident", "party_member")
# Short codes fit a printed 台账 column and can be read out at a meeting: XIAO-01, FZ51, A12.
CODE_PATTERN = re.compile(r"[A-Z]{1,4}-?[0-9]{1,4}")
MAX_QUANTITY = 1000

UNIT_TEXT = {Unit.time: "次", Unit.hour: "小时", Unit.day: "天"}
WINDOW_TEXT = {
    Window.day: ("每天", "今天"),
    Window.month: ("每月", "本月"),
    Window.period: ("每个积分周期", "本周期"),
    Window.year: ("每年", "今年"),
    Window.ever: ("累计", "累计"),
}
REPEAT_TEXT = {Window.month: "一个月", Window.period: "一个积分周期", Window.year: "一年"}
AUTO_TEXT = {AutoPeriod.month: "每月", AutoPeriod.quarter: "每季度", AutoPeriod.year: "每年"}
AUTO_MONTHS = {AutoPeriod.month: 1, AutoPeriod.quarter: 3, AutoPeriod.year: 12}
# Windows a veto (一票否决) or a repeat count may span: calendar windows, never "ever".
VETO_WINDOWS = (Window.month, Window.period, Window.year)
MAX_NOTICE_DAYS = 30
MAX_AUTO_MONTHS = 36
# Rights no rule may punish or make a condition of (依法信访、举报、监督): DOMAIN.md forbids it.
PROTECTED_WORDS = ("上访", "信访", "举报", "监督", "维权", "申诉", "投诉", "反映问题")
ROLE_TEXT = {
    "admin": "村两委",
    "reviewer": "评议小组",
    "recorder": "网格员",
    "clerk": "积分超市",
    "resident": "村民本人",
}
SUBJECT_TEXT = {"household": "农户", "resident": "村民个人", "party_member": "党员"}

# Every message a villager or cadre may read, in one place so a native reader can review them all.
MESSAGES = {
    "code_invalid": "编号“{code}”格式不对，应为 1–4 个大写字母加 1–4 位数字，如 XIAO-01",
    "name_required": "请填写项目名称",
    "category_unknown": "类别“{category}”不存在，应为{known}",
    "sign_invalid": "加减方向只能是 +1（加分）或 -1（扣分）",
    "points_fixed_and_range": "固定分值和分值区间只能二选一",
    "points_missing": "请填写固定分值或分值区间",
    "range_incomplete": "分值区间须同时填写最低分和最高分",
    "points_not_positive": "分值须为正整数（扣分项也填正数），现为 {value}",
    "range_inverted": "最低分 {lo} 不能高于最高分 {hi}",
    "unit_unknown": "计量单位“{unit}”不存在，应为次、小时或天",
    "review_unknown": "审核方式“{review}”不存在",
    "threshold_missing": "按分值审核时须填写审核分值线",
    "threshold_unexpected": "只有按分值审核时才填写审核分值线",
    "threshold_not_positive": "审核分值线须为正整数",
    "roles_empty": "请至少指定一个可以登记本项的角色",
    "role_unknown": "角色“{role}”不存在",
    "subjects_empty": "请至少指定一种适用对象",
    "subject_unknown": "适用对象“{subject}”不存在",
    "cap_window_unknown": "上限周期“{window}”不存在，应为日、月、周期或年",
    "cap_not_positive": "{every}上限须为正整数",
    "cap_below_points": "{every}上限 {cap} 分低于单次分值 {points} 分",
    "deduction_honourable": "扣分项不能上红榜",
    "resident_cannot_deduct": "扣分项不能由村民自行申报",
    "subject_not_applicable": "本项只适用于{allowed}，不适用于{who}",
    "role_not_allowed": "本项只能由{allowed}登记，{who}不能登记",
    "self_declare_not_allowed": "本项不接受村民自行申报，请联系网格员登记",
    "invalid_quantity": "数量须为 1 到 {max} 之间的整数（单位：{unit}），现为 {quantity}",
    "points_fixed": "本项固定每{unit} {points} 分，不能改为 {proposed} 分",
    "points_required": "本项每{unit} {lo}–{hi} 分，请填写分值",
    "points_out_of_range": "本项每{unit} {lo}–{hi} 分，{proposed} 分超出范围",
    "deduction_reason_required": "扣分须写明理由",
    "range_reason_required": "本项分值由登记人酌定，须写明理由",
    "evidence_required": "本项须附证明材料（照片、签到表等）",
    "award_cut": "本项{every}最多 {cap} 分，{this}已得 {used} 分，本次按 {allowed} 分计",
    "award_cap_reached": "本项{every}最多 {cap} 分，{this}已得 {used} 分，已达上限",
    "deduction_cut": "本项{every}最多扣 {cap} 分，{this}已扣 {used} 分，本次扣 {allowed} 分",
    "deduction_cap_reached": "本项{every}最多扣 {cap} 分，{this}已扣 {used} 分，已达上限",
    "protected_right": "不得对依法信访、举报、监督等行使权利的行为扣分或设置条件（含“{word}”）",
    "notice_days_invalid": "公示天数须为 0 到 {max} 之间的整数",
    "once_done": "本项每户（人）限一次，已经登记过",
    "repeat_on_award": "累犯加重只适用于扣分项",
    "repeat_window_unknown": "累犯周期只能是月、周期或年",
    "repeat_window_missing": "填写了第二次倍数或第三次起扣分时，须填写累犯周期",
    "repeat_rule_missing": "填写了累犯周期时，须填写第二次倍数或第三次起扣分",
    "repeat_multiplier_invalid": "第二次倍数须为 2 以上的整数",
    "repeat_points_invalid": "第三次起扣分须为正整数",
    "repeat_second": "{every}内第 {n} 次，按 {m} 倍扣分",
    "repeat_third": "{every}内第 {n} 次，按加重标准扣 {points} 分",
    "veto_on_award": "一票否决只适用于扣分项",
    "veto_window_unknown": "一票否决范围只能是月、周期或年",
    "auto_period_unknown": "自动评定只能按月、季度或年",
    "auto_deduction": "自动评定只用于加分项",
    "auto_needs_fixed_points": "自动评定项须填写固定分值",
    "auto_months_invalid": "连续月数须为 {least} 到 {max} 之间的整数",
    "auto_count_invalid": "满足次数须为正整数",
    "auto_fields_unexpected": "只有自动评定项才填写连续月数、满足次数和条件",
    "auto_watch_unknown": "条件“{item}”既不是类别也不是项目编码",
    "auto_cannot_be_recorded": "本项由系统按条件自动评定，不能手工登记",
    "campaign_incomplete": "活动须同时填写名称、开始日期和结束日期",
    "campaign_inverted": "活动开始日期 {start} 不能晚于结束日期 {end}",
    "campaign_multiplier_invalid": "活动倍数须为 2 以上的整数",
    "campaign_inactive": "本项只在“{name}”期间（{start} 至 {end}）有效",
    "campaign_bonus": "“{name}”期间按 {m} 倍计分",
}


@dataclass(frozen=True, kw_only=True)
class Rule:
    """One item of an adopted catalog; magnitudes are positive, `sign` says award or deduction."""

    code: str
    name: str
    category: str
    subcategory: str | None = None
    description: str = ""
    sign: int = 1
    points: int | None = None
    min_points: int | None = None
    max_points: int | None = None
    unit: Unit = Unit.time
    # Left out of the hash (a dict is unhashable) but compared; the attribute cannot be rebound.
    caps: Mapping[Window, int] = field(default_factory=dict, hash=False)
    evidence_required: bool = False
    review: Review = Review.never
    review_threshold: int | None = None
    recorder_roles: frozenset[str] = frozenset({"admin", "recorder"})
    subjects: frozenset[str] = frozenset({"household"})
    honourable: bool = False
    # Rules engine 2 (docs/decisions/0012): what villages write beyond single acts.
    once: bool = False  # 每户限一次: one claim per subject, ever (rejected ones do not count)
    notice_days: int | None = None  # the rule's own 公示 days; None: the scheme's
    repeat_window: Window | None = None  # deductions: repeats counted within this window
    repeat_multiplier: int | None = None  # the second time within the window, × this
    repeat_points: int | None = None  # the third time on, this many points instead
    veto: Window | None = None  # 一票否决: once posted, no 红榜 or stars in this window
    auto: AutoPeriod | None = None  # evaluated by the scheduler after each period, not recorded
    auto_months: int | None = None  # the condition looks back N months (连续 N 个月)
    auto_min_count: int | None = None  # None: no watched deduction; K: at least K watched awards
    auto_watch: frozenset[str] = frozenset()  # categories and rule codes counted; empty: all
    campaign_name: str | None = None  # e.g. 宣传月: the rule (or its bonus) is dated
    campaign_from: date | None = None  # first day, inclusive
    campaign_to: date | None = None  # last day, inclusive
    campaign_multiplier: int | None = None  # None: the rule exists only between the dates

    def __post_init__(self) -> None:
        # Accept lists and plain dicts from callers, but never keep a reference the caller owns.
        object.__setattr__(self, "recorder_roles", frozenset(self.recorder_roles))
        object.__setattr__(self, "subjects", frozenset(self.subjects))
        # Read-only: `rule_of` shares one Rule between requests and threads.
        object.__setattr__(self, "caps", MappingProxyType(dict(self.caps)))
        object.__setattr__(self, "auto_watch", frozenset(self.auto_watch))


@dataclass(frozen=True)
class RuleProblem:
    """One thing wrong with a rule: the field, a stable code and a Chinese message."""

    field: str
    code: str
    message: str


@dataclass(frozen=True, kw_only=True)
class Facts:
    """One act to score; `used` is absolute points already given or pending, per cap window."""

    subject_kind: str
    recorder_role: str
    quantity: int = 1
    proposed_points: int | None = None
    has_evidence: bool = False
    reason: str | None = None
    used: Mapping[Window, int] = field(default_factory=dict, hash=False)
    deduction_needs_review: bool = True
    occurred_on: date | None = None  # needed for dated (campaign) rules
    ever: int = 0  # claims of this rule the subject already has, ever (for `once`)
    repeats: int = 0  # deductions of this rule the subject already has in the repeat window


@dataclass(frozen=True)
class Cut:
    """A cap window that lowered the points; cap, requested and allowed are magnitudes."""

    window: Window
    cap: int
    requested: int
    allowed: int
    message: str


@dataclass(frozen=True)
class Decision:
    """The outcome: signed points to record, or a refusal with a stable code and a message."""

    ok: bool
    points: int
    requested: int
    cuts: tuple[Cut, ...] = ()
    needs_review: bool = False
    code: str | None = None
    message: str | None = None
    note: str | None = None  # why the points differ from the plain value (repeat, campaign)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _problem(name: str, code: str, /, **values: Any) -> RuleProblem:
    return RuleProblem(name, code, MESSAGES[code].format(**values))


def validate_rule(rule: Rule, categories: Sequence[str] = CATEGORIES) -> list[RuleProblem]:
    """Return every problem with a rule, in field order (empty when it may be adopted).

    `categories`: the names of its catalog's categories (the defaults when not given).
    """
    out: list[RuleProblem] = []
    if not isinstance(rule.code, str) or not CODE_PATTERN.fullmatch(rule.code):
        out.append(_problem("code", "code_invalid", code=rule.code))
    if not isinstance(rule.name, str) or not rule.name.strip():
        out.append(_problem("name", "name_required"))
    if rule.category not in categories:
        names = [n for n in dict.fromkeys(categories) if n]
        known = "、".join(names[:-1]) + "或" + names[-1] if len(names) > 1 else "".join(names)
        out.append(_problem("category", "category_unknown", category=rule.category, known=known))
    if not _is_int(rule.sign) or rule.sign not in (1, -1):
        out.append(_problem("sign", "sign_invalid"))

    fixed, lo, hi = rule.points, rule.min_points, rule.max_points
    if fixed is not None and (lo is not None or hi is not None):
        out.append(_problem("points", "points_fixed_and_range"))
    elif fixed is None and lo is None and hi is None:
        out.append(_problem("points", "points_missing"))
    elif fixed is None and (lo is None or hi is None):
        out.append(_problem("min_points" if lo is None else "max_points", "range_incomplete"))
    for name, value in (("points", fixed), ("min_points", lo), ("max_points", hi)):
        if value is not None and (not _is_int(value) or value < 1):
            out.append(_problem(name, "points_not_positive", value=value))
    if _is_int(lo) and _is_int(hi) and lo > hi:
        out.append(_problem("min_points", "range_inverted", lo=lo, hi=hi))

    if rule.unit not in tuple(Unit):
        out.append(_problem("unit", "unit_unknown", unit=rule.unit))
    if rule.review not in tuple(Review):
        out.append(_problem("review", "review_unknown", review=rule.review))
    threshold = rule.review_threshold
    if rule.review == Review.threshold and threshold is None:
        out.append(_problem("review_threshold", "threshold_missing"))
    elif rule.review != Review.threshold and threshold is not None:
        out.append(_problem("review_threshold", "threshold_unexpected"))
    elif threshold is not None and (not _is_int(threshold) or threshold < 1):
        out.append(_problem("review_threshold", "threshold_not_positive"))

    if not rule.recorder_roles:
        out.append(_problem("recorder_roles", "roles_empty"))
    for role in sorted(set(rule.recorder_roles) - set(ROLES)):
        out.append(_problem("recorder_roles", "role_unknown", role=role))
    if not rule.subjects:
        out.append(_problem("subjects", "subjects_empty"))
    for subject in sorted(set(rule.subjects) - set(SUBJECT_KINDS)):
        out.append(_problem("subjects", "subject_unknown", subject=subject))

    # A cap below one unit's points would cut every single record: almost surely a typo.
    per_unit_max = fixed if fixed is not None else hi
    for window, cap in rule.caps.items():
        if window not in tuple(Window):
            out.append(_problem("caps", "cap_window_unknown", window=window))
            continue
        every = WINDOW_TEXT[Window(window)][0]
        if not _is_int(cap) or cap < 1:
            out.append(_problem("caps", "cap_not_positive", every=every))
        elif _is_int(per_unit_max) and cap < per_unit_max:
            out.append(
                _problem("caps", "cap_below_points", every=every, cap=cap, points=per_unit_max)
            )

    out += _validate_engine2(rule, categories)

    # The 红榜 honours good deeds; a deduction belongs on the reviewed, appealable 黑榜 only.
    if rule.sign == -1 and rule.honourable:
        out.append(_problem("honourable", "deduction_honourable"))
    # Residents declare their own good acts; nobody self-declares (or files) a deduction.
    if rule.sign == -1 and "resident" in rule.recorder_roles:
        out.append(_problem("recorder_roles", "resident_cannot_deduct"))
    return out


def protected_word(*texts: str | None) -> str | None:
    """Return the first word naming a protected right (依法信访、举报、监督) in the texts."""
    for text in texts:
        for word in PROTECTED_WORDS:
            if text and word in text:
                return word
    return None


def _validate_engine2(rule: Rule, categories: Sequence[str]) -> list[RuleProblem]:
    """Problems with the fields of rules engine 2: notice, repeats, veto, automatic, campaign."""
    out: list[RuleProblem] = []
    days = rule.notice_days
    if days is not None and (not _is_int(days) or not 0 <= days <= MAX_NOTICE_DAYS):
        out.append(_problem("notice_days", "notice_days_invalid", max=MAX_NOTICE_DAYS))

    # Never a deduction for, or a condition on, exercising a right (DOMAIN.md).
    word = protected_word(rule.name, rule.description)
    if word and (rule.sign == -1 or rule.auto is not None):
        out.append(_problem("name", "protected_right", word=word))

    repeat = rule.repeat_multiplier is not None or rule.repeat_points is not None
    if (repeat or rule.repeat_window is not None) and rule.sign != -1:
        out.append(_problem("repeat_window", "repeat_on_award"))
    elif rule.repeat_window is not None and rule.repeat_window not in VETO_WINDOWS:
        out.append(_problem("repeat_window", "repeat_window_unknown"))
    elif repeat and rule.repeat_window is None:
        out.append(_problem("repeat_window", "repeat_window_missing"))
    elif rule.repeat_window is not None and not repeat:
        out.append(_problem("repeat_multiplier", "repeat_rule_missing"))
    m = rule.repeat_multiplier
    if m is not None and (not _is_int(m) or m < 2):
        out.append(_problem("repeat_multiplier", "repeat_multiplier_invalid"))
    rp = rule.repeat_points
    if rp is not None and (not _is_int(rp) or rp < 1):
        out.append(_problem("repeat_points", "repeat_points_invalid"))

    if rule.veto is not None and rule.sign != -1:
        out.append(_problem("veto", "veto_on_award"))
    elif rule.veto is not None and rule.veto not in VETO_WINDOWS:
        out.append(_problem("veto", "veto_window_unknown"))

    if rule.auto is None:
        if rule.auto_months is not None or rule.auto_min_count is not None or rule.auto_watch:
            out.append(_problem("auto", "auto_fields_unexpected"))
    elif rule.auto not in tuple(AutoPeriod):
        out.append(_problem("auto", "auto_period_unknown"))
    else:
        if rule.sign != 1:
            out.append(_problem("auto", "auto_deduction"))
        if rule.points is None:
            out.append(_problem("points", "auto_needs_fixed_points"))
        least, months = AUTO_MONTHS[AutoPeriod(rule.auto)], rule.auto_months
        if months is not None and (not _is_int(months) or not least <= months <= MAX_AUTO_MONTHS):
            out.append(_problem("auto_months", "auto_months_invalid", least=least, max=36))
        k = rule.auto_min_count
        if k is not None and (not _is_int(k) or k < 1):
            out.append(_problem("auto_min_count", "auto_count_invalid"))
        for item in sorted(rule.auto_watch):
            if item not in categories and not CODE_PATTERN.fullmatch(str(item)):
                out.append(_problem("auto_watch", "auto_watch_unknown", item=item))

    dated = (rule.campaign_name, rule.campaign_from, rule.campaign_to)
    if any(v is not None for v in dated) or rule.campaign_multiplier is not None:
        if any(v is None or v == "" for v in dated):
            out.append(_problem("campaign_name", "campaign_incomplete"))
        elif rule.campaign_from > rule.campaign_to:
            start, end = rule.campaign_from, rule.campaign_to
            out.append(_problem("campaign_from", "campaign_inverted", start=start, end=end))
        cm = rule.campaign_multiplier
        if cm is not None and (not _is_int(cm) or cm < 2):
            out.append(_problem("campaign_multiplier", "campaign_multiplier_invalid"))
    return out


def _refuse(code: str, message_key: str | None = None, **values: Any) -> Decision:
    message = MESSAGES[message_key or code].format(**values)
    return Decision(ok=False, points=0, requested=0, code=code, message=message)


def _check(rule: Rule, facts: Facts) -> Decision | int:
    """Return a refusal, or the per-unit magnitude when every check before the caps passes."""
    if facts.subject_kind not in rule.subjects:
        allowed = "、".join(SUBJECT_TEXT.get(s, s) for s in _in_order(rule.subjects, SUBJECT_KINDS))
        who = SUBJECT_TEXT.get(facts.subject_kind, facts.subject_kind)
        return _refuse("subject_not_applicable", allowed=allowed, who=who)
    if facts.recorder_role not in rule.recorder_roles:
        if facts.recorder_role == "resident":
            return _refuse("role_not_allowed", "self_declare_not_allowed")
        allowed = "、".join(ROLE_TEXT.get(r, r) for r in _in_order(rule.recorder_roles, ROLES))
        who = ROLE_TEXT.get(facts.recorder_role, facts.recorder_role)
        return _refuse("role_not_allowed", allowed=allowed, who=who)
    unit, quantity, proposed = UNIT_TEXT[rule.unit], facts.quantity, facts.proposed_points
    # The upper bound catches a slipped digit (1000 hours in one record is already implausible).
    if not _is_int(quantity) or not 1 <= quantity <= MAX_QUANTITY:
        return _refuse("invalid_quantity", max=MAX_QUANTITY, unit=unit, quantity=quantity)
    if rule.points is not None:
        # Forms may echo the fixed value back; only a different number is an attempt to override.
        if proposed is not None and proposed != rule.points:
            return _refuse("points_fixed", unit=unit, points=rule.points, proposed=proposed)
        per_unit = rule.points
    else:
        lo, hi = rule.min_points, rule.max_points
        if proposed is None:
            return _refuse("points_required", unit=unit, lo=lo, hi=hi)
        if not _is_int(proposed) or not lo <= proposed <= hi:
            return _refuse("points_out_of_range", unit=unit, lo=lo, hi=hi, proposed=proposed)
        per_unit = proposed
    # A judgement call (a range) or a mark against a household must be explained on the record.
    blank = facts.reason is None or not facts.reason.strip()
    if blank and rule.sign < 0:
        return _refuse("reason_required", "deduction_reason_required")
    if blank and rule.points is None:
        return _refuse("reason_required", "range_reason_required")
    if rule.evidence_required and not facts.has_evidence:
        return _refuse("evidence_required")
    if rule.auto is not None:
        return _refuse("auto_rule", "auto_cannot_be_recorded")
    if rule.once and facts.ever > 0:
        return _refuse("once_done")
    dated_only = rule.campaign_from is not None and rule.campaign_multiplier is None
    if dated_only and not in_campaign(rule, facts.occurred_on):
        name, start, end = rule.campaign_name, rule.campaign_from, rule.campaign_to
        return _refuse("campaign_inactive", name=name, start=start, end=end)
    return per_unit


def in_campaign(rule: Rule, on: date | None) -> bool:
    """Return whether a dated rule's campaign covers the local date `on`."""
    if rule.campaign_from is None or rule.campaign_to is None or on is None:
        return False
    return rule.campaign_from <= on <= rule.campaign_to


def _adjusted(rule: Rule, facts: Facts, wanted: int) -> tuple[int, str | None]:
    """Apply a campaign bonus and repeat escalation to a magnitude; say why it changed."""
    if rule.campaign_multiplier is not None and in_campaign(rule, facts.occurred_on):
        m = rule.campaign_multiplier
        return wanted * m, MESSAGES["campaign_bonus"].format(name=rule.campaign_name, m=m)
    if rule.sign < 0 and rule.repeat_window is not None and facts.repeats > 0:
        n = facts.repeats + 1
        every = REPEAT_TEXT.get(Window(rule.repeat_window), "")
        if n >= 3 and rule.repeat_points is not None:
            text = MESSAGES["repeat_third"].format(every=every, n=n, points=rule.repeat_points)
            return max(wanted, rule.repeat_points), text
        if rule.repeat_multiplier is not None:
            m = rule.repeat_multiplier
            return wanted * m, MESSAGES["repeat_second"].format(every=every, n=n, m=m)
    return wanted, None


def decide(rule: Rule, facts: Facts) -> Decision:
    """Decide the signed points for one act under one valid rule, applying every cap window."""
    checked = _check(rule, facts)
    if isinstance(checked, Decision):
        return checked
    wanted, note = _adjusted(rule, facts, checked * facts.quantity)
    kind = "deduction" if rule.sign < 0 else "award"
    cuts: list[Cut] = []
    # Windows are walked smallest first so cuts read day → year; the least remaining amount wins.
    for window in Window:
        cap = rule.caps.get(window)
        if cap is None:
            continue
        # Reversals can leave a net below zero; that must never enlarge what the cap allows.
        used = max(0, facts.used.get(window, 0))
        allowed = min(wanted, max(0, cap - used))
        if allowed < wanted:
            key = f"{kind}_cut" if allowed else f"{kind}_cap_reached"
            every, this = WINDOW_TEXT[window]
            text = MESSAGES[key].format(every=every, this=this, cap=cap, used=used, allowed=allowed)
            cuts.append(Cut(window, cap, wanted, allowed, text))
    granted = min((c.allowed for c in cuts), default=wanted)
    tightest = min(cuts, key=lambda c: c.allowed) if cuts else None
    if granted == 0:
        return Decision(
            False, 0, rule.sign * wanted, tuple(cuts), False, "cap_reached", tightest.message, note
        )

    if rule.review == Review.always:
        needs_review = True
    elif rule.review == Review.threshold:
        needs_review = granted >= (rule.review_threshold or 0)
    else:
        needs_review = False
    # Every black mark is reviewed (and appealable) unless the village explicitly opts out.
    if rule.sign < 0 and facts.deduction_needs_review:
        needs_review = True
    return Decision(
        ok=True,
        points=rule.sign * granted,
        requested=rule.sign * wanted,
        cuts=tuple(cuts),
        needs_review=needs_review,
        message=tightest.message if tightest else None,
        note=note,
    )


_FIELDS = tuple(f.name for f in fields(Rule))
_WINDOW_FIELDS = ("repeat_window", "veto")
_DATE_FIELDS = ("campaign_from", "campaign_to")


def rule_from_dict(data: Mapping[str, Any]) -> Rule:
    """Build a Rule from its JSON form; raise ValueError on an unknown key or enum value."""
    # Unknown keys are refused so that a typo such as "cap" cannot silently uncap an item.
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise ValueError(f"规则 {data.get('code')} 含未知字段：{'、'.join(unknown)}")
    values = dict(data)
    try:
        if "unit" in values:
            values["unit"] = Unit(values["unit"])
        if "review" in values:
            values["review"] = Review(values["review"])
        values["caps"] = {Window(k): v for k, v in (values.get("caps") or {}).items()}
        for name in _WINDOW_FIELDS:
            if values.get(name) is not None:
                values[name] = Window(values[name])
        if values.get("auto") is not None:
            values["auto"] = AutoPeriod(values["auto"])
        for name in _DATE_FIELDS:
            if isinstance(values.get(name), str):
                values[name] = date.fromisoformat(values[name])
        # Rows stored before these fields existed hold NULL: the defaults apply.
        for name in ("once", "auto_watch"):
            if name in values and values[name] is None:
                del values[name]
    except ValueError as exc:
        raise ValueError(f"规则 {data.get('code')}：{exc}") from exc
    return Rule(**values)


def _in_order(items: frozenset[str], known: tuple[str, ...]) -> list[str]:
    return sorted(items, key=lambda i: (known.index(i) if i in known else len(known), i))


def rule_to_dict(rule: Rule) -> dict[str, Any]:
    """Return the JSON form of a rule: enums as strings, caps smallest window first, sets listed."""
    out: dict[str, Any] = {name: getattr(rule, name) for name in _FIELDS}
    out["unit"], out["review"] = str(rule.unit), str(rule.review)
    out["caps"] = {str(w): rule.caps[w] for w in Window if w in rule.caps}
    out["recorder_roles"] = _in_order(rule.recorder_roles, ROLES)
    out["subjects"] = _in_order(rule.subjects, SUBJECT_KINDS)
    for name in (*_WINDOW_FIELDS, "auto"):
        out[name] = None if out[name] is None else str(out[name])
    for name in _DATE_FIELDS:
        out[name] = None if out[name] is None else out[name].isoformat()
    out["auto_watch"] = sorted(rule.auto_watch)
    return out
