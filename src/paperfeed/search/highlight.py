"""Highlighting: which character spans of a title or abstract matched a query.

Runs when search results are rendered (``highlightedTitle`` / ``highlightedSummary`` in the API,
``<mark>`` in the web pages). It analyzes the text with the index's own analyzer, so matching is
stem-aware exactly like retrieval: a query for "networks" marks "Network" and "networking" (all
stem to "network") but not "nets". Quoted phrases are marked as one span only where the whole phrase
occurs (stopwords inside it included). Excluded words, author and filter values are never marked.

Every search page highlights ~40 texts, so the common case (plain words, an ASCII text) avoids
building one tantivy token object per word: a regular expression finds the few words that could
analyze to a wanted term (a Snowball stem minus its last letter is a prefix of the word it came
from), and only those are analyzed, each distinct word once per process. The result is the same
as the analyzer's (``tests/test_highlight.py`` checks it word for word on real abstracts).
"""

from __future__ import annotations

import functools
import re

from paperfeed.search.analysis import MAX_TOKEN_BYTES, phrase_terms, pre_tokens, terms, tokens
from paperfeed.search.query import ParsedQuery

MAX_HIGHLIGHT_CHARS = 100_000  # abstracts are ~2k characters; anything past this is not shown anyway
MAX_CACHED_WORDS = 200_000  # analyzed words kept per process (a vocabulary; ~30 MB at most)
_term_of_word: dict[str, str | None] = {}


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1]:
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


Phrase = list[tuple[int, str]]  # (offset, term) pairs from phrase_terms


@functools.lru_cache(maxsize=1024)
def _targets(words: tuple[str, ...], quoted: tuple[str, ...]) -> tuple[frozenset[str], tuple[Phrase, ...]]:
    """Analyzed query words and multi-word phrases, once per query (a page highlights ~40 texts)."""
    wanted: set[str] = set()
    for word in words:
        wanted.update(terms(word))
    multi = []
    for p in (phrase_terms(ph) for ph in quoted):
        if len(p) == 1:  # a quoted single word is just a word
            wanted.add(p[0][1])
        elif p:
            multi.append(p)
    return frozenset(wanted), tuple(multi)


@functools.lru_cache(maxsize=1024)
def _candidates(wanted: frozenset[str]) -> re.Pattern[str] | None:
    """A pattern matching, in ASCII text, every whole word whose term could be in ``wanted``.

    The simple tokenizer cuts ASCII text into runs of letters and digits; stemming only rewrites
    a word's end, so a term without its last letter starts the word it came from. The one other
    shape is Snowball's "-ying" words of one letter more ("lying" -> "lie"). A term with
    characters that ASCII folding could not remove never occurs in ASCII text.
    """
    prefixes: set[str] = set()
    for term in wanted:
        if not term.isascii():
            continue
        prefixes.add(term[:-1] or term)
        if term.endswith("ie"):
            prefixes.add(term[:-2] + "y")
    if not prefixes:
        return None
    alternatives = "|".join(re.escape(p) for p in sorted(prefixes, key=len, reverse=True))
    # Searched in the lowercased text with "_" made a space, where \b is exactly a word's start.
    return re.compile(rf"\b(?:{alternatives})[a-z0-9]*", re.ASCII)


def _term(word: str) -> str | None:
    """The analyzed term of one ASCII word (None for a stopword or an over-long token), cached: only
    words the analyzer keeps are, so the cache holds at most MAX_CACHED_WORDS short keys."""
    if len(word) >= MAX_TOKEN_BYTES:  # dropped by the analyzer's length filter (ASCII: a byte a letter)
        return None
    found = _term_of_word.get(word)
    if found is None and word not in _term_of_word:
        analyzed = terms(word)
        found = analyzed[0] if analyzed else None
        if len(_term_of_word) >= MAX_CACHED_WORDS:
            _term_of_word.clear()
        _term_of_word[word] = found
    return found


def highlight(text: str, q: ParsedQuery) -> list[tuple[int, int]]:
    """Sorted, non-overlapping ``(start, end)`` character spans of ``text`` that match ``q``'s words
    and phrases (``text[start:end]`` is the matched part). Never raises on odd input."""
    if not text or not (q.terms or q.phrases):
        return []
    text = text[:MAX_HIGHLIGHT_CHARS]
    wanted, multi = _targets(tuple(q.terms), tuple(q.phrases))
    if not wanted and not multi:
        return []
    if not multi and text.isascii():  # the common case: only the candidate words are analyzed
        pattern = _candidates(wanted)
        if pattern is None:
            return []
        lowered = text.lower()
        if "_" in lowered:  # the tokenizer splits on it; \w (so \b) would not
            lowered = lowered.replace("_", " ")
        return _merge([m.span() for m in pattern.finditer(lowered) if _term(m.group()) in wanted])
    if not multi:  # plain words in text with other characters: the tokenizer decides what a word is
        return _merge([(t.char_offset_from, t.char_offset_to) for t in pre_tokens(text) if t.text in wanted])
    toks = tokens(text)
    spans = [(t.start, t.end) for t in toks if t.term in wanted]
    by_position = {t.position: t for t in toks}
    for t in toks:
        for phrase in multi:
            first_offset, first_term = phrase[0]
            if t.term != first_term:
                continue
            base = t.position - first_offset
            matched = [by_position.get(base + off) for off, _ in phrase]
            if all(m is not None and m.term == term for m, (_, term) in zip(matched, phrase, strict=True)):
                first, last = matched[0], matched[-1]
                if first is not None and last is not None:  # always: all() above checked every one
                    spans.append((first.start, last.end))
    return _merge(spans)
