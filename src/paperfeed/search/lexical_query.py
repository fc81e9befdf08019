"""Turn a :class:`~paperfeed.search.query.ParsedQuery` into a tantivy query for the lexical index.

Runs on every keyword search (from :meth:`paperfeed.search.lexical.LexicalIndex.search`). The query is
built from term, phrase, term-set and range queries over analyzed terms; user text never reaches
tantivy's query parser.

Ranking: each query term scores BM25 on ``text`` (title + abstract) plus :data:`TITLE_BOOST` times
BM25 on ``title``; plain words are OR-ed in one flat boolean query, the shape tantivy runs with
block-max WAND. Quoted phrases, authors, categories and dates are required; excluded words and
phrases remove papers.

Long queries (a question or a paragraph) can be pruned before that (:func:`select_terms`): search
boilerplate ("papers", "approaches", "how") and words found in a large share of the corpus carry little
BM25 weight each but many of them can outvote the rare technical terms that matter. By default only the
32-term cap applies: the stricter settings measured no better (see the constants below).

With ``counting=True`` (trends and timelines, :mod:`paperfeed.search.trends`) the query selects
papers *about* the words rather than ranking papers that mention any of them: every word must
occur (in queries of five or more words, the :func:`words_needed` rarest ones), and nothing is
scored. Required words make an intersection led by the rarest posting list, which stays fast at
1M papers where "any k of n words" (a union) cost up to 170 ms for a long question. Counting starts from
every word of the query (the rarest :data:`MAX_QUERY_TERMS` of very long ones), not the pruned set.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import tantivy

from paperfeed.search.analysis import name_analyzer, phrase_terms, terms
from paperfeed.search.lexical_docs import SCHEMA, category_terms
from paperfeed.search.query import ParsedQuery

TITLE_BOOST = 0.2  # tuned on SciFact train: 0.15-0.3 is a plateau (nDCG@10 0.705 vs 0.700 without)
MAX_QUERY_TERMS = 32  # long questions keep their rarest terms (they carry the BM25 weight): bounded cost
# Pruning of long queries. The defaults reproduce the plain cap above (a query of more than 32 terms keeps its
# 32 rarest). The best setting on the tuning halves (bench/fit_fusion.py --lexical: 16 terms, share 0.5,
# keep 24, noise words dropped) gained 0.0007 nDCG there and lost on the test halves (bench/README.md), so it
# is not the default; PRUNED holds it for experiments.
LONG_QUERY_TERMS = MAX_QUERY_TERMS  # a query with more distinct terms than this is "long" and gets pruned
MAX_DF_SHARE = 1.0  # in a long query, terms found in more than this share of the papers are dropped
LONG_QUERY_KEEP = MAX_QUERY_TERMS  # and at most this many of the rarest remaining terms are kept
DROP_NOISE = False  # whether long queries drop QUERY_NOISE
PRUNED = {"LONG_QUERY_TERMS": 16, "MAX_DF_SHARE": 0.5, "LONG_QUERY_KEEP": 24, "DROP_NOISE": True}
MIN_KEEP = 3  # never prune below this many terms (the rarest ones, when everything looks common)
# Words of search requests, not of papers ("I am looking for recent papers on approaches to ..."), stemmed
# as the index stems them. Dropped from long queries only: in "survey of methods" they may be the point.
QUERY_NOISE = frozenset(
    terms(
        " ".join(
            """about across address addressing aim any approach approaches best can challenge challenges compare
            comparing comparison consider could current do does effective effectively existing explain
            explore exploring find focus focusing how i identify improve improving interested investigate
            key know learn looking main me method methods my need new novel particularly paper papers
            perform possible practical problem propose recent research researchers should show specific
            studies study such technique techniques understand use used using via want way ways we what
            when where whether which while why work works would""".split()
        )
    )
)


@dataclass(frozen=True)
class TermStat:
    """One analyzed query term, how many papers contain it, and whether the query uses it."""

    term: str
    df: int
    kept: bool


def select_terms(
    stems: list[str], df: dict[str, int], num_docs: int, protected: frozenset[str] = frozenset()
) -> list[TermStat]:
    """Which of a query's distinct analyzed terms to score with (pure function, tested).

    Up to :data:`LONG_QUERY_TERMS` terms: all of them. Longer: drop :data:`QUERY_NOISE` (if
    :data:`DROP_NOISE`) and terms found in more than :data:`MAX_DF_SHARE` of ``num_docs`` papers, keep the
    :data:`LONG_QUERY_KEEP` rarest of the rest; when fewer than :data:`MIN_KEEP` survive, the rarest terms
    that occur at all are kept instead.
    ``protected`` terms (from quoted phrases) are always kept.
    """
    if len(stems) <= LONG_QUERY_TERMS:
        return [TermStat(t, df.get(t, 0), True) for t in stems]
    limit = max(1.0, MAX_DF_SHARE * max(num_docs, 1))
    informative = [t for t in stems if not (DROP_NOISE and t in QUERY_NOISE) and 0 < df.get(t, 0) <= limit]
    if len(informative) < MIN_KEEP:
        informative = [t for t in stems if df.get(t, 0) > 0]
    keep = min(max(MIN_KEEP, LONG_QUERY_KEEP), MAX_QUERY_TERMS)
    kept = set(sorted(informative, key=lambda t: (df[t], t))[:keep]) | (protected & set(stems))
    return [TermStat(t, df.get(t, 0), t in kept) for t in stems]


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


def query_terms(searcher: tantivy.Searcher, q: ParsedQuery) -> list[TermStat]:
    """The query's distinct analyzed terms with their document frequencies, and which are used."""
    stems: list[str] = []
    for word in q.terms:
        stems.extend(terms(word))
    protected: list[str] = []
    for phrase in q.phrases:
        protected.extend(t for _, t in phrase_terms(phrase))
    stems = list(dict.fromkeys([*stems, *protected]))
    df = {t: int(searcher.doc_freq("text", t)) for t in stems}
    return select_terms(stems, df, int(searcher.num_docs), frozenset(protected))


def build_query(
    searcher: tantivy.Searcher,
    q: ParsedQuery,
    categories: list[str],
    date_from: date | None,
    date_to: date | None,
    term_stats: list[TermStat] | None = None,
    *,
    counting: bool = False,
) -> tuple[tantivy.Query, bool] | None:
    """The tantivy query for ``q`` and whether it ranks by score; None when nothing can match.

    ``term_stats`` (from :func:`query_terms`) saves looking the terms up again."""
    Occur, Query = tantivy.Occur, tantivy.Query
    stats = term_stats if term_stats is not None else query_terms(searcher, q)
    stems = _counting_stems(stats) if counting else [s.term for s in stats if s.kept]
    phrases = [phrase_terms(p) for p in q.phrases]

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


def _counting_stems(stats: list[TermStat]) -> list[str]:
    """Every term of the query; of more than :data:`MAX_QUERY_TERMS`, the rarest that occur at all."""
    if len(stats) <= MAX_QUERY_TERMS:
        return [s.term for s in stats]
    return [s.term for s in sorted((s for s in stats if s.df > 0), key=lambda s: s.df)][:MAX_QUERY_TERMS]


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
