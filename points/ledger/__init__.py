"""The ledger: double-entry journal with lots, owed accounts and a per-village hash chain
(journal), its reads (statements), and the checker of every invariant (verify).

Other features use this package's names below (its public API), never a `_private` name."""

from points.ledger.journal import (
    GENESIS_HASH,
    HASHED_FIELDS,
    LOCKED_LOT_COLUMNS,
    MAX_ATTEMPTS,
    AwardLine,
    Balance,
    LockedLot,
    Subject,
    award,
    chain_head,
    deduct,
    entry_hash,
    expire_locked,
    expire_lot,
    expire_lots,
    get_balance,
    period_score,
    post_awards,
    reverse,
    spend,
    transfer,
)

__all__ = [
    "GENESIS_HASH",
    "MAX_ATTEMPTS",
    "Subject",
    "Balance",
    "AwardLine",
    "award",
    "post_awards",
    "deduct",
    "spend",
    "transfer",
    "reverse",
    "expire_lot",
    "expire_lots",
    "expire_locked",
    "LockedLot",
    "LOCKED_LOT_COLUMNS",
    "get_balance",
    "period_score",
    "chain_head",
    "entry_hash",
    "HASHED_FIELDS",
]
