"""Claims: record, declare, review, 公示 and objections, posting exactly once (workflow);
automatic (state-based) rules evaluated by the scheduler (automatic); who a 一票否决 bars from
honours (veto); group and event awards with one notice row and one review (groups); the public
notice list
(notices) and the anomaly report (anomalies); records queued offline refused when their rule or
household changed meanwhile (offline).

Other features use this package's names below (its public API), never a `_private` name."""

from points.claims.automatic import evaluate as evaluate_automatic
from points.claims.automatic import last_ended_period
from points.claims.groups import group_households, record_group
from points.claims.offline import ChangedSinceRecordedError, MadeAgainst, check_unchanged
from points.claims.veto import vetoed
from points.claims.workflow import (
    MAX_BATCH,
    REVIEWERS,
    ClaimInput,
    ConflictOfInterestError,
    RuleRefusedError,
    approve,
    count_open_objections,
    due_claims,
    get_claim,
    list_claims,
    object_to,
    open_notices,
    post_claim,
    post_due,
    recent_rule_codes,
    record,
    record_batch,
    reject,
    resolve_objection,
    reverse_claim,
)

__all__ = [
    "MAX_BATCH",
    "REVIEWERS",
    "ConflictOfInterestError",
    "RuleRefusedError",
    "ClaimInput",
    "record",
    "record_batch",
    "recent_rule_codes",
    "approve",
    "reject",
    "object_to",
    "resolve_objection",
    "due_claims",
    "post_claim",
    "post_due",
    "reverse_claim",
    "get_claim",
    "list_claims",
    "open_notices",
    "count_open_objections",
    "evaluate_automatic",
    "last_ended_period",
    "vetoed",
    "record_group",
    "group_households",
    "ChangedSinceRecordedError",
    "MadeAgainst",
    "check_unchanged",
]
