"""一票否决: a posted deduction under a rule with a veto bars its subject from honours.

A rule's `veto` names a window (month, the scheme's period, or year). Once a claim under it is
posted and not reversed, the subject (household, or party member on the party track) is left
off the 红榜, gets no stars and cannot be nominated for any month whose first day falls in the
window containing the act's date. Points already earned stay spendable: nothing here touches
the ledger.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from functools import lru_cache

from sqlalchemy import and_, bindparam, select
from sqlalchemy.orm import Session

from points.catalog.rules import Window
from points.ledger.journal import in_param
from points.models import CatalogRule, Scheme
from points.models.claims import Claim, ClaimStatus
from points.models.ledger import JournalEntry
from points.periods import period_key

_REVERSAL = JournalEntry.__table__.alias("reversal")
_CLAIMS = Claim.__table__
# Built once (an alias costs more to build than the statement it is in), of Core columns only:
# an ORM subquery kept across calls is altered by its first compilation (points.boards.monthly).
_NOT_REVERSED = ~(
    select(_REVERSAL.c.id)
    .where(
        _REVERSAL.c.reverses_id == _CLAIMS.c.entry_id,
        _REVERSAL.c.village_id == _CLAIMS.c.village_id,
    )
    .exists()
)


@lru_cache
def _vetoes_statement(dialect: str):
    """`vetoed_by_scheme`'s read, built once per dialect (a board draft runs it every time)."""
    return (
        select(
            Claim.scheme_id,
            Claim.household_id,
            Claim.resident_id,
            Claim.occurred_on,
            CatalogRule.veto,
            CatalogRule.name,
        )
        .join(
            CatalogRule,
            and_(CatalogRule.id == Claim.rule_id, CatalogRule.village_id == Claim.village_id),
        )
        .where(
            # The village too: claims are indexed by village (and status), not by scheme.
            in_param(dialect, Claim.village_id, "villages"),
            in_param(dialect, Claim.scheme_id, "schemes"),
            Claim.status == bindparam("posted"),
            CatalogRule.veto.is_not(None),
            Claim.occurred_on <= bindparam("until"),
            _NOT_REVERSED,
        )
        .order_by(Claim.occurred_on, Claim.id)
    )


def _same_window(window: Window, scheme: Scheme, a: date, b: date) -> bool:
    if window is Window.month:
        return (a.year, a.month) == (b.year, b.month)
    if window is Window.year:
        return a.year == b.year
    return period_key(scheme.period_kind, a) == period_key(scheme.period_kind, b)


def vetoed(session: Session, *, scheme: Scheme, on: date) -> dict[int, str]:
    """Return {subject id: reason} for subjects barred from honours on local date `on`.

    Subject ids are household ids on a household scheme, resident ids on a party scheme.
    """
    return vetoed_by_scheme(session, schemes=[scheme], on=on)[scheme.id]


def vetoed_by_scheme(
    session: Session, *, schemes: Sequence[Scheme], on: date
) -> dict[int, dict[int, str]]:
    """Return {scheme id: {subject id: reason}} for many schemes (a county's board drafts) in
    one statement: for each, what `vetoed` returns."""
    by_id = {scheme.id: scheme for scheme in schemes}
    out: dict[int, dict[int, str]] = {sid: {} for sid in by_id}
    if not by_id:
        return out
    rows = session.execute(
        _vetoes_statement(session.get_bind().dialect.name),
        {
            "villages": sorted({s.village_id for s in schemes}),
            "schemes": list(by_id),
            "posted": ClaimStatus.POSTED.value,
            "until": on.replace(month=12, day=31),
        },
    ).all()
    for scheme_id, household_id, resident_id, occurred_on, veto, name in rows:
        scheme = by_id[scheme_id]
        if _same_window(Window(veto), scheme, occurred_on, on):
            subject = resident_id if scheme.subject_kind == "resident" else household_id
            out[scheme_id].setdefault(subject, f"{occurred_on.isoformat()} {name}（一票否决）")
    return out
