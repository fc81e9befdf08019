"""Text-mode LaTeX in abstracts (outside ``$...$``) reads as text on pages, in Markdown, feeds,
digests and the search index; math is left to the MathML converter; highlights stay on their words."""

from __future__ import annotations

from markupsafe import escape

from paperfeed.latex_text import has_text_latex, to_html, to_markdown, to_plain
from paperfeed.web.render import rich_text

SRC = (
    "We propose \\textbf{PRISM} (\\textbf{P}reference \\textbf{R}anking) with 5\\% gains -- see "
    "\\url{https://x.org/a_b}. \\emph{Nested \\textbf{bold}} and {\\bf decl} \\LaTeX is ok. Caf\\'e "
    "``quoted'' \\cite{foo} Fig.~3 and ~10x $x_1$ \\href{https://a.b}{site} \\unknown{kept} "
    "\\textsc{SmallCaps} \\texttt{code} \\href{javascript:alert(1)}{bad}"
)


def _html(s: str) -> str:
    return to_html(s, lambda shown, a, b, src: str(escape(shown)), lambda m, a, b: "<math/>")


def test_plain_text_has_no_commands() -> None:
    assert to_plain(SRC) == (
        "We propose PRISM (Preference Ranking) with 5% gains – see https://x.org/a_b. Nested bold and decl "
        "LaTeX is ok. Café “quoted”  Fig.\u00a03 and ~10x $x_1$ site kept SmallCaps code bad"
    )
    assert to_plain("no latex here, 3 - 4 ~ 5") == "no latex here, 3 - 4 ~ 5"
    assert not has_text_latex("plain $x$ math only") and has_text_latex("a \\emph{b}")


def test_html_renders_styles_links_and_escapes() -> None:
    html = _html(SRC)
    assert "<strong>PRISM</strong>" in html and "<em>Nested <strong>bold</strong></em>" in html
    assert '<a href="https://x.org/a_b" rel="nofollow noopener">https://x.org/a_b</a>' in html
    assert '<span class="sc">SmallCaps</span>' in html and "<code>code</code>" in html
    assert "javascript:" not in html and "bad" in html  # a non-http link is text only
    assert "\\" not in html and "textbf" not in html and "<math/>" in html
    assert _html("\\textbf{cut") == "<strong>cut</strong>"  # a preview cut inside a group closes it
    assert _html("\\textbf{<script>}") == "<strong>&lt;script&gt;</strong>"


def test_markdown() -> None:
    md = to_markdown(SRC)
    assert "**PRISM**" in md and "*Nested **bold***" in md and "<https://x.org/a_b>" in md
    assert "[site](https://a.b)" in md and "`code`" in md and "$x_1$" in md


def test_page_rendering_keeps_highlights_on_the_words() -> None:
    text = "A \\textbf{sparse} attention with 5\\% cost"
    spans = [(text.index("sparse"), text.index("sparse") + 6), (text.index("5"), text.index("5") + 3)]
    html = str(rich_text(text, spans))
    assert html == "A <strong><mark>sparse</mark></strong> attention with <mark>5</mark><mark>%</mark> cost"


def test_search_index_has_no_command_terms(settings, db) -> None:  # type: ignore[no-untyped-def]
    from paperfeed.search.lexical import LexicalIndex
    from paperfeed.search.query import parse_query

    from . import factories as f

    f.add_paper(db, title="\\textsc{Prism}: ranking", abstract="We propose \\textbf{PRISM}, \\emph{fast} ranking.")
    index = LexicalIndex(settings)
    index.update(db, progress=False)
    assert index.search(parse_query("textbf")).hits == [] and index.search(parse_query("emph")).hits == []
    assert len(index.search(parse_query("prism")).hits) == 1
