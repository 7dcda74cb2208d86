"""The font every PDF embeds: Noto Sans SC (SIL Open Font License), shipped by the
`pylopdf-fonts-zh-cn` package, so nothing is fetched at run time and a village PC without a
Chinese font pack still shows every character.

reportlab embeds TrueType outlines only and Noto ships CFF (PostScript) outlines, so each
document gets its own subset (just the characters it prints, which also keeps the file small)
converted to TrueType outlines by fontTools, then reportlab embeds a subset of that."""

from __future__ import annotations

import hashlib
import io
import threading
from functools import lru_cache

PREFIX = "NotoSansSC"
ASCII = "".join(chr(c) for c in range(32, 127))
_lock = threading.Lock()


def source_path():
    """The shipped OpenType file of Noto Sans SC."""
    import pylopdf_fonts_zh_cn

    return pylopdf_fonts_zh_cn.sans_path()


@lru_cache(maxsize=1)
def _source_bytes() -> bytes:
    return source_path().read_bytes()


def cjk_font(*texts: str) -> str:
    """Register (once) a font holding every character of `texts` plus ASCII, and return its
    reportlab name; characters the font lacks are simply absent (a test checks there are none)."""
    chars = "".join(sorted(set("".join(texts) + ASCII) - {"\n", "\r", "\t"}))
    name = f"{PREFIX}-{hashlib.sha1(chars.encode(), usedforsecurity=False).hexdigest()[:12]}"
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    with _lock:
        if name not in pdfmetrics.getRegisteredFontNames():
            data = io.BytesIO(_truetype_subset(chars, name))
            data.name = f"{name}.ttf"
            pdfmetrics.registerFont(TTFont(name, data))
    return name


def _truetype_subset(chars: str, ps_name: str) -> bytes:
    """Return Noto Sans SC cut down to `chars`, with quadratic (TrueType) outlines, named
    `ps_name` (reportlab shares state between fonts of one PostScript name: each subset
    needs its own)."""
    from fontTools import subset
    from fontTools.pens.cu2quPen import Cu2QuPen
    from fontTools.pens.ttGlyphPen import TTGlyphPen
    from fontTools.ttLib import TTFont, newTable

    options = subset.Options()
    options.layout_features = []
    options.name_IDs = ["*"]
    options.notdef_outline = True
    font = TTFont(io.BytesIO(_source_bytes()), lazy=True)
    subsetter = subset.Subsetter(options)
    subsetter.populate(text=chars)
    subsetter.subset(font)

    glyphs = font.getGlyphSet()
    order = font.getGlyphOrder()
    glyf = newTable("glyf")
    glyf.glyphOrder = order
    glyf.glyphs = {}
    for glyph_name in order:
        pen = TTGlyphPen(glyphs)
        # Cubic to quadratic within 1 font unit (of 1000): invisible at any print size.
        glyphs[glyph_name].draw(Cu2QuPen(pen, 1.0, reverse_direction=True))
        glyf[glyph_name] = pen.glyph()
    font["glyf"] = glyf
    font["loca"] = newTable("loca")
    for table in ("CFF ", "VORG"):
        if table in font:
            del font[table]
    maxp = font["maxp"]
    maxp.tableVersion = 0x00010000
    for field in (
        "maxTwilightPoints",
        "maxStorage",
        "maxFunctionDefs",
        "maxInstructionDefs",
        "maxStackElements",
        "maxSizeOfInstructions",
        "maxComponentElements",
        "maxComponentDepth",
    ):
        setattr(maxp, field, 0)
    maxp.maxZones = 1
    font["head"].glyphDataFormat = 0
    post = font["post"]
    post.formatType = 2.0
    post.extraNames = []
    post.mapping = {}
    names = font["name"]
    names.names = [n for n in names.names if n.nameID != 6]
    names.setName(ps_name, 6, 3, 1, 0x409)
    names.setName(ps_name, 6, 1, 0, 0)
    font.sfntVersion = "\x00\x01\x00\x00"
    out = io.BytesIO()
    font.save(out)
    return out.getvalue()
