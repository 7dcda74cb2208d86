"""Evidence photos: JPEG/PNG only (checked by reading the file), size-limited, re-encoded to
drop metadata such as GPS, stored outside the web root under random names."""

from __future__ import annotations

import io
import os
import secrets
import shutil
from pathlib import Path

from flask import current_app
from PIL import Image, UnidentifiedImageError

from points.errors import ValidationError

MAX_BYTES = 5 * 1024 * 1024
MAX_PIXELS = 40_000_000
KINDS = {"JPEG": ("image/jpeg", ".jpg"), "PNG": ("image/png", ".png")}


def evidence_dir(village_id: int) -> Path:
    """Return (and create) the village's evidence folder inside the instance folder."""
    root = Path(
        current_app.config.get("EVIDENCE_DIR") or Path(current_app.instance_path) / "evidence"
    )
    path = root / str(village_id)
    path.mkdir(parents=True, exist_ok=True)
    return path


def store_photo(village_id: int, data: bytes) -> tuple[str, str, int]:
    """Validate and store one photo; return (stored name, content type, size in bytes)."""
    if not data:
        raise ValidationError("照片是空文件", errors={"photos": ["空文件"]})
    if len(data) > MAX_BYTES:
        raise ValidationError("照片不能超过 5 MB", errors={"photos": ["文件过大"]})
    if not (data.startswith(b"\xff\xd8\xff") or data.startswith(b"\x89PNG\r\n\x1a\n")):
        raise ValidationError("只能上传 JPG 或 PNG 照片", errors={"photos": ["文件类型不对"]})
    try:
        image = Image.open(io.BytesIO(data))
        if image.width * image.height > MAX_PIXELS:
            raise ValidationError("照片像素过大", errors={"photos": ["像素过大"]})
        image.load()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise ValidationError("照片已损坏，无法读取", errors={"photos": ["无法读取"]}) from exc
    content_type, suffix = KINDS[image.format]
    out = io.BytesIO()
    # Re-encoding keeps the pixels and drops EXIF (phone photos carry GPS positions).
    if image.format == "JPEG":
        image.convert("RGB").save(out, "JPEG", quality=85)
    else:
        image.save(out, "PNG")
    name = secrets.token_hex(16) + suffix
    (evidence_dir(village_id) / name).write_bytes(out.getvalue())
    return name, content_type, out.tell()


def photo_path(village_id: int, stored_name: str) -> Path:
    """Return the file of a stored photo (names are ours: no path tricks possible)."""
    if not stored_name or "/" in stored_name or ".." in stored_name:
        raise ValidationError("文件名不正确")
    return evidence_dir(village_id) / stored_name


def store_uploads(village_id: int, uploads) -> list[tuple[str, str, int]]:
    """Validate and store each uploaded photo once; return what `attach_stored` needs."""
    return [store_photo(village_id, upload.read()) for upload in uploads]


def attach_stored(
    session, claim, stored: list[tuple[str, str, int]], *, share: bool = False
) -> int:
    """Attach stored photos to a claim; with `share`, each claim gets its own name for the same
    file (a hard link, or a copy where links are impossible), as a batch's photos do."""
    from points.db import utcnow
    from points.models.claims import Evidence

    for name, content_type, size in stored:
        if share:
            name = _share(claim.village_id, name)
        claim.evidence.append(
            Evidence(
                village_id=claim.village_id,
                claim_id=claim.id,
                stored_name=name,
                content_type=content_type,
                size=size,
                created_at=utcnow(),
            )
        )
    session.flush()
    return len(stored)


def _share(village_id: int, name: str) -> str:
    # One upload, many claims: evidence names are unique per row, the bytes need not be copied.
    folder = evidence_dir(village_id)
    other = secrets.token_hex(16) + Path(name).suffix
    try:
        os.link(folder / name, folder / other)
    except OSError:
        shutil.copyfile(folder / name, folder / other)
    return other


def attach_photos(session, claim, uploads) -> int:
    """Store each uploaded photo and attach it to the claim; return how many were attached."""
    return attach_stored(session, claim, store_uploads(claim.village_id, uploads))
