"""The honour rules, pure (no session): stars from a year of scores, and how a party member's
stars combine the party score with the branch's 民主评议.

The rules live on the scheme (`schemes.honour_rules`, JSON) beside its star thresholds, so a
village edits them with its scheme settings and every list records the rules it was drafted
under in its snapshot. A missing key takes the default below.
"""

from __future__ import annotations

from points.boards import stars

TITLES = ("优秀群众", "优秀党员", "最美家庭")
MODEL = "道德模范"
STARS = "stars"
GRADES = ("优秀", "合格", "基本合格", "不合格")
DEFAULT_RULES: dict = {
    # Party stars: (party_weight × the member's average period score + review_weight × the
    # 民主评议 score) / (party_weight + review_weight), then the party scheme's thresholds.
    "party_weight": 70,
    "review_weight": 30,
    # A grade counts as this score; a grade may also cap the stars (不合格: none).
    "grade_scores": {"优秀": 100, "合格": 80, "基本合格": 60, "不合格": 0},
    "grade_caps": {"基本合格": 2, "不合格": 0},
    # Yearly 表彰 nominated from scores: the best households (最美家庭) and party members
    # (优秀党员) with at least `award_min_stars`; 优秀群众 come from the review group.
    "award_top_n": 3,
    "award_min_stars": 4,
    # 星级文明户 cadence (read on the household scheme): one list per year ("year", stars from
    # the year's average period score) or per closed scoring period ("period").
    "household_cadence": "year",
}
YEAR, PERIOD = "year", "period"
CADENCES = (YEAR, PERIOD)
PERIODS_PER_YEAR = {"month": 12, "quarter": 4, "year": 1}


def honour_rules(saved: dict | None) -> dict:
    """Return the scheme's honour rules with the defaults filled in."""
    rules = {**DEFAULT_RULES, **(saved or {})}
    rules["grade_scores"] = {**DEFAULT_RULES["grade_scores"], **(rules.get("grade_scores") or {})}
    return rules


def household_cadence(scheme) -> str:
    """Return how often the household scheme designates 星级文明户: 'year' or 'period'."""
    value = honour_rules(scheme.honour_rules if scheme else None)["household_cadence"]
    return value if value in CADENCES else YEAR


def average_score(base_score: int, year_delta: int, period_kind: str) -> int:
    """Return the average period score of a year: base + the year's awards − deductions,
    spread over its periods (thresholds are per period, so a yearly star uses the average)."""
    return base_score + year_delta // PERIODS_PER_YEAR.get(period_kind, 1)


def review_value(rules: dict, score: int | None, grade: str | None) -> int | None:
    """Return a 民主评议 as a 0–100 score (a grade by the rules' table), or None if none."""
    if score is not None:
        return score
    if grade is not None:
        return int(rules["grade_scores"].get(grade, 0))
    return None


def party_stars(
    rules: dict, thresholds, party_score: int, review: int | None, grade: str | None
) -> tuple[int, int]:
    """Return (combined score, stars) of a party member; without a review, the party score."""
    if review is None:
        combined = party_score
    else:
        wp, wr = int(rules["party_weight"]), int(rules["review_weight"])
        combined = (wp * party_score + wr * review) // max(1, wp + wr)
    n = stars(combined, thresholds)
    cap = rules.get("grade_caps", {}).get(grade or "")
    if cap is not None:
        n = min(n, int(cap))
    return combined, n


def rule_text(rules: dict) -> str:
    """Return the combining rule as it is printed on the party list."""
    caps = "，".join(f"评议{g}最多{c}星" for g, c in rules.get("grade_caps", {}).items())
    return (
        f"党员星级 = 党员积分期均得分×{rules['party_weight']}% + 民主评议得分×"
        f"{rules['review_weight']}%（按党员积分方案的星级分数线定星）"
        + (f"；{caps}" if caps else "")
    )
