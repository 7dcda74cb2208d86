"""Goods photos for the shelves: JPEG/PNG checked by reading the image, shrunk to at most
800 px and re-encoded as JPEG (light on slow connections; no metadata kept), stored in the
instance folder under random names."""

from __future__ import annotations

import io
import secrets
from pathlib import Path

from flask import current_app
from PIL import Image, UnidentifiedImageError

from points.errors import ValidationError

MAX_BYTES = 5 * 1024 * 1024
MAX_PIXELS = 40_000_000
SIDE = 800


def goods_dir(village_id: int) -> Path:
    """Return (and create) the village's goods photo folder."""
    path = Path(current_app.instance_path) / "goods" / str(village_id)
    path.mkdir(parents=True, exist_ok=True)
    return path


def store_photo(village_id: int, data: bytes) -> str:
    """Check, shrink and store one photo; return its stored name."""
    if not data or len(data) > MAX_BYTES:
        raise ValidationError("照片须为 5 MB 以内的 JPG 或 PNG", errors={"photo": ["大小不对"]})
    if not (data.startswith(b"\xff\xd8\xff") or data.startswith(b"\x89PNG\r\n\x1a\n")):
        raise ValidationError("只能上传 JPG 或 PNG 照片", errors={"photo": ["文件类型不对"]})
    try:
        image = Image.open(io.BytesIO(data))
        if image.width * image.height > MAX_PIXELS:
            raise ValidationError("照片像素过大", errors={"photo": ["像素过大"]})
        image.load()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise ValidationError("照片已损坏，无法读取", errors={"photo": ["无法读取"]}) from exc
    image = image.convert("RGB")
    image.thumbnail((SIDE, SIDE))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=80)
    name = secrets.token_hex(16) + ".jpg"
    (goods_dir(village_id) / name).write_bytes(out.getvalue())
    return name


def photo_path(village_id: int, name: str) -> Path:
    """Return the file of a stored photo (names are ours: hex and .jpg only)."""
    if not name or not name.endswith(".jpg") or not name[:-4].isalnum():
        raise ValidationError("文件名不正确")
    return goods_dir(village_id) / name
