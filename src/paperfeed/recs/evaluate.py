"""``paperfeed eval-recs``: the rankers of issue 14 on the protocol of :mod:`paperfeed.recs.protocol`.

Rankers (each returns the candidate rows best first; ties are broken by a per-query seeded
shuffle, so no ranker profits from the file order):

* ``popularity`` - Hugging Face daily-papers upvotes, then random;
* ``category`` - the user's category histogram: a candidate scores the summed share of the
  library in its categories;
* ``arxiv-sanity-lite`` - its ``compute.py`` TF-IDF (word 1-2-grams, ``max_features=10000``,
  ``min_df=5``, ``max_df=0.5``, English stop words, sublinear tf, its token pattern) fitted on the
  whole corpus, and its ``serve.py`` ``svm_rank``: ``LinearSVC(class_weight="balanced", C=0.01,
  max_iter=10000, tol=1e-6)`` with the library as positives and every other paper in the
  database as negatives. Two departures, both forced: the text is title + abstract without the
  author names compute.py appends (the protocol forbids names), and the "database" is the
  papers listed in the ``SANITY_WINDOW`` listing days up to the test day (what an instance
  that has run for that long holds) because a fit on all 70k papers takes ~25 s, 1,200 of them
  most of a working day on this machine (bench/README.md compares the two on a few users);
* ``zotero-arxiv-daily`` - its ``recommender.py``: library newest first, weights
  ``1 / (1 + log10(rank + 1))`` normalised, score = weighted mean cosine of the candidate's
  embedding to the library's (ours are MiniLM; it uses GIST-small);
* ``paperfeed`` - :mod:`paperfeed.recs.model` with the product's defaults (background sample,
  blend, popularity weight) exactly as :class:`paperfeed.recs.ranker.Ranker` runs it;
* ``paperfeed + not interested`` - before each test day the simulated user dismisses the 5
  top-ranked papers of the previous listing day that are not theirs, and the model is refitted
  with those as negatives.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence, Set
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC

from paperfeed.recs import metrics
from paperfeed.recs import model as m
from paperfeed.recs.protocol import Corpus, Query
from paperfeed.recs.ranker import BACKGROUND_DAYS, BACKGROUND_SIZE, Signal, Weights, blend_extras, signal_weights

SANITY_WINDOW = 30  # listing days of "database" the arxiv-sanity-lite SVM is fitted on
DISMISS = 5

RANKERS = ("popularity", "category", "arxiv-sanity-lite", "zotero-arxiv-daily", "paperfeed", "paperfeed+not-interested")
NEEDS_VECTORS = {"zotero-arxiv-daily", "paperfeed", "paperfeed+not-interested"}


@dataclass
class Context:
    """Everything rankers share, computed once per run."""

    corpus: Corpus
    emb: np.ndarray | None  # float32 (n, dim) aligned with corpus rows; zero rows where missing
    seed: int
    counts: sp.csr_matrix | None = None  # paperfeed's hashed term counts of every paper
    sanity_x: sp.csr_matrix | None = None
    day_index: dict[str, int] = field(default_factory=dict)
    days: list[str] = field(default_factory=list)
    first_row_of_day: dict[str, int] = field(default_factory=dict)
    last_row_of_day: dict[str, int] = field(default_factory=dict)
    user_rows: dict[str, set[int]] = field(default_factory=dict)

    def prepare(self, rankers: Sequence[str]) -> None:
        c = self.corpus
        self.days = c.listing_days()
        self.day_index = {d: i for i, d in enumerate(self.days)}
        for i, d in enumerate(c.days):
            self.first_row_of_day.setdefault(d, i)
            self.last_row_of_day[d] = i
        texts = [m.paper_text(t, a) for t, a in zip(c.titles, c.abstracts, strict=True)]
        if any(r.startswith("paperfeed") for r in rankers):
            self.counts = m.count_matrix(texts)
        if "arxiv-sanity-lite" in rankers:
            self.sanity_x = sanity_tfidf(texts)

    def rows_between(self, first_day: str, last_day: str) -> np.ndarray:
        return np.arange(self.first_row_of_day[first_day], self.last_row_of_day[last_day] + 1)

    def window_start(self, day: str, n_days: int) -> str:
        return self.days[max(0, self.day_index[day] - n_days + 1)]


def sanity_tfidf(texts: Sequence[str]) -> sp.csr_matrix:
    """arxiv-sanity-lite's compute.py vectoriser (defaults of its command line)."""
    v = TfidfVectorizer(
        input="content",
        encoding="utf-8",
        decode_error="replace",
        strip_accents="unicode",
        lowercase=True,
        analyzer="word",
        stop_words="english",
        token_pattern=r"(?u)\b[a-zA-Z_][a-zA-Z0-9_]+\b",
        ngram_range=(1, 2),
        max_features=10000,
        norm="l2",
        use_idf=True,
        smooth_idf=True,
        sublinear_tf=True,
        max_df=0.5,
        min_df=5,
    )
    return sp.csr_matrix(v.fit_transform(texts).astype(np.float32))


