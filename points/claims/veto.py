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

from sqlalchemy import and_, select
from sqlalchemy.orm import Session, aliased

from points.catalog.rules import Window
from points.ledger.journal import in_values
from points.models import CatalogRule, Scheme
from points.models.claims import Claim, ClaimStatus
from points.models.ledger import JournalEntry
from points.periods import period_key

_REVERSAL = aliased(JournalEntry)
# Built once: an alias costs more to build than the statement it is in.
_NOT_REVERSED = ~(
    select(_REVERSAL.id)
    .where(_REVERSAL.reverses_id == Claim.entry_id, _REVERSAL.village_id == Claim.village_id)
    .exists()
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
            in_values(session, Claim.village_id, sorted({s.village_id for s in schemes})),
            in_values(session, Claim.scheme_id, list(by_id)),
            Claim.status == ClaimStatus.POSTED,
            CatalogRule.veto.is_not(None),
            Claim.occurred_on <= on.replace(month=12, day=31),
            _NOT_REVERSED,
        )
        .order_by(Claim.occurred_on, Claim.id)
    ).all()
    for scheme_id, household_id, resident_id, occurred_on, veto, name in rows:
        scheme = by_id[scheme_id]
        if _same_window(Window(veto), scheme, occurred_on, on):
            subject = resident_id if scheme.subject_kind == "resident" else household_id
            out[scheme_id].setdefault(subject, f"{occurred_on.isoformat()} {name}（一票否决）")
    return out
