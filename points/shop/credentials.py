"""Who is at the counter: printed household cards and single-use QR nonces.

A card serial is long-lived and revocable (lost cards are reissued and the old serial refused).
A nonce is 128 random bits behind a signed QR token, valid for seconds and consumed by a
conditional UPDATE inside the redemption's transaction, so a replayed code finds nothing to
consume. Signing tokens and drawing QR images belong to api/: here a nonce is a random string.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, select, update
from sqlalchemy.orm import Session

from points.cycles.jobs import Job, WorkItem, register_job
from points.errors import (
    CardRevokedError,
    CardUnknownError,
    NotFoundError,
    PermissionDeniedError,
    TokenExpiredError,
    TokenInvalidError,
    TokenUsedError,
    TokenWrongVillageError,
    ValidationError,
)
from points.models import Household, HouseholdCard, QrNonce, Village
from points.models.shop import NonceKind
from points.shop.goods import MAX_ID

# Crockford's base32: no I, L, O or U, so a serial read aloud or typed from a card is unambiguous.
SERIAL_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
SERIAL_LENGTH = 16  # 80 random bits


@dataclass(frozen=True)
class NonceRef:
    """A nonce and its household, as read from a token whose signature api/ checked."""

    nonce: str
    household_id: int


@dataclass(frozen=True)
class CardRef:
    """A card serial as scanned or typed (dashes, spaces and case do not matter)."""

    serial: str


# ---------------------------------------------------------------------------------------------
# Household cards
# ---------------------------------------------------------------------------------------------


def generate_serial() -> str:
    """Return a new random card serial (16 Crockford base32 characters, 80 bits)."""
    return "".join(secrets.choice(SERIAL_ALPHABET) for _ in range(SERIAL_LENGTH))


def normalise_serial(text: str) -> str:
    """Return a serial as stored: upper case, no separators, O→0 and I/L→1 as Crockford reads."""
    cleaned = "".join(ch for ch in (text or "").upper() if ch not in " -_")
    return cleaned.translate(str.maketrans("OIL", "011"))


def format_serial(serial: str) -> str:
    """Return a serial as printed: ABCD-EFGH-JKMN-PQRS."""
    return "-".join(serial[i : i + 4] for i in range(0, len(serial), 4))


def issue_card(
    session: Session, *, village: Village, household: Household, actor_id: int | None, now: datetime
) -> HouseholdCard:
    """Issue a household card; a card the household still holds is revoked first (补办)."""
    _same_village(village, household)
    live = _live_card(session, household.id)
    if live is not None:
        _revoke(session, live, actor_id=actor_id, reason="补办新卡，旧卡作废", now=now)
    card = HouseholdCard(
        village_id=village.id,
        household_id=household.id,
        serial=generate_serial(),
        issued_at=now,
        issued_by=actor_id,
    )
    session.add(card)
    session.flush()
    return card


def ensure_cards(
    session: Session,
    *,
    village: Village,
    actor_id: int | None,
    now: datetime,
    household_ids: Iterable[int] | None = None,
    reissue: bool = False,
) -> tuple[list[HouseholdCard], int]:
    """Make sure each active household (or each one listed) holds a live card.

    Return the live cards in household-number order and how many were issued now; with
    `reissue`, every listed household gets a new card and its old serial is revoked.
    """
    stmt = select(Household).where(Household.village_id == village.id)
    if household_ids is None:
        stmt = stmt.where(Household.active.is_(True))
    else:
        ids = sorted(set(household_ids))
        homes_found = session.execute(stmt.where(Household.id.in_(ids))).scalars().all()
        if len(homes_found) != len(ids):
            raise NotFoundError("有农户不属于本村或不存在")
        stmt = stmt.where(Household.id.in_(ids))
    homes = session.execute(stmt.order_by(Household.number)).scalars().all()
    live = {c.household_id: c for c in _live_cards(session, village, [h.id for h in homes])}
    cards, issued = [], 0
    for home in homes:
        card = live.get(home.id)
        if card is None or reissue:
            card = issue_card(session, village=village, household=home, actor_id=actor_id, now=now)
            issued += 1
        cards.append(card)
    return cards, issued


def revoke_card(
    session: Session,
    *,
    village: Village,
    card_id: int,
    actor_id: int | None,
    reason: str,
    now: datetime,
) -> HouseholdCard:
    """Revoke a card (挂失): its serial is refused from now on."""
    card = session.get(HouseholdCard, card_id) if 0 < card_id <= MAX_ID else None
    if card is None or card.village_id != village.id:
        raise NotFoundError("找不到该户卡")
    if card.revoked_at is not None:
        raise CardRevokedError("该户卡已经作废")
    if not (reason or "").strip():
        raise ValidationError("请填写作废原因（如：遗失）", errors={"reason": ["不能为空"]})
    return _revoke(session, card, actor_id=actor_id, reason=reason, now=now)


def list_cards(
    session: Session,
    *,
    village: Village,
    live_only: bool = True,
    household_ids: Iterable[int] | None = None,
) -> list[HouseholdCard]:
    """Return the village's cards (live ones by default) in household-number order."""
    stmt = (
        select(HouseholdCard)
        .join(
            Household,
            and_(
                Household.id == HouseholdCard.household_id,
                Household.village_id == HouseholdCard.village_id,
            ),
        )
        .where(HouseholdCard.village_id == village.id)
    )
    if live_only:
        stmt = stmt.where(HouseholdCard.revoked_at.is_(None))
    if household_ids is not None:
        stmt = stmt.where(HouseholdCard.household_id.in_(sorted(set(household_ids))))
    return list(session.execute(stmt.order_by(Household.number, HouseholdCard.id)).scalars())


