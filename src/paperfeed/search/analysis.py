"""Text analysis shared by the lexical index, query building and highlighting.

The index and the query side must cut text into the same terms, so both go through the analyzers
defined here (tantivy's own tokenizer and filters, run in-process):

* ``TEXT`` for titles and abstracts: split on non-alphanumerics, drop tokens over 40 bytes,
  lowercase, fold accents to ASCII, drop English stopwords, Snowball English stemming.
* ``NAME`` for author names: the same without stopwords and stemming ("An", "Will" and "De" are
  surnames, and stemming names only adds false matches).

Used at index time (registered on the tantivy index), at query time and when highlighting results.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import tantivy

TEXT_ANALYZER = "paperfeed_text"
NAME_ANALYZER = "paperfeed_name"
MAX_TOKEN_BYTES = 40  # longer "words" are base64, hashes or URLs: noise for ranking


@functools.cache
def text_analyzer() -> tantivy.TextAnalyzer:
    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(MAX_TOKEN_BYTES))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.ascii_fold())
        .filter(tantivy.Filter.stopword("english"))
        .filter(tantivy.Filter.stemmer("english"))
        .build()
    )


@functools.cache
def name_analyzer() -> tantivy.TextAnalyzer:
    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(MAX_TOKEN_BYTES))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.ascii_fold())
        .build()
    )


def register_analyzers(index: tantivy.Index) -> None:
    """Tokenizers are not stored in the index files: register them on every open."""
    index.register_tokenizer(TEXT_ANALYZER, text_analyzer())
    index.register_tokenizer(NAME_ANALYZER, name_analyzer())


@dataclass(frozen=True)
class Token:
    term: str  # the analyzed form, as stored in the index
    position: int  # token position (stopwords leave gaps, as they do in the index)
    start: int  # character offsets into the analyzed text
    end: int


def pre_tokens(text: str, analyzer: tantivy.TextAnalyzer | None = None) -> list[Any]:
    """tantivy's own token objects (``text``, ``position``, ``char_offset_from/_to``): for hot
    loops that would rather not build a :class:`Token` per word."""
    return (analyzer or text_analyzer()).pre_tokenize(text).tokens if text else []


def tokens(text: str, analyzer: tantivy.TextAnalyzer | None = None) -> list[Token]:
    """Analyzed tokens with positions and character offsets."""
    return [Token(t.text, t.position, t.char_offset_from, t.char_offset_to) for t in pre_tokens(text, analyzer)]


def terms(text: str) -> list[str]:
    """The analyzed terms of ``text`` (title/abstract analysis), in order, repeats kept."""
    return text_analyzer().analyze(text) if text else []


def phrase_terms(text: str, analyzer: tantivy.TextAnalyzer | None = None) -> list[tuple[int, str]]:
    """``(offset, term)`` pairs for a phrase query; offsets keep the gaps left by stopwords so that
    "state of the art" matches the indexed "state ... art" exactly as written."""
    toks = tokens(text, analyzer)
    if not toks:
        return []
    first = toks[0].position
    return [(t.position - first, t.term) for t in toks]
