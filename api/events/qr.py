"""The event's QR: a URL to the check-in page carrying a signed token {e: event, v: village,
k: the event's random key}. The signature (purpose salt) makes it unforgeable without the
app's secret, the key makes it unguessable even with an event's id, and the village in it binds
it to its village. It has no expiry of its own: the event's time window decides when it works.
A phone's own camera app opens the URL; the resident's 扫码签到 page reads it too.
"""

from __future__ import annotations

import re

from itsdangerous import BadSignature, URLSafeSerializer

from points.errors import TokenInvalidError
from points.models import Village
from points.models.events import Event

SALT = "points.qr.event.v1"
JOIN_PATH = re.compile(r"/events/join/([A-Za-z0-9_\-\.]{10,400})/?(?:[?#].*)?$")
MAX_SCAN = 1000


class EventCodeInvalidError(TokenInvalidError):
    message = "无法识别这个二维码：请扫描活动现场张贴的签到二维码"


def sign(secret: str, event: Event) -> str:
    """Return the event's signed token (URL-safe)."""
    payload = {"e": event.id, "v": event.village_id, "k": event.qr_key}
    return URLSafeSerializer(secret, salt=SALT).dumps(payload)


def read(secret: str, token: str) -> tuple[int, int, str]:
    """Check a token's signature; return (event id, village id, key) or raise token_invalid."""
    try:
        payload = URLSafeSerializer(secret, salt=SALT).loads(token or "")
    except BadSignature as exc:
        raise EventCodeInvalidError() from exc
    if (
        not isinstance(payload, dict)
        or set(payload) != {"e", "v", "k"}
        or not all(isinstance(payload[k], int) for k in ("e", "v"))
        or not isinstance(payload["k"], str)
    ):
        raise EventCodeInvalidError()
    return payload["e"], payload["v"], payload["k"]


def token_of_scan(text: str) -> str:
    """Return the token of a scanned event QR (the join URL, or the bare token typed in)."""
    text = (text or "").strip()
    if not text or len(text) > MAX_SCAN:
        raise EventCodeInvalidError()
    found = JOIN_PATH.search(text)
    if found:
        return found.group(1)
    if "/" in text or ":" in text:
        raise EventCodeInvalidError()
    return text


def join_url(base_url: str, village: Village, token: str) -> str:
    """Return the URL printed in the event's QR."""
    return f"{base_url.rstrip('/')}/v/{village.code}/events/join/{token}"
