"""Text-to-HTML helpers for titles and abstracts: LaTeX math to MathML, search highlights.

Used by the Jinja filters (every card, title and abstract on every page) and by the API's
``highlightedTitle`` / ``highlightedSummary``. Everything returned is safe HTML: plain text is
escaped, and converted MathML is re-serialised from a parsed tree through an allow-list, so
nothing an author (or an importer) put into a title can become markup.
"""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from functools import lru_cache

from latex2mathml.converter import convert as _latex_to_mathml
from markupsafe import Markup, escape

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
# $$...$$ first (display), then $...$ (inline); a backslash-escaped dollar is text.
_MATH_RE = re.compile(r"(?<!\\)\$\$(.+?)(?<!\\)\$\$|(?<!\\)\$(.+?)(?<!\\)\$", re.S)
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


def _normalise_spans(spans: Iterable[Sequence[int]], length: int) -> list[tuple[int, int]]:
    """Clamp, drop empty/invalid spans and merge overlaps, so marks never nest or cross."""
    clean = []
    for span in spans:
        try:
            a, b = int(span[0]), int(span[1])
        except (TypeError, ValueError, IndexError):
            continue
        a, b = max(0, a), min(length, b)
        if a < b:
            clean.append((a, b))
    clean.sort()
    merged: list[tuple[int, int]] = []
    for a, b in clean:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return merged


def _marked(text: str, start: int, spans: list[tuple[int, int]]) -> str:
    """Escape ``text`` (which sits at ``start`` in the full string) with <mark> around spans."""
    end = start + len(text)
    out, pos = [], start
    for a, b in spans:
        if b <= start or a >= end:
            continue
        a, b = max(a, start), min(b, end)
        out.append(str(escape(text[pos - start : a - start])))
        out.append(f"<mark>{escape(text[a - start : b - start])}</mark>")
        pos = b
    out.append(str(escape(text[pos - start :])))
    return "".join(out)


def rich_text(text: str | None, spans: Iterable[Sequence[int]] = (), *, math: bool = True) -> Markup:
    """Escaped text with ``$...$``/``$$...$$`` rendered as MathML and ``spans`` wrapped in <mark>.

    A formula that a highlight touches stays as its (escaped, marked) source: the highlight
    is what the reader searched for, so it must stay visible.
    """
    text = text or ""
    marks = _normalise_spans(spans, len(text))
    if not math or "$" not in text:
        return Markup(_marked(text, 0, marks))
    out, pos = [], 0
    for m in _MATH_RE.finditer(text):
        a, b = m.span()
        out.append(_marked(text[pos:a], pos, marks))
        display = m.group(1) is not None
        latex = m.group(1) if display else m.group(2)
        touched = any(sa < b and sb > a for sa, sb in marks)
        html = None if touched else latex_to_mathml(latex, display)
        out.append(html if html is not None else _marked(text[a:b], a, marks))
        pos = b
    out.append(_marked(text[pos:], pos, marks))
    return Markup("".join(out))


def highlight(text: str | None, spans: Iterable[Sequence[int]]) -> Markup:
    """Escaped text with <mark> around spans and no math conversion (for API highlight fields)."""
    return rich_text(text, spans, math=False)


def plain_text(text: str | None) -> str:
    """Titles for places that cannot hold markup (<title>, feeds' titles): collapse whitespace."""
    return " ".join((text or "").split())
