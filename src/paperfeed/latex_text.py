"""Text-mode LaTeX in titles and abstracts (outside ``$...$``) read as text.

About 5% of arXiv abstracts use text-mode commands: ``\\textbf{PRISM}``, ``\\emph{...}``,
``\\url{...}``, ``\\%``, ``--``, ``\\`\\`quotes''``. This module renders the common ones (bold,
italic, monospace, small caps, URLs, escapes, dashes, quotes) and strips any other command to its
text, in three forms: HTML for the pages (:func:`to_html`, used by ``web/render.py``), Markdown
(:func:`to_markdown`, the ``.md`` twins) and plain text (:func:`to_plain`: feeds, digests and the
search index, so ``textbf`` is never a search term). Math (``$...$``) is left alone: the pages turn
it into MathML (``paperfeed.latex``). Sits beside that converter in the bottom layer so web,
search and digest can all use it. Pure code: no I/O.

The HTML form keeps every piece of visible text at its offset in the source, so search highlight
spans (computed on the stored abstract) still land on the right words.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from markupsafe import escape

__all__ = ["has_text_latex", "to_html", "to_markdown", "to_plain", "tokens"]

# Commands whose argument is shown in a style; declarations ({\bf x}) switch the rest of a group.
STYLES = {
    "textbf": "b", "bf": "b", "bfseries": "b", "mathbf": "b",
    "emph": "i", "textit": "i", "it": "i", "em": "i", "itshape": "i", "textsl": "i", "sl": "i",
    "texttt": "tt", "tt": "tt", "ttfamily": "tt",
    "textsc": "sc", "sc": "sc", "scshape": "sc",
    "underline": "u", "textsf": None, "textrm": None, "textnormal": None, "mbox": None, "text": None,
}  # fmt: skip
DECLARATIONS = frozenset({"bf", "bfseries", "it", "em", "itshape", "sl", "tt", "ttfamily", "sc", "scshape"})
DROP = frozenset({"cite", "citep", "citet", "ref", "eqref", "label", "vspace", "hspace", "footnotemark"})
SYMBOLS = {
    "%": "%", "&": "&", "_": "_", "#": "#", "$": "$", "{": "{", "}": "}", " ": " ", ",": "\u2009",
    "\\": " ", "LaTeX": "LaTeX", "TeX": "TeX", "ldots": "…", "dots": "…", "textendash": "–",
    "textemdash": "—", "textasciitilde": "~", "textbackslash": "\\", "S": "§", "copyright": "©",
    "textregistered": "®", "texttrademark": "™", "ie": "i.e.", "eg": "e.g.", "etal": "et al.",
}  # fmt: skip
ACCENTS = {"'": "\u0301", "`": "\u0300", "^": "\u0302", '"': "\u0308", "~": "\u0303", "c": "\u0327", "=": "\u0304"}

_COMMAND = re.compile(r"\\([A-Za-z]+)\*?|\\(.)", re.S)
_SPECIAL = re.compile(r"\\|\{|\}|---|--|``|''|(?<=[\w.,;:])~(?=\w)|\$")
_MATH = re.compile(r"(?<!\\)\$\$.+?(?<!\\)\$\$|(?<!\\)\$.+?(?<!\\)\$", re.S)
_HINT = re.compile(r"\\[A-Za-z%&_#$]|--|``|(?<=[\w.,;:])~(?=\w)")


def has_text_latex(text: str | None) -> bool:
    """Whether ``text`` has anything this module would change (most abstracts do not)."""
    return bool(text) and bool(_HINT.search(text or ""))


@dataclass(frozen=True, slots=True)
class Tok:
    """One piece of the output: visible text from ``start:end`` of the source (``text`` is what to
    show, which may differ from the source, e.g. ``\\%`` -> ``%``), a style ``open``/``close``,
    a link, or math (source kept)."""

    kind: str  # text | open | close | link | math
    start: int
    end: int
    text: str = ""
    style: str | None = None
    href: str | None = None


def _brace_group(s: str, i: int) -> tuple[str, int] | None:
    """The balanced ``{...}`` at ``s[i]`` (after optional spaces): (content, index after it)."""
    while i < len(s) and s[i] == " ":
        i += 1
    if i >= len(s) or s[i] != "{":
        return None
    depth = 0
    for j in range(i, len(s)):
        if s[j] == "{" and (j == 0 or s[j - 1] != "\\"):
            depth += 1
        elif s[j] == "}" and s[j - 1] != "\\":
            depth -= 1
            if depth == 0:
                return s[i + 1 : j], j + 1
    return None


def _safe_url(url: str) -> str | None:
    url = url.strip()
    return url if url.lower().startswith(("http://", "https://")) else None


def tokens(s: str) -> Iterator[Tok]:
    """The source as tokens; unbalanced braces and unknown commands degrade to their text."""
    stack: list[str | None] = []  # per open group: the style it closes (None: none)
    pos = 0
    n = len(s)
    while pos < n:
        m = _SPECIAL.search(s, pos)
        if m is None:
            yield Tok("text", pos, n, s[pos:])
            break
        if m.start() > pos:
            yield Tok("text", pos, m.start(), s[pos : m.start()])
        tok = m.group()
        i = m.start()
        if tok == "$":
            mm = _MATH.match(s, i)
            if mm:
                yield Tok("math", i, mm.end(), mm.group())
                pos = mm.end()
            else:
                yield Tok("text", i, i + 1, "$")
                pos = i + 1
            continue
        if tok in ("---", "--", "``", "''", "~"):
            show = {"---": "—", "--": "–", "``": "“", "''": "”", "~": "\u00a0"}[tok]
            yield Tok("text", i, m.end(), show)
            pos = m.end()
            continue
        if tok == "{":
            stack.append(None)
            pos = i + 1
            continue
        if tok == "}":
            if stack:
                style = stack.pop()
                if style:
                    yield Tok("close", i, i + 1, style=style)
            pos = i + 1
            continue
        cm = _COMMAND.match(s, i)
        if cm is None:  # a lone backslash at the very end
            yield Tok("text", i, i + 1, "\\")
            pos = i + 1
            continue
        name = cm.group(1) or cm.group(2)
        after = cm.end()
        if cm.group(2) is not None and name in ACCENTS and after < n:
            arg = _brace_group(s, after)
            base, end = (arg[0], arg[1]) if arg else (s[after], after + 1)
            yield Tok("text", i, end, unicodedata.normalize("NFC", base + ACCENTS[name]))
            pos = end
            continue
        if name in SYMBOLS:
            yield Tok("text", i, after, SYMBOLS[name])
            pos = after
            continue
        if name in ("url", "href"):
            arg = _brace_group(s, after)
            if arg is not None:
                url, end = arg
                href = _safe_url(url)
                if name == "href":
                    label = _brace_group(s, end)
                    if label is not None:
                        yield Tok("link", i, label[1], label[0], href=href)
                        pos = label[1]
                        continue
                yield Tok("link", i, end, url.strip(), href=href)
                pos = end
                continue
        if name in DROP:
            arg = _brace_group(s, after)
            pos = arg[1] if arg else after
            continue
        if name in DECLARATIONS:
            style = STYLES[name]
            while after < n and s[after] == " ":  # the space after a declaration is not text
                after += 1
            if stack and stack[-1] is None:
                stack[-1] = style
                yield Tok("open", i, after, style=style)
            pos = after
            continue
        # \textbf{...} and any other command with an argument: open a group for it.
        j = after
        while j < n and s[j] == " ":
            j += 1
        if j < n and s[j] == "{":
            style = STYLES.get(name)
            stack.append(style)
            if style:
                yield Tok("open", i, j + 1, style=style)
            pos = j + 1
            continue
        pos = after  # an unknown command without argument: dropped
    for style in reversed(stack):  # a cut text (preview) may leave groups open
        if style:
            yield Tok("close", n, n, style=style)


_HTML_TAGS = {"b": ("<strong>", "</strong>"), "i": ("<em>", "</em>"), "tt": ("<code>", "</code>"),
              "sc": ('<span class="sc">', "</span>"), "u": ("<u>", "</u>")}  # fmt: skip
_MD_TAGS = {"b": ("**", "**"), "i": ("*", "*"), "tt": ("`", "`"), "sc": ("", ""), "u": ("", "")}


def to_html(s: str, text: Callable[[str, int, int, str], str], math: Callable[[str, int, int], str]) -> str:
    """HTML: ``text(shown, start, end, source)`` renders visible text (escaping, highlight marks),
    ``math(source, start, end)`` renders a formula. Styles become tags, URLs links."""
    out = []
    for t in tokens(s):
        if t.kind == "text":
            out.append(text(t.text, t.start, t.end, s[t.start : t.end]))
        elif t.kind == "math":
            out.append(math(t.text, t.start, t.end))
        elif t.kind == "open":
            out.append(_HTML_TAGS[t.style or "b"][0])
        elif t.kind == "close":
            out.append(_HTML_TAGS[t.style or "b"][1])
        elif t.kind == "link":
            label = to_plain(t.text)
            if t.href:
                out.append(f'<a href="{escape(t.href)}" rel="nofollow noopener">{escape(label)}</a>')
            else:
                out.append(str(escape(label)))
    return "".join(out)


def to_plain(s: str) -> str:
    """Plain text: commands stripped to their text, escapes and dashes resolved, math kept as is."""
    if not has_text_latex(s):
        return s
    return "".join(t.text for t in tokens(s) if t.kind in ("text", "math", "link"))


_MD_ESCAPE = re.compile(r"([\\`*_\[\]<>#|])")


def to_markdown(s: str) -> str:
    """Markdown: bold/italic/monospace marks, ``<url>`` links, math kept as ``$...$``."""
    out = []
    for t in tokens(s):
        if t.kind == "text":
            out.append(_MD_ESCAPE.sub(r"\\\1", t.text))
        elif t.kind == "math":
            out.append(t.text)
        elif t.kind in ("open", "close"):
            out.append(_MD_TAGS[t.style or "b"][0 if t.kind == "open" else 1])
        elif t.kind == "link":
            plain = to_plain(t.text)
            label = _MD_ESCAPE.sub(r"\\\1", plain)
            out.append((f"<{t.href}>" if plain == t.href else f"[{label}]({t.href})") if t.href else label)
    return "".join(out)
