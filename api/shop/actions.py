"""Steps the shop's REST views and pages share: QR token settings, a resident's phone code,
and the audit record of a redemption."""

from __future__ import annotations

from flask import current_app

from api.db import db
from api.rest import audit, village_for
from api.shop import qr
from api.web.identity import current_actor
from points import org
from points.db import utcnow
from points.models.org import Role
from points.shop import credentials
from points.shop.redemption import METHOD_NAMES


def token_settings() -> qr.TokenSettings:
    """Return the QR token settings from the app config (secret, lifetimes in seconds)."""
    config = current_app.config
    return qr.TokenSettings(
        secret=config["SECRET_KEY"],
        phone_seconds=int(config.get("QR_TOKEN_SECONDS", 60)),
        checkout_seconds=int(config.get("QR_CHECKOUT_SECONDS", 300)),
    )


def my_phone_code(code):
    """Issue the signed-in resident's single-use phone code: (nonce, signed text, seconds)."""
    village = village_for(code, Role.RESIDENT)
    home = org.get_household(db(), village=village, household_id=current_actor().household_id)
    settings = token_settings()
    nonce = credentials.issue_nonce(
        db(), village=village, household=home, now=utcnow(), seconds=settings.phone_seconds
    )
    return nonce, qr.sign(settings, nonce), settings.phone_seconds


def audit_redemption(village, receipt):
    """Record a redemption (and whether it was done for someone, 代办) in the audit log."""
    proxy = "（代办）" if receipt.proxy else ""
    audit(
        village,
        "redemption.create",
        receipt,
        f"{receipt.store.name} 兑换{proxy}：户 {receipt.household.number} "
        f"{receipt.total} 分（{METHOD_NAMES[receipt.method]}）",
        proxy=receipt.proxy,
        proxy_note=receipt.proxy_note,
        method=receipt.method,
        household_id=receipt.household_id,
        total=receipt.total,
        entry_id=receipt.entry_id,
    )