def get_live_card(session: Session, *, village: Village, serial: str) -> HouseholdCard:
    """Return the live card with this serial; refuse unknown, other-village and revoked ones."""
    card = session.execute(
        select(HouseholdCard).where(HouseholdCard.serial == normalise_serial(serial))
    ).scalar_one_or_none()
    if card is None:
        raise CardUnknownError()
    if card.village_id != village.id:
        raise TokenWrongVillageError("这是其他村的户卡，不能在本村使用")
    if card.revoked_at is not None:
        raise CardRevokedError()
    return card


def _live_card(session: Session, household_id: int) -> HouseholdCard | None:
    return session.execute(
        select(HouseholdCard).where(
            HouseholdCard.household_id == household_id, HouseholdCard.revoked_at.is_(None)
        )
    ).scalar_one_or_none()


def _live_cards(session: Session, village: Village, household_ids: list[int]):
    return list_cards(session, village=village, household_ids=household_ids)


def _revoke(session, card: HouseholdCard, *, actor_id, reason: str, now) -> HouseholdCard:
    card.revoked_at, card.revoked_by, card.revoke_reason = now, actor_id, reason.strip()[:200]
    session.flush()  # before a new card: the partial unique index allows one live card
    return card


# ---------------------------------------------------------------------------------------------
# QR nonces
# ---------------------------------------------------------------------------------------------


def issue_nonce(
    session: Session,
    *,
    village: Village,
    household: Household,
    now: datetime,
    seconds: int,
    kind: str = NonceKind.PHONE,
    card: HouseholdCard | None = None,
) -> QrNonce:
    """Create a single-use nonce (128 random bits) for a household, valid for `seconds`.

    It is valid while now < issued_at + seconds: at exactly that instant it has expired.
    """
    _same_village(village, household)
    if not household.active:
        raise PermissionDeniedError("该农户已注销，不能兑换")
    row = QrNonce(
        village_id=village.id,
        household_id=household.id,
        nonce=secrets.token_hex(16),
        kind=str(kind),
        card_id=card.id if card else None,
        issued_at=now,
        expires_at=now + timedelta(seconds=seconds),
    )
    session.add(row)
    session.flush()
    return row


def check_nonce(
    session: Session, *, village: Village, nonce: str, household_id: int, now: datetime
) -> QrNonce:
    """Return the nonce if it could be consumed now; raise why not (nothing is changed)."""
    row = session.execute(select(QrNonce).where(QrNonce.nonce == nonce)).scalar_one_or_none()
    if row is None or row.household_id != household_id:
        raise TokenInvalidError()
    if row.village_id != village.id:
        raise TokenWrongVillageError()
    if row.consumed_at is not None:
        raise TokenUsedError()
    if row.expires_at <= now:
        raise TokenExpiredError()
    if row.card_id is not None:
        card = session.get(HouseholdCard, row.card_id)
        if card.revoked_at is not None:
            raise CardRevokedError()
    return row


def purge_nonces(session: Session, *, now: datetime, keep: timedelta = timedelta(days=1)) -> int:
    """Delete nonces that expired more than `keep` ago; return how many (for the scheduler).

    Redemptions keep their nonce in the idempotency key, so nothing refers to these rows.
    """
    result = session.execute(
        delete(QrNonce)
        .where(QrNonce.expires_at < now - keep)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount


def consume_nonce(
    session: Session, *, village: Village, nonce: str, household_id: int, now: datetime
) -> QrNonce:
    """Mark the nonce used, or raise why not; call it inside the redemption's transaction.

    The conditional UPDATE is what stops a replay: of two counters presenting one code, the
    database lets exactly one UPDATE match the row.
    """
    consumed = session.execute(
        update(QrNonce)
        .where(
            QrNonce.nonce == nonce,
            QrNonce.village_id == village.id,
            QrNonce.household_id == household_id,
            QrNonce.consumed_at.is_(None),
            QrNonce.expires_at > now,
        )
        .values(consumed_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if consumed != 1:
        check_nonce(session, village=village, nonce=nonce, household_id=household_id, now=now)
        raise TokenUsedError()  # consumed between our UPDATE and the check
    row = session.execute(
        select(QrNonce).where(QrNonce.nonce == nonce).execution_options(populate_existing=True)
    ).scalar_one()
    if row.card_id is not None and session.get(HouseholdCard, row.card_id).revoked_at is not None:
        raise CardRevokedError()
    return row


def _same_village(village: Village, household: Household) -> None:
    if household.village_id != village.id:
        raise NotFoundError("找不到该农户")


# --- the scheduler's job: purge spent and expired QR nonces, once a day per village ------------


def _due_purge(session: Session, now: datetime):
    from points.periods import local_date

    day = local_date(now).isoformat()
    villages = session.execute(
        select(QrNonce.village_id).where(QrNonce.expires_at < now - timedelta(days=1)).distinct()
    ).scalars()
    return [WorkItem("qr_nonce_purge", v, f"purge:{day}") for v in villages]


def _run_purge(session: Session, item, now: datetime) -> dict:
    removed = session.execute(
        delete(QrNonce)
        .where(QrNonce.village_id == item.village_id, QrNonce.expires_at < now - timedelta(days=1))
        .execution_options(synchronize_session=False)
    ).rowcount
    return {"removed": removed}


def _register() -> None:
    register_job(Job("qr_nonce_purge", _due_purge, _run_purge, order=90))


_register()
