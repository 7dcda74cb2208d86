"""A QR code drawn into a reportlab canvas as vector squares (crisp at any print size, no
image library), for every feature that prints one."""

from __future__ import annotations

import qrcode


def qr_matrix(data: str) -> list[list[bool]]:
    """Return the QR modules of `data`, quiet zone included (error correction M)."""
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=4)
    code.add_data(data)
    code.make(fit=True)
    return code.get_matrix()


def draw_qr(pdf, data: str, x: float, y: float, size: float) -> None:
    """Draw `data` as a QR code of `size` points square with its lower-left corner at (x, y)."""
    modules = qr_matrix(data)
    cell = size / len(modules)
    pdf.setFillColorRGB(0, 0, 0)
    for row, line in enumerate(modules):
        col = 0
        while col < len(line):
            if not line[col]:
                col += 1
                continue
            start = col
            while col < len(line) and line[col]:
                col += 1
            # One rectangle per run of dark modules: fewer path operations, same picture.
            pdf.rect(
                x + start * cell, y + size - (row + 1) * cell, (col - start) * cell, cell,
                stroke=0, fill=1,
            )  # fmt: skip