def _order(scores: np.ndarray, cands: Sequence[int], rng: np.random.Generator) -> list[int]:
    """Candidates by score, ties in a random (seeded) order."""
    tie = rng.random(len(cands))
    idx = np.lexsort((tie, -np.asarray(scores, dtype=np.float64)))
    return [cands[i] for i in idx]


# -- baselines ------------------------------------------------------------------------------------
def rank_popularity(q: Query, ctx: Context, rng: np.random.Generator) -> list[int]:
    up = ctx.corpus.upvotes
    return _order(np.array([up.get(ctx.corpus.ids[r], -1) for r in q.candidates]), q.candidates, rng)


def rank_category(q: Query, ctx: Context, rng: np.random.Generator) -> list[int]:
    hist: dict[str, float] = {}
    for r in q.library:
        for c in ctx.corpus.categories[r]:
            hist[c] = hist.get(c, 0.0) + 1.0
    total = sum(hist.values()) or 1.0
    s = np.array([sum(hist.get(c, 0.0) for c in ctx.corpus.categories[r]) / total for r in q.candidates])
    return _order(s, q.candidates, rng)


def rank_sanity(q: Query, ctx: Context, rng: np.random.Generator) -> list[int]:
    x = ctx.sanity_x
    assert x is not None
    rows = ctx.rows_between(ctx.window_start(q.day, SANITY_WINDOW), q.day)
    lib = np.asarray(q.library)
    rows = np.union1d(rows, lib)  # the library stays in its database
    y = np.isin(rows, lib).astype(np.float32)
    clf = LinearSVC(class_weight="balanced", verbose=False, max_iter=10000, tol=1e-6, C=0.01)
    clf.fit(x[rows], y)
    return _order(clf.decision_function(x[list(q.candidates)]), q.candidates, rng)


def rank_zotero(q: Query, ctx: Context, rng: np.random.Generator) -> list[int]:
    e = ctx.emb
    assert e is not None
    lib = list(reversed(q.library))  # newest first
    w = 1.0 / (1.0 + np.log10(np.arange(len(lib)) + 1.0))
    w = w / w.sum()
    sim = e[list(q.candidates)] @ e[lib].T
    return _order((sim * w).sum(axis=1) * 10.0, q.candidates, rng)


# -- paperfeed --------------------------------------------------------------------------------
def _features(ctx: Context, rows: Sequence[int] | np.ndarray, space: m.TextSpace) -> m.Features:
    assert ctx.counts is not None and ctx.emb is not None
    idx = np.asarray(rows, dtype=np.int64)
    return m.Features(
        [ctx.corpus.ids[i] for i in idx],
        space.weigh(ctx.counts[idx]),
        ctx.emb[idx],
        [ctx.corpus.categories[i] for i in idx],
    )


def _background(q: Query, ctx: Context, rng: np.random.Generator) -> tuple[m.TextSpace, m.Features]:
    """The product's background: a random sample of papers of the last BACKGROUND_DAYS listing
    days up to the ranked day (the product samples up to its newest listing day)."""
    assert ctx.counts is not None
    rows = ctx.rows_between(ctx.window_start(q.day, BACKGROUND_DAYS), q.day)
    if len(rows) > BACKGROUND_SIZE:
        rows = np.sort(rng.choice(rows, size=BACKGROUND_SIZE, replace=False))
    space = m.TextSpace.fit(ctx.counts[rows])
    return space, _features(ctx, rows, space)


def _signals(q: Query, ctx: Context) -> list[Signal]:
    return [Signal(ctx.corpus.ids[r], 1.0, dt.datetime.fromisoformat(ctx.corpus.days[r])) for r in q.library]


def _paperfeed_scores(
    cands: Sequence[int], model: m.UserModel, space: m.TextSpace, ctx: Context, day: str
) -> np.ndarray:
    f = _features(ctx, cands, space)
    base = model.score(f)
    up = np.array([ctx.corpus.upvotes.get(ctx.corpus.ids[r], 0) for r in cands], dtype=np.float64)
    today = dt.date.fromisoformat(day)
    ages = np.array([(today - dt.date.fromisoformat(ctx.corpus.days[r])).days for r in cands], dtype=np.float64)
    return blend_extras(base, up, ages, Weights())


def _fit(q: Query, ctx: Context, space: m.TextSpace, bg: m.Features, neg_rows: Sequence[int] = ()) -> m.UserModel:
    sig = _signals(q, ctx)
    pos = _features(ctx, q.library, space)
    neg = _features(ctx, neg_rows, space) if neg_rows else None
    return m.fit(pos, bg, pos_weight=signal_weights(sig), neg=neg)


def rank_paperfeed(q: Query, ctx: Context, rng: np.random.Generator) -> list[int]:
    space, bg = _background(q, ctx, rng)
    model = _fit(q, ctx, space, bg)
    return _order(_paperfeed_scores(q.candidates, model, space, ctx, q.day), q.candidates, rng)


