"""Text-to-HTML helpers for titles and abstracts: ``$...$`` math as MathML, text-mode LaTeX
(``\\textbf{..}``, ``\\emph{..}``, ``\\url{..}``, ``--``; ``paperfeed.latex_text``) as text, search highlights.

Used by the Jinja filters (every card, title and abstract on every page) and by the API's
``highlightedTitle`` / ``highlightedSummary``. Everything returned is safe HTML: plain text is
escaped, and math goes through :func:`paperfeed.latex.latex_to_mathml`, whose allow-list keeps
anything an author (or an importer) put into a title from becoming markup.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from markupsafe import Markup, escape

from paperfeed import latex_text
from paperfeed.latex import latex_to_mathml

# $$...$$ first (display), then $...$ (inline); a backslash-escaped dollar is text.
_MATH_RE = re.compile(r"(?<!\\)\$\$(.+?)(?<!\\)\$\$|(?<!\\)\$(.+?)(?<!\\)\$", re.S)


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
    if math and latex_text.has_text_latex(text):
        return Markup(latex_text.to_html(text, lambda shown, a, b, src: _shown(shown, a, b, src, marks),
                                         lambda src, a, b: _math(src, a, b, marks)))  # fmt: skip
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


def _shown(shown: str, a: int, b: int, src: str, marks: list[tuple[int, int]]) -> str:
    """Visible text of one token: its source (with marks) or, when LaTeX was resolved (``\\%``),
    what it stands for, marked whole when a highlight touches it."""
    if shown == src:
        return _marked(src, a, marks)
    touched = any(sa < b and sb > a for sa, sb in marks)
    return f"<mark>{escape(shown)}</mark>" if touched else str(escape(shown))


def _math(src: str, a: int, b: int, marks: list[tuple[int, int]]) -> str:
    m = _MATH_RE.fullmatch(src)
    touched = any(sa < b and sb > a for sa, sb in marks)
    if m is None or touched:
        return _marked(src, a, marks)
    display = m.group(1) is not None
    html = latex_to_mathml(m.group(1) if display else m.group(2), display)
    return html if html is not None else _marked(src, a, marks)


def highlight(text: str | None, spans: Iterable[Sequence[int]]) -> Markup:
    """Escaped text with <mark> around spans and no math conversion (for API highlight fields)."""
    return rich_text(text, spans, math=False)


def plain_text(text: str | None) -> str:
    """Titles for places that cannot hold markup (<title>, feeds' titles): collapse whitespace."""
    return " ".join((text or "").split())
