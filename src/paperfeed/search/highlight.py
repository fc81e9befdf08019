"""Highlighting: which character spans of a title or abstract matched a query.

Runs when search results are rendered (``highlightedTitle`` / ``highlightedSummary`` in the API,
``<mark>`` in the web pages). It analyzes the text with the index's own analyzer, so matching is
stem-aware exactly like retrieval: a query for "networks" marks "Network" and "networking" (all
stem to "network") but not "nets". Quoted phrases are marked as one span only where the whole phrase
occurs (stopwords inside it included). Excluded words, author and filter values are never marked.
"""

from __future__ import annotations

import functools

from paperfeed.search.analysis import phrase_terms, pre_tokens, terms, tokens
from paperfeed.search.query import ParsedQuery

MAX_HIGHLIGHT_CHARS = 100_000  # abstracts are ~2k characters; anything past this is not shown anyway


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


def highlight(text: str, q: ParsedQuery) -> list[tuple[int, int]]:
    """Sorted, non-overlapping ``(start, end)`` character spans of ``text`` that match ``q``'s words
    and phrases (``text[start:end]`` is the matched part). Never raises on odd input."""
    if not text or not (q.terms or q.phrases):
        return []
    text = text[:MAX_HIGHLIGHT_CHARS]
    wanted, multi = _targets(tuple(q.terms), tuple(q.phrases))
    if not wanted and not multi:
        return []
    if not multi:  # the common case: plain words, no Token objects needed
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
