"""A fake camera for Chromium: a QR code drawn into a Y4M file that Chromium loops as the
webcam (--use-file-for-fake-video-capture). Recipe: /work/shared/recipes/browser-camera-qr.md."""

from __future__ import annotations

import os
from pathlib import Path

import qrcode
from PIL import Image


def write_y4m(path: Path, img: Image.Image, width=640, height=480, frames=1, fps=30) -> None:
    """Write `img` centred on white (the quiet zone) as an I420 Y4M, atomically."""
    canvas = Image.new("RGB", (width, height), "white")
    img = img.copy()
    img.thumbnail((width - 40, height - 40), Image.NEAREST)
    canvas.paste(img, ((width - img.width) // 2, (height - img.height) // 2))
    y, cb, cr = canvas.convert("YCbCr").split()
    half = (width // 2, height // 2)
    frame = y.tobytes() + cb.resize(half).tobytes() + cr.resize(half).tobytes()
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        f.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            f.write(b"FRAME\n" + frame)
    os.replace(tmp, path)  # Chromium re-reads the file on each getUserMedia


def show_qr(path: Path, text: str) -> None:
    """Put a QR code of `text` in front of the fake camera."""
    code = qrcode.QRCode(box_size=10, border=4)
    code.add_data(text)
    code.make(fit=True)
    write_y4m(path, code.make_image().convert("RGB"))


def show_nothing(path: Path) -> None:
    write_y4m(path, Image.new("RGB", (8, 8), "white"))
