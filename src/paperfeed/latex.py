"""LaTeX math to safe MathML: one formula in, allow-listed presentation MathML (or None) out.

Both the pages (``web/render.py``: titles and abstracts) and the community comments (rendered once
when written, ``community/comments.py``) show ``$...$`` math this way, so the converter and its
allow-list live here, in the bottom layer, where either may import it. The converter's output is
re-serialised from a parsed tree through the allow-list, so nothing an author put into a formula
(e.g. a ``<script>`` smuggled through ``\\text{...}``) can become markup. Pure code: no I/O.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from functools import lru_cache

from latex2mathml.converter import convert as _latex_to_mathml
from markupsafe import escape

log = logging.getLogger(__name__)

MATHML_NS = "http://www.w3.org/1998/Math/MathML"
# Presentation MathML only; anything else in the converter's output (e.g. a <script> smuggled
# through \text{...}) makes the whole formula fall back to its escaped source.
_TAGS = frozenset(
    "math mrow mi mn mo ms mtext mspace msub msup msubsup munder mover munderover mfrac msqrt mroot "
    "mstyle merror mpadded mphantom menclose mtable mtr mtd mlabeledtr mmultiscripts mprescripts none "
    "semantics annotation".split()
)
_ATTRS = frozenset(
    "display mathvariant stretchy fence separator lspace rspace columnalign columnlines rowlines rowspacing "
    "columnspacing accent accentunder movablelimits largeop symmetric minsize maxsize width height depth "
    "linethickness notation open close separators displaystyle scriptlevel mathsize form encoding".split()
)
_MAX_FORMULA = 2_000  # longer "formulas" are almost surely stray dollars; keep them as text


def _serialise(el: ET.Element, out: list[str]) -> None:
    tag = el.tag.split("}", 1)[-1]
    if tag not in _TAGS:
        raise ValueError(f"element {tag!r} not allowed in MathML")
    attrs = []
    for key, value in el.attrib.items():
        key = key.split("}", 1)[-1]
        if key in _ATTRS:
            attrs.append(f' {key}="{escape(value)}"')
    out.append(f"<{tag}{''.join(attrs)}>")
    if el.text:
        out.append(str(escape(el.text)))
    for child in el:
        _serialise(child, out)
        if child.tail:
            out.append(str(escape(child.tail)))
    out.append(f"</{tag}>")


@lru_cache(maxsize=4096)
def latex_to_mathml(latex: str, display: bool = False) -> str | None:
    """Safe MathML for one formula, or None when it cannot be converted (caller keeps the source)."""
    if not latex.strip() or len(latex) > _MAX_FORMULA:
        return None
    try:
        raw = _latex_to_mathml(latex, display="block" if display else "inline")
        root = ET.fromstring(raw)
        out: list[str] = []
        _serialise(root, out)
    except Exception as exc:  # the converter raises many types on odd input; all mean "keep the source"
        log.debug("math conversion failed for %r: %s", latex[:80], exc)
        return None
    html = "".join(out)
    # The converter's root carries no namespace attribute after re-serialisation; HTML parsers
    # put <math> in the MathML namespace by themselves.
    return html
