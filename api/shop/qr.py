"""The shop's QR codes: the shared payloads, signatures and images (api/web/qr.py, which event
check-in uses too) under the names the shop always used, and the store's counter code."""

from __future__ import annotations

from api.web.qr import (
    CARD_PREFIX,
    CHECKOUT_PREFIX,
    MAX_SCAN,
    PHONE_PREFIX,
    SALTS,
    TokenSettings,
    card_payload,
    matrix,
    parse_scan,
    png,
    read_token,
    sign,
    svg,
)

__all__ = [
    "CARD_PREFIX",
    "CHECKOUT_PREFIX",
    "MAX_SCAN",
    "PHONE_PREFIX",
    "SALTS",
    "TokenSettings",
    "card_payload",
    "counter_url",
    "matrix",
    "parse_scan",
    "png",
    "read_token",
    "sign",
    "svg",
]


def counter_url(base_url: str, village_code: str, store_id: int) -> str:
    """Return the URL a store's counter code opens: the store's page for ordering."""
    return f"{base_url.rstrip('/')}/shop/{village_code}/stores/{store_id}"