def previous_day_dismissals(
    q: Query, ctx: Context, score: Callable[[list[int], str], np.ndarray], rng: np.random.Generator
) -> list[int]:
    """The simulated "not interested": the ``DISMISS`` papers of the listing day before the test
    day that ``score`` ranks highest and that are not the user's (what a reader would dismiss as
    false positives). Empty on the first listing day."""
    i = ctx.day_index[q.day]
    if i == 0:
        return []
    prev = ctx.days[i - 1]
    mine = ctx.user_rows.get(q.user, set())
    lib = set(q.library)
    rows = [int(r) for r in ctx.rows_between(prev, prev) if int(r) not in lib]
    if not rows:
        return []
    return [r for r in _order(score(rows, prev), rows, rng) if r not in mine][:DISMISS]


def rank_paperfeed_dismiss(q: Query, ctx: Context, rng: np.random.Generator) -> list[int]:
    space, bg = _background(q, ctx, rng)
    model = _fit(q, ctx, space, bg)
    dismissed = previous_day_dismissals(
        q, ctx, lambda rows, day: _paperfeed_scores(rows, model, space, ctx, day), rng
    )
    if dismissed:
        model = _fit(q, ctx, space, bg, dismissed)
    return _order(_paperfeed_scores(q.candidates, model, space, ctx, q.day), q.candidates, rng)


RANK_FUNCS: dict[str, Callable[[Query, Context, np.random.Generator], list[int]]] = {
    "popularity": rank_popularity,
    "category": rank_category,
    "arxiv-sanity-lite": rank_sanity,
    "zotero-arxiv-daily": rank_zotero,
    "paperfeed": rank_paperfeed,
    "paperfeed+not-interested": rank_paperfeed_dismiss,
}


@dataclass(frozen=True)
class QueryResult:
    """One ranker on one test paper (``query`` is its index in the full query list; ``paper`` the
    test paper's id, so that results read back can be checked against the sample they belong to)."""

    query: int
    ranker: str
    recall: float
    mrr: float
    ndcg: float
    seconds: float
    paper: str = ""


@dataclass
class RankerResult:
    name: str
    recall: metrics.Interval
    mrr: metrics.Interval
    ndcg: metrics.Interval
    queries: int
    seconds: float


def run_queries(
    queries: Sequence[Query],
    ctx: Context,
    rankers: Sequence[str],
    *,
    shard: tuple[int, int] = (0, 1),
    on_result: Callable[[QueryResult], None] | None = None,
    skip: Set[tuple[int, str]] = frozenset(),
) -> list[QueryResult]:
    """Every ranker on every query of this shard (query index ``i`` with ``i % n == k``), queries
    in the outer loop, so that a run stopped early has scored all rankers on the same queries;
    ``(query, ranker)`` pairs in ``skip`` (an earlier run's results) are not run again."""
    out = []
    k, n_shards = shard
    for i, qu in enumerate(queries):
        if i % n_shards != k:
            continue
        for name in rankers:
            if (i, name) in skip:
                continue
            # The same per-query seed for every ranker and shard: ties and background draws do not
            # depend on which rankers ran or on how the work was split.
            rng = np.random.default_rng([ctx.seed, i])
            t0 = time.perf_counter()
            ranked = RANK_FUNCS[name](qu, ctx, rng)
            secs = time.perf_counter() - t0
            sc = metrics.score_query(ranked, qu.relevant)
            res = QueryResult(i, name, sc.recall, sc.mrr, sc.ndcg, secs, ctx.corpus.ids[qu.test_row])
            out.append(res)
            if on_result is not None:
                on_result(res)
    return out


def summarize(results: Sequence[QueryResult], *, rounds: int, seed: int) -> tuple[list[RankerResult], int]:
    """Per-ranker means with bootstrap intervals over the queries that *every* ranker finished
    (runs may be split in shards or stopped early); also returns that number of queries."""
    by: dict[str, dict[int, QueryResult]] = {}
    for r in results:
        by.setdefault(r.ranker, {})[r.query] = r
    if not by:
        return [], 0
    common = sorted(set.intersection(*(set(d) for d in by.values())))
    out = []
    for name in [n for n in RANKERS if n in by]:
        rows = [by[name][i] for i in common]
        out.append(
            RankerResult(
                name,
                metrics.bootstrap([r.recall for r in rows], rounds=rounds, seed=seed),
                metrics.bootstrap([r.mrr for r in rows], rounds=rounds, seed=seed),
                metrics.bootstrap([r.ndcg for r in rows], rounds=rounds, seed=seed),
                len(rows),
                sum(r.seconds for r in rows),
            )
        )
    return out, len(common)


def run(queries: Sequence[Query], ctx: Context, rankers: Sequence[str], *, rounds: int = 1000) -> list[RankerResult]:
    """All rankers on all queries, summarised."""
    return summarize(run_queries(queries, ctx, rankers), rounds=rounds, seed=ctx.seed)[0]
