"""QR payloads, their signatures and their images (the domain only knows nonces and serials).

Shared plumbing: the points shop (api/shop) spends with these codes and event check-in
(api/events) identifies a household at the door with the same codes, so they live here and
import no feature. api/shop/qr.py re-exports them under the names the shop always used.

Three kinds of text end up in a QR code or a scanner's keystrokes:

- `PTS1:<token>`     the resident's phone code: a signed {n: nonce, h: household, v: village},
                     valid QR_TOKEN_SECONDS (60) from issue, single use;
- `PTSCHK:<token>`   a checkout code the server hands the clerk after scanning a card (same
                     payload, QR_CHECKOUT_SECONDS), so confirming twice cannot spend twice;
- `PTSCARD:<serial>` a printed household card (the serial alone, typed by hand, works too);
- a URL              a store's counter code: it only opens the store's page, it spends nothing.

A token carries nothing but the nonce and what identifies the household. Its signature has a
purpose salt per kind. Expiry is decided by the nonce row (`now < expires_at`, with `now`
passed in); itsdangerous's own max_age is a second, coarser guard driven by the same clock.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import qrcode
import qrcode.image.svg
from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

from points.errors import TokenExpiredError, TokenInvalidError, TokenWrongVillageError
from points.models import QrNonce, Village
from points.shop.credentials import SERIAL_ALPHABET, SERIAL_LENGTH, CardRef, NonceRef

PHONE_PREFIX = "PTS1:"
CHECKOUT_PREFIX = "PTSCHK:"
CARD_PREFIX = "PTSCARD:"
SALTS = {PHONE_PREFIX: "points.qr.phone.v1", CHECKOUT_PREFIX: "points.qr.checkout.v1"}
_BARE_SERIAL = re.compile(
    rf"^[{SERIAL_ALPHABET}OIL]{{4}}(-?[{SERIAL_ALPHABET}OIL]{{4}}){{{SERIAL_LENGTH // 4 - 1}}}$"
)
MAX_SCAN = 1000


@dataclass(frozen=True)
class TokenSettings:
    """What signing and checking need: the app's secret and the lifetimes in seconds."""

    secret: str
    phone_seconds: int = 60
    checkout_seconds: int = 300

    def max_age(self, prefix: str) -> int:
        return self.phone_seconds if prefix == PHONE_PREFIX else self.checkout_seconds


class _ClockSigner(TimestampSigner):
    """A TimestampSigner that reads the time we pass in, so expiry is testable to the second."""

    def __init__(self, *args, clock: Callable[[], datetime], **kwargs):
        super().__init__(*args, **kwargs)
        self._clock = clock

    def get_timestamp(self) -> int:
        return int(self._clock().timestamp())


def _serializer(settings: TokenSettings, prefix: str, now: datetime) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(
        settings.secret,
        salt=SALTS[prefix],
        signer=_ClockSigner,
        signer_kwargs={"clock": lambda: now},
    )


def sign(settings: TokenSettings, nonce: QrNonce, *, prefix: str = PHONE_PREFIX) -> str:
    """Return the QR text of a nonce: the prefix and a token signed at the nonce's issue time."""
    payload = {"n": nonce.nonce, "h": nonce.household_id, "v": nonce.village_id}
    return prefix + _serializer(settings, prefix, nonce.issued_at).dumps(payload)


def read_token(settings: TokenSettings, text: str, *, village: Village, now: datetime) -> NonceRef:
    """Check a PTS1/PTSCHK text's signature and age; return its nonce and household.

    Raises token_invalid (not ours, tampered, malformed), token_expired (older than its
    lifetime by the signature) or token_wrong_village.
    """
    text = (text or "").strip()
    prefix = next((p for p in SALTS if text.startswith(p)), None)
    if prefix is None:
        raise TokenInvalidError()
    try:
        payload = _serializer(settings, prefix, now).loads(
            text[len(prefix) :], max_age=settings.max_age(prefix)
        )
    except SignatureExpired as exc:
        raise TokenExpiredError() from exc
    except BadSignature as exc:
        raise TokenInvalidError() from exc
    if (
        not isinstance(payload, dict)
        or set(payload) != {"n", "h", "v"}
        or not isinstance(payload["n"], str)
        or not all(isinstance(payload[k], int) for k in ("h", "v"))
    ):
        raise TokenInvalidError()
    if payload["v"] != village.id:
        raise TokenWrongVillageError()
    return NonceRef(payload["n"], payload["h"])


