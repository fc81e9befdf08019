"""Turn a :class:`~paperfeed.search.query.ParsedQuery` into a tantivy query for the lexical index.

Runs on every keyword search (from :meth:`paperfeed.search.lexical.LexicalIndex.search`). The query is
built from term, phrase, term-set and range queries over analyzed terms; user text never reaches
tantivy's query parser.

Ranking: each query term scores BM25 on ``text`` (title + abstract) plus :data:`TITLE_BOOST` times
BM25 on ``title``; plain words are OR-ed in one flat boolean query, the shape tantivy runs with
block-max WAND. Quoted phrases, authors, categories and dates are required; excluded words and
phrases remove papers.

With ``counting=True`` (trends and timelines, :mod:`paperfeed.search.trends`) the query selects
papers *about* the words rather than ranking papers that mention any of them: every word must
occur (in queries of five or more words, the :func:`words_needed` rarest ones), and nothing is
scored. Required words make an intersection led by the rarest posting list, which stays fast at
1M papers where "any k of n words" (a union) cost up to 170 ms for a long question.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import tantivy

from paperfeed.search.analysis import name_analyzer, phrase_terms, terms
from paperfeed.search.lexical_docs import SCHEMA, category_terms
from paperfeed.search.query import ParsedQuery

TITLE_BOOST = 0.2  # tuned on SciFact train: 0.15-0.3 is a plateau (nDCG@10 0.705 vs 0.700 without)
MAX_QUERY_TERMS = 32  # long questions keep their rarest terms (they carry the BM25 weight): bounded cost


def _term_or_phrase(field: str, pairs: list[tuple[int, str]]) -> tantivy.Query | None:
    if not pairs:
        return None
    if len(pairs) == 1:
        return tantivy.Query.term_query(SCHEMA, field, pairs[0][1])
    words: list[str | tuple[int, str]] = list(pairs)
    return tantivy.Query.phrase_query(SCHEMA, field, words)


def _filter(query: tantivy.Query) -> tantivy.Query:
    """A required clause that restricts without adding to the score."""
    return tantivy.Query.const_score_query(query, 0.0)


def build_query(
    searcher: tantivy.Searcher,
    q: ParsedQuery,
    categories: list[str],
    date_from: date | None,
    date_to: date | None,
    *,
    counting: bool = False,
) -> tuple[tantivy.Query, bool] | None:
    """The tantivy query for ``q`` and whether it ranks by score; None when nothing can match."""
    Occur, Query = tantivy.Occur, tantivy.Query
    stems: list[str] = []
    for word in q.terms:
        stems.extend(terms(word))
    phrases = [phrase_terms(p) for p in q.phrases]
    for pairs in phrases:
        stems.extend(t for _, t in pairs)
    stems = list(dict.fromkeys(stems))
    if len(stems) > MAX_QUERY_TERMS:
        freq = {t: searcher.doc_freq("text", t) for t in stems}
        stems = sorted((t for t in stems if freq[t] > 0), key=lambda t: freq[t])[:MAX_QUERY_TERMS]

    clauses: list[tuple[Any, tantivy.Query]] = []
    if counting:
        stems = _rarest(searcher, stems, words_needed(len(stems)))
    for t in stems:
        clauses.append((Occur.Must if counting else Occur.Should, Query.term_query(SCHEMA, "text", t)))
        if TITLE_BOOST and not counting:
            clauses.append((Occur.Should, Query.boost_query(Query.term_query(SCHEMA, "title", t), TITLE_BOOST)))
    for pairs in phrases:
        phrase = _term_or_phrase("text", pairs)
        if phrase is not None:
            clauses.append((Occur.Must, phrase))
    scored = bool(clauses)
    if not scored and q.has_text and not _has_filters(q, categories, date_from, date_to):
        return None  # only stopwords or punctuation: nothing can match

    for author in q.authors:
        name = _term_or_phrase("authors", phrase_terms(author, name_analyzer()))
        if name is not None:
            clauses.append((Occur.Must, _filter(name)))
    for cats in (q.categories, categories):
        if cats:
            wanted = category_terms(cats, with_archive=False)
            if not wanted:
                return None  # only invalid categories were asked for: nothing matches
            clauses.append((Occur.Must, _filter(Query.term_set_query(SCHEMA, "cat", wanted))))
    lo = max(filter(None, [q.date_from, date_from]), default=None)
    hi = min(filter(None, [q.date_to, date_to]), default=None)
    if lo and hi and lo > hi:
        return None
    if lo or hi:
        start, end = (datetime(d.year, d.month, d.day) if d else None for d in (lo, hi))
        published = Query.range_query(SCHEMA, "published", tantivy.FieldType.Date, start, end)
        clauses.append((Occur.Must, _filter(published)))
    for word in q.excluded_terms + q.excluded_phrases:
        excluded = _term_or_phrase("text", phrase_terms(word))
        if excluded is not None:
            clauses.append((Occur.MustNot, excluded))

    if not any(occur != Occur.MustNot for occur, _ in clauses):
        if not clauses:
            return None  # nothing to search for and nothing to filter on
        clauses.append((Occur.Must, Query.all_query()))  # exclusions only: everything else
    has_should = any(occur == Occur.Should for occur, _ in clauses)
    if counting:
        return Query.boolean_query(clauses), False
    if has_should and any(occur == Occur.Must for occur, _ in clauses):
        # Next to a required clause, optional words would match nothing and still let a paper in:
        # at least one of them must occur. (Without required clauses the plain OR stays as it is,
        # so tantivy can use block-max WAND.)
        return Query.boolean_query(clauses, minimum_number_should_match=1), scored
    return Query.boolean_query(clauses), scored


def words_needed(n: int) -> int:
    """How many of ``n`` query words a paper must contain to count for a trend: all of up to four,
    then two thirds (long natural-language queries rarely have every word in one abstract)."""
    return n if n <= 4 else -(-2 * n // 3)


def _rarest(searcher: tantivy.Searcher, stems: list[str], need: int) -> list[str]:
    """The ``need`` rarest of ``stems`` that occur in the index (a word no paper has would match
    nothing, so it is only kept when too few words occur at all)."""
    if need >= len(stems):
        return stems
    freq = {t: searcher.doc_freq("text", t) for t in stems}
    present = sorted((t for t in stems if freq[t] > 0), key=lambda t: (freq[t], t))
    if len(present) < need:
        return stems
    return present[:need]


def _has_filters(q: ParsedQuery, categories: list[str], date_from: date | None, date_to: date | None) -> bool:
    return bool(q.authors or q.categories or categories or q.date_from or q.date_to or date_from or date_to)
