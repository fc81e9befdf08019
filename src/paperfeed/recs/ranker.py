"""The "for you" ranker: a user's signals in, ranked papers with a score, a relevance and the
reasons out. The web page (/for-you), the private feeds, the digest section and
``paperfeed eval-recs`` all call this module.

Interface (stable; other layers build on it):

* :class:`UserSignals` - what a user told us: saves, upvotes, claimed (authored) papers as
  positives (:class:`Signal` with a weight and a time), "not interested" papers as negatives,
  hidden papers, followed and excluded categories, excluded words, and :class:`Weights`
  (popularity, recency, learn from upvotes). The caller (the ``personal`` code) builds it with
  :func:`from_library` from ``store.library_store.user_signals`` plus follows, claims and the
  user's settings; this module never reads user tables itself.
* :class:`Ranker` - one per process (it caches paper features and the background sample):
  ``ranker.candidates()`` lists what a for-you page shows (the last 7 listing days plus the
  daily picks), ``ranker.fit(signals)`` learns the user's model (``None`` when there is nothing
  to learn from: cold start), ``ranker.rank(signals, candidates, model=...)`` returns
  :class:`RankedPaper` items, best first.
* :class:`RankedPaper` - ``score`` orders the list (model + popularity + recency by the user's
  weights); ``relevance`` (0..1) is the share of random recent papers the paper's *model* score
  beats, so a digest threshold of 0.98 keeps about the top 2% of a day, whatever the user;
  ``reasons`` are short human sentences with the library paper they point to.

Hidden, "not interested", excluded-category and excluded-word papers and the user's own
positives never appear in the result.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Literal

import numpy as np
import scipy.sparse as sp
from sqlalchemy.exc import SQLAlchemyError

from paperfeed.recs import model as m
from paperfeed.recs import persisted
from paperfeed.recs.runtime import Recent, one_blas_thread
from paperfeed.store import library_store, user_model_store
from paperfeed.store import recs_queries as q
from paperfeed.store.db import Database

log = logging.getLogger(__name__)

BACKGROUND_SIZE = 2000
BACKGROUND_DAYS = 60  # listing days the background sample is drawn from
CANDIDATE_DAYS = 7
POPULAR_UPVOTES = 10  # "popular" reason from this many upvotes
MODEL_CACHE = 512  # user models a Ranker keeps (least recently used go first)
# A stored model outlives the background sample it was fitted against (recent papers change
# slowly; refitting every user every day is what persisting models avoids) by at most this.
MODEL_MAX_AGE_DAYS = 30
BACKGROUND_CHECK_S = 30.0  # how often a ranker looks for a newer listing day (a new background)
POPULARITY_TTL = 30.0  # seconds a candidate list's upvote counts are reused (votes move slowly)
CANDIDATES_TTL = 30.0  # seconds a candidate list is reused
NEAR_COSINE = 0.45  # "close to X in your library" needs at least this embedding cosine


@dataclass(frozen=True)
class Signal:
    paper_id: str
    weight: float = 1.0
    at: datetime | None = None  # when it was saved/upvoted/claimed (recent counts more)


@dataclass(frozen=True)
class Weights:
    """The user's dials. ``popularity`` and ``recency`` add that many standard units of
    log-upvotes and freshness to the model score (0 = off)."""

    popularity: float = 0.4  # tuned with the model's blend on the development sample (bench/README.md)
    recency: float = 0.1
    learn_from_upvotes: bool = True


@dataclass(frozen=True)
class UserSignals:
    saves: tuple[Signal, ...] = ()
    upvotes: tuple[Signal, ...] = ()
    authored: tuple[Signal, ...] = ()  # claimed papers (confirmed by a moderator)
    not_interested: tuple[Signal, ...] = ()
    hidden: frozenset[str] = frozenset()
    followed_categories: frozenset[str] = frozenset()
    excluded_categories: frozenset[str] = frozenset()
    excluded_words: tuple[str, ...] = ()
    weights: Weights = field(default_factory=Weights)

    def positives(self) -> list[Signal]:
        """Saves, claimed papers and (unless turned off) upvotes; one entry per paper, the
        highest weight and the latest time win."""
        groups = [self.saves, self.authored] + ([self.upvotes] if self.weights.learn_from_upvotes else [])
        best: dict[str, Signal] = {}
        for group in groups:
            for s in group:
                cur = best.get(s.paper_id)
                if cur is None or s.weight > cur.weight:
                    best[s.paper_id] = s
        return list(best.values())

    def excluded_ids(self) -> set[str]:
        """Papers never to offer: hidden, dismissed, and what the user already has."""
        return (
            set(self.hidden)
            | {s.paper_id for s in self.not_interested}
            | {s.paper_id for s in (*self.saves, *self.authored, *self.upvotes)}
        )


def from_library(
    lib: library_store.UserSignals,
    *,
    authored: Sequence[str] = (),
    followed_categories: frozenset[str] = frozenset(),
    excluded_categories: frozenset[str] = frozenset(),
    excluded_words: Sequence[str] = (),
    weights: Weights | None = None,
) -> UserSignals:
    """The ranker's input from the library's read (``store.library_store.user_signals``) plus
    what the personal layer knows (claimed papers, follows, exclusions, the user's dials)."""
    return UserSignals(
        saves=tuple(Signal(s.paper_id, 1.0, s.at) for s in lib.saved),
        upvotes=tuple(Signal(s.paper_id, 1.0, s.at) for s in lib.upvoted),
        authored=tuple(Signal(pid, 1.0, None) for pid in authored),
        not_interested=tuple(Signal(s.paper_id, 1.0, s.at) for s in lib.not_interested),
        hidden=frozenset(s.paper_id for s in lib.hidden),
        followed_categories=followed_categories,
        excluded_categories=excluded_categories,
        excluded_words=tuple(excluded_words),
        weights=weights or Weights(),
    )


ReasonKind = Literal["library", "category", "popular", "recent"]


@dataclass(frozen=True)
class Reason:
    kind: ReasonKind
    text: str  # e.g. "close to “Attention Is All You Need” in your library"
    paper_id: str | None = None  # the library paper a "library" reason points to
    title: str | None = None


@dataclass(frozen=True)
class RankedPaper:
    paper_id: str
    score: float
    relevance: float  # 0..1, see the module docstring
    reasons: tuple[Reason, ...]


def _word_filter(words: Sequence[str]) -> re.Pattern[str] | None:
    words = [w.strip() for w in words if w.strip()]
    if not words:
        return None
    return re.compile(r"\b(?:" + "|".join(re.escape(w) for w in words) + r")\b", re.IGNORECASE)


def blend_extras(model_scores: np.ndarray, upvotes: np.ndarray, ages_days: np.ndarray, weights: Weights) -> np.ndarray:
    """The final order: model score + popularity + recency by the user's weights.
    log1p(upvotes) / log1p(50) is about 1 for a well-liked paper; recency is 1 today, 0.5 a
    week ago."""
    pop = np.log1p(np.maximum(upvotes, 0)) / math.log1p(50.0)
    rec = 0.5 ** (np.maximum(ages_days, 0) / 7.0)
    return model_scores + weights.popularity * pop + weights.recency * rec


@dataclass
class _Background:
    newest: date | None
    space: m.TextSpace
    features: m.Features


class Ranker:
    """Ranks papers for users of one database. Thread-safe; caches per-paper features (text
    counts, vectors) and the background sample (refreshed when a newer listing day appears)."""

    def __init__(
        self,
        db: Database,
        *,
        model_name: str | None = None,
        background_size: int = BACKGROUND_SIZE,
        background_days: int = BACKGROUND_DAYS,
        persist: bool = True,
    ) -> None:
        self.db = db
        self.model_name = model_name
        self.background_size = background_size
        self.background_days = background_days
        self._lock = threading.Lock()
        self._facts: dict[str, q.PaperFacts] = {}
        # Hashed term counts per paper as (bucket ids, counts): rows are stacked into a CSR
        # matrix by concatenation, far cheaper than stacking one-row matrices.
        self._counts: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._vectors: dict[str, np.ndarray] = {}
        self._dim = 0
        self._bg: _Background | None = None
        self._bg_checked = 0.0
        self.persist = persist
        self._models: OrderedDict[Hashable, tuple[str, _Background, m.UserModel | None]] = OrderedDict()
        # Features of recent candidate lists: every user ranks the same few lists (this week,
        # today), so stacking and weighing their rows is done once per list and background.
        self._lists: Recent[tuple[int, tuple[str, ...]], m.Features] = Recent()
        self._candidates: Recent[tuple[int, bool, date | None], list[str]] = Recent(ttl=CANDIDATES_TTL)
        self._popularity: Recent[tuple[str, ...], dict[str, int]] = Recent(ttl=POPULARITY_TTL)

    # -- data ------------------------------------------------------------------------------
    def candidates(
        self, *, days: int = CANDIDATE_DAYS, picks: bool = True, on_or_before: date | None = None
    ) -> list[str]:
        """What a for-you page ranks; the list is read again at most every
        :data:`CANDIDATES_TTL` seconds (new papers arrive a few times a day)."""
        def read() -> list[str]:
            with self.db.read() as conn:
                return q.candidate_ids(conn, days=days, picks=picks, on_or_before=on_or_before)

        return list(self._candidates.get((days, picks, on_or_before), read))

    def _load(self, ids: Sequence[str]) -> None:
        missing = [i for i in dict.fromkeys(ids) if i not in self._facts]
        if not missing:
            return
        with self.db.read() as conn:
            facts = q.paper_facts(conn, missing)
            vecs = q.vectors_for(conn, list(facts), self.model_name)
        found = [i for i in missing if i in facts]
        counts = m.count_matrix([m.paper_text(facts[i].title, facts[i].abstract) for i in found])
        with self._lock:
            for n, pid in enumerate(found):
                a, b = counts.indptr[n], counts.indptr[n + 1]
                self._facts[pid] = facts[pid]
                self._counts[pid] = (counts.indices[a:b].copy(), counts.data[a:b].copy())
            for pid, v in vecs.items():
                self._vectors[pid] = v
                self._dim = self._dim or len(v)

    def _background(self) -> _Background:
        bg = self._bg
        now = time.monotonic()
        if bg is not None and now - self._bg_checked < BACKGROUND_CHECK_S:
            return bg
        with self.db.read() as conn:
            newest = q.newest_listed(conn)
        self._bg_checked = now
        if bg is not None and bg.newest == newest:
            return bg
        with self.db.read() as conn:
            ids = q.background_ids(conn, size=self.background_size, window_days=self.background_days)
        self._load(ids)
        ids = [i for i in ids if i in self._facts]
        space = m.TextSpace.fit(self._count_rows(ids))
        features = self._features(ids, space)
        features.category_codes()  # once: every fit takes rows of it
        bg = _Background(newest, space, features)
        self._bg = bg
        return bg

    def _count_rows(self, ids: Sequence[str]) -> sp.csr_matrix:
        """The cached term counts of ``ids`` (all loaded) as one CSR matrix, row per id."""
        rows = [self._counts[i] for i in ids]
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum([len(r[0]) for r in rows], out=indptr[1:])
        if not rows:
            return m.count_matrix([])
        indices = np.concatenate([r[0] for r in rows])
        data = np.concatenate([r[1] for r in rows])
        return sp.csr_matrix((data, indices, indptr), shape=(len(rows), m.TEXT_DIM))

    def _features(self, ids: Sequence[str], space: m.TextSpace) -> m.Features:
        ids = [i for i in ids if i in self._facts]
        counts = self._count_rows(ids)
        dim = self._dim or 1
        emb = np.zeros((len(ids), dim), dtype=np.float32)
        for r, pid in enumerate(ids):
            v = self._vectors.get(pid)
            if v is not None and len(v) == dim:
                emb[r] = v
        return m.Features(list(ids), space.weigh(counts), emb, [self._facts[i].categories for i in ids])

    # -- model -----------------------------------------------------------------------------
    @one_blas_thread
    def fit(self, signals: UserSignals) -> m.UserModel | None:
        """The user's model, or None when there are no positives (cold start)."""
        positives = signals.positives()
        if not positives:
            return None
        bg = self._background()
        self._load([s.paper_id for s in positives] + [s.paper_id for s in signals.not_interested])
        pos_sig = [s for s in positives if s.paper_id in self._facts]
        if not pos_sig:
            return None
        pos = self._features([s.paper_id for s in pos_sig], bg.space)
        pw = signal_weights(pos_sig)
        neg_sig = [s for s in signals.not_interested if s.paper_id in self._facts]
        neg = self._features([s.paper_id for s in neg_sig], bg.space) if neg_sig else None
        return m.fit(pos, bg.features, pos_weight=pw, neg=neg)

    @one_blas_thread
    def model_for(self, user_key: Hashable, signals: UserSignals) -> m.UserModel | None:
        """The user's model: from this process's cache, else (for an ``int`` key, the user id)
        from the ``user_models`` table, else fitted here and stored there. A model is refitted
        when what it learns from changed (the positives, their weights and times, the
        negatives, the model settings) or when the background it was fitted against is more
        than :data:`MODEL_MAX_AGE_DAYS` older than today's."""
        bg = self._background()
        fp = self._fingerprint(signals)
        with self._lock:
            hit = self._models.get(user_key)
            if hit is not None and hit[0] == fp and hit[1] is bg:
                self._models.move_to_end(user_key)
                return hit[2]
        user_id = user_key if self.persist and isinstance(user_key, int) else None
        model: m.UserModel | None = None
        loaded = False
        if user_id is not None and signals.positives():
            with self.db.read() as conn:
                stored = user_model_store.get_model(conn, user_id)
            if stored is not None and stored.fingerprint == fp and _fresh(stored.background_day, bg.newest):
                model = persisted.loads(stored.model, lambda ids: self._features_of(ids, bg))
                loaded = model is not None
        if not loaded:
            model = self.fit(signals)
            if user_id is not None and model is not None:
                self._store(user_id, fp, bg.newest, model)
        with self._lock:
            self._models[user_key] = (fp, bg, model)
            self._models.move_to_end(user_key)
            while len(self._models) > MODEL_CACHE:
                self._models.popitem(last=False)
        return model

    def _store(self, user_id: int, fp: str, day: date | None, model: m.UserModel) -> None:
        """Keep the fitted model for every process; a failed write only costs a refit later."""
        blob = persisted.dumps(model)
        try:
            with self.db.write() as conn:
                user_model_store.put_model(conn, user_id, fp, day, blob, datetime.now(UTC).replace(tzinfo=None))
        except SQLAlchemyError:
            log.warning("for you: could not store the model of user %s", user_id, exc_info=True)

    def _features_of(self, ids: Sequence[str], bg: _Background) -> m.Features | None:
        """Features of exactly ``ids`` in that order, or None if a paper is gone."""
        self._load(ids)
        if any(i not in self._facts for i in ids):
            return None
        return self._features(ids, bg.space)

    def _fingerprint(self, signals: UserSignals) -> str:
        """What a user's model is fitted from: the positives (weights, times), the negatives and
        the model and background settings (not the day: see :data:`MODEL_MAX_AGE_DAYS`)."""
        h = hashlib.sha256(persisted.settings_key(self.background_size, self.background_days).encode())
        for s in sorted(signals.positives(), key=lambda s: s.paper_id):
            h.update(f"+{s.paper_id}:{s.weight}:{s.at}".encode())
        for s in sorted(signals.not_interested, key=lambda s: s.paper_id):
            h.update(f"-{s.paper_id}:{s.weight}".encode())
        return h.hexdigest()

    # -- ranking ---------------------------------------------------------------------------
    @one_blas_thread
    def rank(
        self,
        signals: UserSignals,
        candidates: Sequence[str] | None = None,
        *,
        model: m.UserModel | None = None,
        user_key: Hashable | None = None,
        limit: int | None = None,
        today: date | None = None,
        explain: int | None = None,
    ) -> list[RankedPaper]:
        """Rank ``candidates`` (default: :meth:`candidates`) for the user. Pass ``model`` from
        :meth:`fit`, or a ``user_key`` (e.g. the user id) to use this process's model cache;
        otherwise the model is fitted here. Only the first ``explain`` papers (default: every
        one returned) carry their reasons; :meth:`explain` adds them to others."""
        every = list(dict.fromkeys(self.candidates() if candidates is None else candidates))
        self._load(every)
        every = [i for i in every if i in self._facts]
        ids = self._allowed(every, signals)
        if not ids:
            return []
        if model is None:
            model = self.fit(signals) if user_key is None else self.model_for(user_key, signals)
        bg = self._background()
        pop = self._popularity_of(every)
        up = np.array([pop.get(i, self._facts[i].upvotes) for i in ids], dtype=np.float64)
        day = today or bg.newest or date.today()
        ages = np.array([_age(self._facts[i], day) for i in ids], dtype=np.float64)
        where = {pid: r for r, pid in enumerate(every)}
        feats = self._list_features(every, bg)
        if len(ids) < len(every):
            feats = feats.take([where[i] for i in ids])
        if model is None:
            base = self._cold_scores(feats, signals)
            rel = np.zeros(len(ids))
        else:
            base = model.score(feats)
            rel = model.percentile(base)
        final = blend_extras(base, up, ages, signals.weights)
        order = np.argsort(-final, kind="stable")
        if limit is not None:
            order = order[:limit]
        out = [RankedPaper(ids[r], float(final[r]), float(rel[r]), ()) for r in order]
        n_explain = len(out) if explain is None else min(explain, len(out))
        shown = feats.take(order[:n_explain])  # their feature rows, for the closest library paper
        return self._explain(signals, model, out[:n_explain], day, pop, shown) + out[n_explain:]

    @one_blas_thread
    def explain(
        self,
        signals: UserSignals,
        model: m.UserModel | None,
        ranked: Sequence[RankedPaper],
        *,
        today: date | None = None,
        candidates: Sequence[str] | None = None,
    ) -> list[RankedPaper]:
        """``ranked`` (from :meth:`rank`) with their reasons: the library paper each is closest
        to (when close enough, or when the paper beats 90% of recent papers), its categories,
        popularity and freshness. Pass the ``candidates`` they were ranked from to reuse that
        list's features and upvote counts."""
        ids = [r.paper_id for r in ranked]
        bg = self._background()
        every = [i for i in dict.fromkeys(candidates or ()) if i in self._facts]
        where = {pid: r for r, pid in enumerate(every)}
        if every and all(i in where for i in ids):
            pop = self._popularity_of(every)
            feats = self._list_features(every, bg).take([where[i] for i in ids])
        else:
            self._load(ids)
            with self.db.read() as conn:
                pop = q.popularity(conn, ids)
            feats = self._features(ids, bg.space)
        return self._explain(signals, model, ranked, today or bg.newest or date.today(), pop, feats)

    def _explain(
        self, signals: UserSignals, model: m.UserModel | None, ranked: Sequence[RankedPaper], day: date,
        pop: dict[str, int], feats: m.Features,
    ) -> list[RankedPaper]:  # fmt: skip
        """Reasons for ``ranked``, whose feature rows are ``feats`` (row i: ranked[i])."""
        if not ranked:
            return []
        nearest: np.ndarray | None = None
        near_cos: np.ndarray | None = None
        if model is not None and len(model.pos):
            _, _, nearest = model.nearest(feats)
            near_cos = np.einsum("ij,ij->i", feats.emb, model.pos.emb[nearest])
        out = []
        for r, item in enumerate(ranked):
            reasons: list[Reason] = []
            if model is not None and nearest is not None and near_cos is not None:
                if near_cos[r] >= NEAR_COSINE or item.relevance >= 0.9:
                    lib_id = model.pos.ids[int(nearest[r])]
                    title = self._facts[lib_id].title
                    reasons.append(Reason("library", f"close to “{title}” in your library", lib_id, title))
            f = self._facts[item.paper_id]
            upvotes = pop.get(item.paper_id, f.upvotes)
            reasons.extend(self._other_reasons(item.paper_id, signals, model, upvotes, _age(f, day)))
            out.append(RankedPaper(item.paper_id, item.score, item.relevance, tuple(reasons)))
        return out

    def _popularity_of(self, ids: list[str]) -> dict[str, int]:
        """Upvote totals of a candidate list, read at most every :data:`POPULARITY_TTL` seconds
        (every user ranks the same few lists)."""

        def read() -> dict[str, int]:
            with self.db.read() as conn:
                return q.popularity(conn, ids)

        return self._popularity.get(tuple(ids), read)

    def _list_features(self, ids: list[str], bg: _Background) -> m.Features:

        def make() -> m.Features:
            feats = self._features(ids, bg.space)
            feats.category_codes()  # once per list: every user's ranking takes rows of it
            return feats

        return self._lists.get((id(bg), tuple(ids)), make)

    def _allowed(self, ids: list[str], signals: UserSignals) -> list[str]:
        drop = signals.excluded_ids()
        words = _word_filter(signals.excluded_words)
        cats = signals.excluded_categories
        out = []
        for i in ids:
            f = self._facts.get(i)
            if f is None or i in drop:
                continue
            if cats and any(c in cats for c in f.categories):
                continue
            if words is not None and (words.search(f.title) or words.search(f.abstract)):
                continue
            out.append(i)
        return out

    def _cold_scores(self, feats: m.Features, signals: UserSignals) -> np.ndarray:
        follow = signals.followed_categories
        return np.array([1.0 if follow and any(c in follow for c in cs) else 0.0 for cs in feats.categories])

    def _other_reasons(
        self, pid: str, signals: UserSignals, model: m.UserModel | None, upvotes: int, age: float
    ) -> list[Reason]:
        f = self._facts[pid]
        out: list[Reason] = []
        followed = [c for c in f.categories if c in signals.followed_categories]
        if followed:
            out.append(Reason("category", f"in {followed[0]}, a category you follow"))
        elif model is not None:
            top = max(f.categories, key=lambda c: model.category_share.get(c, 0.0), default=None)
            if top is not None and model.category_share.get(top, 0.0) >= 0.15:
                out.append(Reason("category", f"in your category {top}"))
        if upvotes >= POPULAR_UPVOTES:
            out.append(Reason("popular", f"popular: {upvotes} upvotes"))
        if age <= 1.0:
            out.append(Reason("recent", "new today"))
        return out


def _fresh(fitted: date | None, newest: date | None) -> bool:
    """Whether a model fitted against the background of listing day ``fitted`` still serves."""
    if fitted is None or newest is None:
        return fitted == newest
    return (newest - fitted).days <= MODEL_MAX_AGE_DAYS


def _age(f: q.PaperFacts, today: date) -> float:
    d = f.listed or f.feed_date
    return float((today - d).days) if d is not None else 30.0


def signal_weights(signals: Sequence[Signal]) -> np.ndarray:
    """Each positive's own weight times an age weight (recent saves count more; a signal without
    a time, such as a claimed paper, counts as new)."""
    base = np.array([max(s.weight, 0.0) for s in signals], dtype=np.float64)
    times = [s.at for s in signals if s.at is not None]
    if times:
        newest = max(times)
        ages = [0.0 if s.at is None else (newest - s.at).total_seconds() / 86400.0 for s in signals]
        a = np.asarray(ages)
        base = base * np.maximum(0.5 ** (a / m.HALF_LIFE), m.MIN_WEIGHT)
    return np.maximum(base, 1e-6)
