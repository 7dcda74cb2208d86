"""Honours that last: 星级文明户, party 评星定级, yearly 表彰 and the 道德模范 roll — drafted
from a year of scores (designate), approved by someone else, published and corrected (lists),
read by staff, residents and the public (reads);
the branch's 民主评议 and the town's counts (reviews); the pure rules (rules).

Other features use this package's names below (its public API), never a `_private` name."""

from points.honours.designate import (
    JOB,
    check_year,
    draft_list,
    household_scores,
    live_list,
    party_scores,
    redraft_list,
)
from points.honours.lists import (
    appeal,
    approve_list,
    get_entry,
    nominate,
    publish_list,
    record_ref,
    remove_entry,
    resolve_appeal,
    withdraw_list,
)
from points.honours.reads import (
    get_list,
    get_public_list,
    honour_labels,
    household_honours,
    kind_text,
    list_appeals,
    list_lists,
    model_roll,
    public_record,
    public_view,
    staff_view,
)
from points.honours.reviews import list_reviews, record_review, set_rules, town_counts
from points.honours.rules import GRADES, MODEL, STARS, TITLES, honour_rules

__all__ = [
    "JOB",
    "GRADES",
    "MODEL",
    "STARS",
    "TITLES",
    "honour_rules",
    "check_year",
    "draft_list",
    "household_scores",
    "party_scores",
    "live_list",
    "redraft_list",
    "set_rules",
    "nominate",
    "remove_entry",
    "get_entry",
    "approve_list",
    "publish_list",
    "withdraw_list",
    "appeal",
    "resolve_appeal",
    "get_list",
    "get_public_list",
    "list_lists",
    "list_appeals",
    "public_view",
    "staff_view",
    "household_honours",
    "honour_labels",
    "public_record",
    "record_ref",
    "model_roll",
    "kind_text",
    "record_review",
    "list_reviews",
    "town_counts",
]
