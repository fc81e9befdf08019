"""Math and highlight rendering: MathML for $...$, escaping of everything else, safe <mark>s."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from hypothesis import given, settings
from hypothesis import strategies as st

from paperfeed.latex import _TAGS, latex_to_mathml
from paperfeed.web.render import highlight, rich_text


def test_inline_and_display_math_become_mathml() -> None:
    html = str(rich_text("Loss $\\mathcal{L} = x^2$ and $$\\frac{a}{b}$$ here"))
    assert html.startswith('Loss <math display="inline">')
    assert '<math display="block"><mrow><mfrac>' in html
    assert html.endswith(" here")


def test_text_outside_math_is_escaped() -> None:
    assert str(rich_text("<script>alert(1)</script> & co")) == "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co"


def test_markup_smuggled_through_latex_falls_back_to_escaped_source() -> None:
    # latex2mathml copies \text{...} into the output verbatim; the allow-list must catch it.
    html = str(rich_text("A $\\text{<script>alert(1)</script>}$ B"))
    assert "<script" not in html
    assert "&lt;script&gt;" in html


def test_broken_latex_keeps_its_source() -> None:
    assert latex_to_mathml("\\begin{array}") is None  # the caller then shows the source
    html = str(rich_text("cost is $5 and $"))  # stray dollars: no crash, text kept
    assert "5" in html


def test_escaped_dollars_are_text() -> None:
    # An escaped dollar is not math; like any text-mode escape it reads as the character itself.
    assert str(rich_text("costs \\$5 or \\$6")) == "costs $5 or $6"


def test_highlight_marks_spans_and_escapes() -> None:
    assert str(highlight("a <b> c", [(0, 1), (6, 7)])) == "<mark>a</mark> &lt;b&gt; <mark>c</mark>"
    # Overlapping and out-of-range spans are merged and clamped.
    assert str(highlight("abcdef", [(0, 3), (2, 4), (5, 99), (-5, 0)])) == "<mark>abcd</mark>e<mark>f</mark>"


def test_a_highlight_inside_math_keeps_the_formula_as_marked_source() -> None:
    text = "about $loss$ terms"
    start = text.index("loss")
    html = str(rich_text(text, [(start, start + 4)]))
    assert "<math" not in html and "<mark>loss</mark>" in html


TOKENS = list("ab$\\{}<>&^_ x\"'") + ["\\text{", "\\frac", "<script>", "$$"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=25).map("".join))
def test_any_input_renders_to_well_formed_safe_markup(text: str) -> None:
    html = str(rich_text(text, [(0, 2)]))
    # Well formed once wrapped, and no element but presentation MathML and <mark>.
    root = ET.fromstring(f"<div>{html}</div>")
    for el in root.iter():
        assert el.tag in _TAGS | {"div", "mark"}, el.tag