def parse_scan(
    settings: TokenSettings, text: str, *, village: Village, now: datetime
) -> NonceRef | CardRef:
    """Turn what a scanner typed (or a camera read) into a domain credential."""
    text = (text or "").strip()
    if not text or len(text) > MAX_SCAN:
        raise TokenInvalidError()
    if text.startswith(CARD_PREFIX):
        return CardRef(text[len(CARD_PREFIX) :])
    if any(text.startswith(p) for p in SALTS):
        return read_token(settings, text, village=village, now=now)
    if _BARE_SERIAL.match(text.upper()):
        return CardRef(text)
    if text.startswith(("http://", "https://")):
        raise TokenInvalidError("这是商店的柜台码：请村民用手机扫描它下单，而不是在柜台扫描")
    raise TokenInvalidError()


def card_payload(serial: str) -> str:
    """Return the QR text printed on a household card."""
    return CARD_PREFIX + serial


def png(data: str, *, box_size: int = 10) -> bytes:
    """Return a QR code of `data` as a PNG (error correction M, 4-module quiet zone)."""
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=box_size)
    qr.add_data(data)
    qr.make(fit=True)
    buf = io.BytesIO()
    qr.make_image().save(buf, format="PNG")
    return buf.getvalue()


def svg(data: str) -> bytes:
    """Return a QR code of `data` as an SVG path (scales to any print size)."""
    qr = qrcode.QRCode(
        error_correction=qrcode.constants.ERROR_CORRECT_M,
        image_factory=qrcode.image.svg.SvgPathImage,
    )
    qr.add_data(data)
    qr.make(fit=True)
    buf = io.BytesIO()
    qr.make_image().save(buf)
    return buf.getvalue()


def matrix(data: str) -> list[list[bool]]:
    """Return the QR modules of `data`, quiet zone included, for drawing as vector squares."""
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=4)
    qr.add_data(data)
    qr.make(fit=True)
    return qr.get_matrix()


MAX_FRAME = 3 * 1024 * 1024  # a camera frame as PNG or JPEG


def decode_frame(body: bytes) -> tuple[str | None, str | None]:
    """Read a QR code in a camera frame (PNG/JPEG bytes): (text or None, a Chinese error or None).

    Browsers only grab frames; zxing-cpp decodes them on the server, so no scanner library is
    shipped to the phone.
    """
    if not body or len(body) > MAX_FRAME:
        return None, "图片为空或过大"
    import zxingcpp
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(body)) as image:
            image.load()
            if image.width * image.height > 4096 * 4096:
                return None, "图片过大"
            found = zxingcpp.read_barcodes(
                image.convert("L"), formats=zxingcpp.BarcodeFormat.QRCode
            )
    except (UnidentifiedImageError, OSError, ValueError):
        return None, "无法读取图片"
    return next((r.text for r in found if r.valid and r.text), None), None


def token_settings() -> TokenSettings:
    """Return the QR token settings from the app config (secret, lifetimes in seconds)."""
    from flask import current_app

    config = current_app.config
    return TokenSettings(
        secret=config["SECRET_KEY"],
        phone_seconds=int(config.get("QR_TOKEN_SECONDS", 60)),
        checkout_seconds=int(config.get("QR_CHECKOUT_SECONDS", 300)),
    )


def draw_pdf(pdf, data: str, x: float, y: float, size: float) -> None:
    """Draw a QR code of `data` on a reportlab canvas as vector squares, `size` points wide,
    lower-left corner at (x, y): sharp at any printer resolution."""
    modules = matrix(data)
    step = size / len(modules)
    pdf.setFillColorRGB(0, 0, 0)
    for row, line in enumerate(modules):
        # Runs of dark modules as one rectangle each: fewer path operations, same picture.
        col = 0
        while col < len(line):
            if not line[col]:
                col += 1
                continue
            start = col
            while col < len(line) and line[col]:
                col += 1
            pdf.rect(
                x + start * step,
                y + size - (row + 1) * step,
                (col - start) * step,
                step,
                stroke=0,
                fill=1,
            )
