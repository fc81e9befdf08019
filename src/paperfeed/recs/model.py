"""The per-user "for you" model: pure numpy/scipy/scikit-learn, no I/O.

The same code ranks the ``/for-you`` page, the digest's for-you section and the offline
evaluation (``paperfeed eval-recs``), so the figures in bench/README.md are the product's.

A paper is two feature blocks:

* **text**: TF-IDF of title + abstract, word 1-2-grams (English stop words dropped, sublinear
  tf, l2-normalised), hashed into :data:`TEXT_DIM` buckets so that any paper, old or new, has a
  vector without refitting a vocabulary; the idf comes from a reference sample of recent papers
  (:meth:`TextSpace.fit`). Authors' own rare terms (method names, datasets) are what tell one
  researcher's papers from the next, and an embedding alone blurs them.
* **embedding**: the MiniLM vector the search already stores (float32, L2-normalised).

Author names are never features: the text is title + abstract only.

Cost: :meth:`UserModel.score` computes the cheap components (classifier, category prior,
"not interested" similarity) for every candidate and the nearest-library similarity, the
expensive one (candidates x library vector products), only for the :data:`SHORTLIST`
candidates the cheap ones rank highest; the rest get the lowest nearest-library values of the
shortlist (bench/README.md: the top of the ranking is unchanged). :func:`fit` computes every
component of the background exactly (they standardise the scores).

The user model (:func:`fit`) blends these scores, each standardised against the background
sample so the blend (and the ``relevance`` a digest threshold compares against) means the same
for every user; the weights were learned on a development sample of users disjoint from the
evaluation sample (``bench/tune_recs.py``; bench/README.md has the figures):

1. two linear classifiers (liblinear L2 logistic regressions), one on the text (``C`` =
   :data:`POSITIVE_C`), one on the embedding (``C`` = :data:`EMB_C`), each with the library as
   positives (recent saves weigh more), a random sample of recent papers as background
   negatives, and "not interested" papers as real negatives with a higher weight. Apart, each
   block gets its own regularisation and blend weight: one joint fit on text + embedding
   ranked authors' next papers worse than the text one alone and cost more to fit;
2. nearest-library similarity (max cosine of the embedding, and of the text vector, to any
   positive), which keeps a small side interest from being outvoted by a large main one; a
   "not interested" paper subtracts its own similarity, so papers like it sink;
3. a category prior: the share of the library in the candidate's categories (smoothed, log);
4. outside the model, the caller adds popularity and recency with the user's own weights
   (:mod:`paperfeed.recs.ranker`).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.linear_model import LogisticRegression

TEXT_DIM = 2**20
MAX_TERMS = 20_000  # text weights a model keeps (the heaviest): 160 KB a user instead of 4 MB
POSITIVE_C = 10.0  # inverse regularisation of the text classifier
EMB_C = 1.0  # inverse regularisation of the embedding classifier
NEGATIVE_WEIGHT = 3.0  # a "not interested" counts this many background papers
HALF_LIFE = 60.0  # library items older than this many days (before the newest) weigh half
MIN_WEIGHT = 0.25
SHORTLIST = 300  # candidates whose nearest-library similarity is computed (the cheap scores pick them)

# Blend weights of the standardised components, and the classifiers' settings above, chosen on
# 400 test papers of a development sample of users disjoint from the evaluation sample
# (bench/tune_recs.py; bench/README.md). The popularity default is the ranker's (Weights).
W_CLASSIFIER = 1.0
W_EMB_CLASSIFIER = 0.35
W_NEAREST_EMB = 0.3
W_NEAREST_TEXT = 0.2
W_CATEGORY = 0.1
W_NEGATIVE = 0.3  # how hard similarity to a "not interested" paper pushes down

_VECTORIZER = HashingVectorizer(
    n_features=TEXT_DIM,
    ngram_range=(1, 2),
    stop_words="english",
    strip_accents="unicode",
    lowercase=True,
    token_pattern=r"(?u)\b[a-zA-Z_][a-zA-Z0-9_]+\b",
    alternate_sign=False,
    norm=None,
    dtype=np.float32,
)


def paper_text(title: str, abstract: str) -> str:
    """What the text features read: title and abstract, never the authors."""
    return f"{title}\n{abstract}"


def count_matrix(texts: Sequence[str]) -> sp.csr_matrix:
    """Hashed term counts of texts (float32 CSR); :meth:`TextSpace.weigh` turns them into TF-IDF.
    Kept apart so that callers can cache counts per paper and refit the idf cheaply."""
    if not texts:
        return sp.csr_matrix((0, TEXT_DIM), dtype=np.float32)
    return _VECTORIZER.transform(texts).tocsr()


@dataclass(frozen=True)
class TextSpace:
    """Hashed TF-IDF with idf from a reference sample (``idf`` is dense over :data:`TEXT_DIM`)."""

    idf: np.ndarray  # float32 (TEXT_DIM,)
    docs: int

    @classmethod
    def fit(cls, counts: sp.csr_matrix) -> TextSpace:
        """idf from the document frequencies of a reference sample's :func:`count_matrix`."""
        n = counts.shape[0]
        df = np.bincount(counts.indices, minlength=TEXT_DIM).astype(np.float64)
        idf = (np.log((1.0 + n) / (1.0 + df)) + 1.0).astype(np.float32)
        return cls(idf, n)

    def weigh(self, counts: sp.csr_matrix) -> sp.csr_matrix:
        """Sublinear tf x idf, rows l2-normalised."""
        x = counts.astype(np.float32, copy=True)
        x.data = (1.0 + np.log(x.data)) * self.idf[x.indices]
        # Row norms and scaling on the data array: a sparse diagonal product would allocate
        # TEXT_DIM-long work arrays per call (15 ms for a handful of rows).
        lengths = np.diff(x.indptr)
        rows = np.repeat(np.arange(x.shape[0]), lengths)
        norms = np.sqrt(np.bincount(rows, weights=np.square(x.data, dtype=np.float64), minlength=x.shape[0]))
        norms[norms == 0] = 1.0
        x.data *= np.repeat((1.0 / norms).astype(np.float32), lengths)
        return x

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        return self.weigh(count_matrix(texts))

    def top_terms(self, row: sp.csr_matrix, k: int = 5) -> list[int]:
        """Bucket ids of a text vector's heaviest terms (for explanations)."""
        order = np.argsort(-row.data)[:k]
        return [int(row.indices[i]) for i in order]


_CATEGORY_CODES: dict[str, int] = {"": 0}  # category -> code, shared by every Features (code 0: none)


def _category_code(c: str) -> int:
    code = _CATEGORY_CODES.get(c)
    if code is None:
        code = _CATEGORY_CODES.setdefault(c, len(_CATEGORY_CODES))
    return code


@dataclass
class Features:
    """Feature blocks of a set of papers, row ``i`` describing ``ids[i]``."""

    ids: list[str]
    text: sp.csr_matrix  # (n, TEXT_DIM), l2-normalised rows
    emb: np.ndarray  # float32 (n, dim), L2-normalised rows; zero rows where a vector is missing
    categories: list[tuple[str, ...]]
    _codes: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.ids)

    def category_codes(self) -> tuple[np.ndarray, np.ndarray]:
        """The rows' categories as codes (every row starts with code 0, "none") and each row's
        first position: what :meth:`UserModel.category` reduces without a Python loop. Computed
        once per Features (a candidate list's features are shared by every user ranking it)."""
        if self._codes is None:
            codes: list[int] = []
            starts = np.empty(len(self.categories), dtype=np.int64)
            for i, cats in enumerate(self.categories):
                starts[i] = len(codes)
                codes.append(0)
                codes.extend(_category_code(c) for c in cats)
            self._codes = (np.asarray(codes, dtype=np.int64), starts)
        return self._codes

    def take(self, rows: Sequence[int] | np.ndarray) -> Features:
        idx = np.asarray(rows, dtype=np.int64)
        out = Features([self.ids[i] for i in idx], self.text[idx], self.emb[idx], [self.categories[i] for i in idx])
        if self._codes is not None and len(idx):  # the rows' category codes, without recounting
            codes, starts = self._codes
            ends = np.append(starts[1:], len(codes))
            lengths = (ends - starts)[idx]
            new_starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
            gather = np.repeat(starts[idx] - new_starts, lengths) + np.arange(int(lengths.sum()))
            out._codes = (codes[gather], new_starts.astype(np.int64))
        return out

    @staticmethod
    def stack(parts: Sequence[Features]) -> Features:
        parts = [p for p in parts if len(p)]
        if not parts:
            raise ValueError("no features to stack")
        return Features(
            [i for p in parts for i in p.ids],
            sp.vstack([p.text for p in parts], format="csr"),
            np.vstack([p.emb for p in parts]),
            [c for p in parts for c in p.categories],
        )


@dataclass(frozen=True)
class Example:
    """One training paper: its row in the training features and its weight."""

    row: int
    weight: float


def age_weights(ages_days: Sequence[float]) -> np.ndarray:
    """Weight of a library item by its age relative to the newest one: halves every
    :data:`HALF_LIFE` days, never below :data:`MIN_WEIGHT` (old interests still count)."""
    a = np.asarray(ages_days, dtype=np.float64)
    if not len(a):
        return a
    a = a - a.min()
    return np.maximum(0.5 ** (a / HALF_LIFE), MIN_WEIGHT)


@dataclass
class Component:
    """A score standardised by its mean and spread over the background sample."""

    mean: float
    std: float

    @classmethod
    def of(cls, values: np.ndarray) -> Component:
        if not len(values):
            return cls(0.0, 1.0)
        std = float(values.std())
        return cls(float(values.mean()), std if std > 1e-9 else 1.0)

    def z(self, values: np.ndarray) -> np.ndarray:
        return (values - self.mean) / self.std


_THREAD = threading.local()


def _scratch() -> np.ndarray:
    """This thread's zeroed float32 vector of TEXT_DIM (callers leave it zeroed)."""
    w = getattr(_THREAD, "w", None)
    if w is None:
        w = _THREAD.w = np.zeros(TEXT_DIM, dtype=np.float32)
    return w


def _lookup() -> np.ndarray:
    """This thread's int32 vector of TEXT_DIM set to -1 (callers leave it so)."""
    lut = getattr(_THREAD, "lut", None)
    if lut is None:
        lut = _THREAD.lut = np.full(TEXT_DIM, -1, dtype=np.int32)
    return lut


@dataclass(frozen=True)
class _Compact:
    """A few papers' text vectors (the library, the "not interested" papers) over their own
    vocabulary only, transposed, for cosine products with many candidates: transposing a
    TEXT_DIM-column matrix (or multiplying by one) allocates TEXT_DIM-long arrays each time."""

    vocab: np.ndarray  # sorted bucket ids present in the papers
    t: sp.csr_matrix  # (len(vocab), n_papers)

    @classmethod
    def of(cls, text: sp.csr_matrix) -> _Compact:
        vocab, inv = np.unique(text.indices, return_inverse=True)
        compact = sp.csr_matrix((text.data, inv.astype(np.int32), text.indptr), shape=(text.shape[0], len(vocab)))
        return cls(vocab, compact.T.tocsr())

    def similarity(self, text: sp.csr_matrix) -> np.ndarray:
        """Dot products (n, n_papers) of the rows of ``text`` with these papers."""
        lut = _lookup()
        lut[self.vocab] = np.arange(len(self.vocab), dtype=np.int32)
        try:
            col = lut[text.indices]
        finally:
            lut[self.vocab] = -1
        hit = col >= 0
        kept = np.concatenate([[0], np.cumsum(hit, dtype=np.int64)])
        sub = sp.csr_matrix((text.data[hit], col[hit], kept[text.indptr]), shape=(text.shape[0], len(self.vocab)))
        return (sub @ self.t).toarray()


@dataclass
class UserModel:
    """What :func:`fit` learned for one user; :meth:`score` ranks any candidate features."""

    text_idx: np.ndarray  # int32: the text buckets with a weight (the MAX_TERMS heaviest)
    text_val: np.ndarray  # float32: their weights
    coef_emb: np.ndarray  # float32 (dim,): the embedding classifier
    intercept: float
    pos: Features  # the library (positives), for nearest-paper scores and reasons
    pos_weight: np.ndarray
    neg: Features | None  # "not interested" papers
    category_share: dict[str, float]
    parts: dict[str, Component]
    background_blend: np.ndarray  # sorted blended scores of the background: relevance percentiles
    # Derived once per model (not learned, not stored): the transposed library text and weights.
    _pos_text_t: _Compact | None = field(default=None, repr=False, compare=False)
    _neg_text_t: _Compact | None = field(default=None, repr=False, compare=False)

    def classifier(self, f: Features) -> np.ndarray:
        # The text weights go into the thread's dense scratch vector and out again: a fresh
        # TEXT_DIM vector per call costs more in page faults than the product itself.
        w = _scratch()
        w[self.text_idx] = self.text_val
        try:
            text = np.asarray(f.text @ w).ravel()
        finally:
            w[self.text_idx] = 0.0
        return text + self.intercept

    def emb_classifier(self, f: Features) -> np.ndarray:
        return np.asarray(f.emb @ self.coef_emb)

    def _library_t(self) -> _Compact:
        if self._pos_text_t is None:
            self._pos_text_t = _Compact.of(self.pos.text)
        return self._pos_text_t

    def nearest(self, f: Features) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per candidate: max embedding cosine, max text cosine to a positive (weighted), and the
        row of the closest positive (blend of both)."""
        w = (self.pos_weight**0.5).astype(np.float32)[None, :]
        se_w = (f.emb @ self.pos.emb.T) * w  # (n, p)
        st_w = self._library_t().similarity(f.text) * w
        best = np.argmax(se_w + st_w, axis=1)
        return se_w.max(axis=1), st_w.max(axis=1), best

    def negative_similarity(self, f: Features) -> np.ndarray:
        if self.neg is None or not len(self.neg):
            return np.zeros(len(f), dtype=np.float32)
        if self._neg_text_t is None:
            self._neg_text_t = _Compact.of(self.neg.text)
        se = f.emb @ self.neg.emb.T
        st = self._neg_text_t.similarity(f.text)
        return np.asarray((se + st).max(axis=1)).ravel()

    def category(self, f: Features) -> np.ndarray:
        k = max(len(self.category_share), 1)
        floor = 0.5 / (k + 10)
        codes, starts = f.category_codes()
        mine = {_category_code(c): v for c, v in self.category_share.items()}  # codes first, then size
        share = np.zeros(len(_CATEGORY_CODES), dtype=np.float64)
        for code, v in mine.items():
            share[code] = v
        if not len(starts):
            return np.zeros(0, dtype=np.float32)
        best = np.maximum.reduceat(share[codes], starts)  # code 0 ("none") has share 0
        return np.log(best + floor).astype(np.float32)

    def components(self, f: Features, shortlist: int | None = None) -> dict[str, np.ndarray]:
        """Every component of every row of ``f``; with ``shortlist``, the nearest-library ones
        only for the ``shortlist`` rows the other components blend highest (the rest get the
        shortlist's lowest values). ``parts`` must be set for a shortlist (it ranks by them)."""
        out = {
            "classifier": self.classifier(f),
            "emb_classifier": self.emb_classifier(f),
            "category": self.category(f),
            "negative": self.negative_similarity(f),
        }
        n = len(f)
        if shortlist is None or n <= shortlist or not self.parts:
            emb, text, _ = self.nearest(f)
            return {**out, "nearest_emb": emb, "nearest_text": text}
        mean = {k: np.full(n, self.parts[k].mean) for k in ("nearest_emb", "nearest_text")}
        cheap = self.blend({**out, **mean})  # the nearest terms at their background mean: z = 0
        top = np.argpartition(-cheap, shortlist - 1)[:shortlist]
        emb_top, text_top, _ = self.nearest(f.take(top))
        emb = np.full(n, emb_top.min(), dtype=np.float32)
        text = np.full(n, text_top.min(), dtype=np.float32)
        emb[top], text[top] = emb_top, text_top
        return {**out, "nearest_emb": emb, "nearest_text": text}

    def blend(self, comps: dict[str, np.ndarray]) -> np.ndarray:
        p = self.parts
        score = (
            W_CLASSIFIER * p["classifier"].z(comps["classifier"])
            + W_EMB_CLASSIFIER * p["emb_classifier"].z(comps["emb_classifier"])
            + W_NEAREST_EMB * p["nearest_emb"].z(comps["nearest_emb"])
            + W_NEAREST_TEXT * p["nearest_text"].z(comps["nearest_text"])
            + W_CATEGORY * p["category"].z(comps["category"])
        )
        if self.neg is not None and len(self.neg):
            score = score - W_NEGATIVE * p["negative"].z(comps["negative"]).clip(min=0.0)
        return np.asarray(score, dtype=np.float64)

    def score(self, f: Features, shortlist: int | None = SHORTLIST) -> np.ndarray:
        """The blended relevance score of each candidate (higher is better); the nearest-library
        components of the ``shortlist`` best by the others only (None: of every candidate)."""
        if not len(f):
            return np.zeros(0)
        return self.blend(self.components(f, shortlist))

    def percentile(self, scores: np.ndarray) -> np.ndarray:
        """Share of the background sample each score beats, 0..1 (what thresholds compare)."""
        bg = self.background_blend
        if not len(bg):
            return np.zeros(len(scores))
        return np.searchsorted(bg, scores, side="right") / len(bg)


def _category_share(cats: Sequence[tuple[str, ...]], weights: np.ndarray) -> dict[str, float]:
    hist: dict[str, float] = {}
    for cs, w in zip(cats, weights, strict=True):
        for j, c in enumerate(cs):
            hist[c] = hist.get(c, 0.0) + float(w) * (1.0 if j == 0 else 0.5)  # primary counts double
    total = sum(hist.values()) or 1.0
    return {c: v / total for c, v in hist.items()}


def fit(
    pos: Features,
    background: Features,
    *,
    pos_weight: np.ndarray | None = None,
    neg: Features | None = None,
    neg_weight: np.ndarray | None = None,
) -> UserModel:
    """Fit a user's model: ``pos`` (library) against ``background`` (+ ``neg``).

    ``background`` is a random sample of recent papers; ids that are also positives or
    negatives are dropped from it. Needs at least one positive.
    """
    if not len(pos):
        raise ValueError("a user model needs at least one positive paper")
    pw = np.ones(len(pos)) if pos_weight is None else np.asarray(pos_weight, dtype=np.float64)
    exclude = set(pos.ids) | (set(neg.ids) if neg is not None else set())
    keep = [i for i, pid in enumerate(background.ids) if pid not in exclude]
    background.category_codes()  # once on the shared background; the kept rows carry them
    bg = background.take(keep)
    has_neg = neg is not None and len(neg) > 0
    parts = [pos, bg] + ([neg] if has_neg and neg is not None else [])
    train = Features.stack(parts)
    y = np.concatenate([np.ones(len(pos)), np.zeros(len(bg) + (len(neg) if has_neg and neg is not None else 0))])
    # Balance the classes like a class_weight="balanced" fit, with per-item weights inside.
    w_pos = pw * (len(bg) / max(pw.sum(), 1e-9))
    w_bg = np.ones(len(bg))
    w_neg = (
        (np.ones(len(neg)) if neg_weight is None else np.asarray(neg_weight)) * NEGATIVE_WEIGHT
        if has_neg and neg is not None
        else np.zeros(0)
    )
    sw = np.concatenate([w_pos, w_bg, w_neg])
    # The dual solver: the same L2 optimum, 20x faster than the primal one on 1M sparse columns.
    # A fixed random_state: liblinear shuffles, and the same signals must give the same model.
    clf = LogisticRegression(C=POSITIVE_C, solver="liblinear", dual=True, max_iter=200, random_state=0)
    clf.fit(train.text, y, sample_weight=sw)
    text = np.asarray(clf.coef_, dtype=np.float32).ravel()
    emb_clf = LogisticRegression(C=EMB_C, solver="liblinear", max_iter=200, random_state=0)
    emb_clf.fit(train.emb, y, sample_weight=sw)
    idx = np.flatnonzero(text)
    if len(idx) > MAX_TERMS:
        idx = np.sort(idx[np.argpartition(-np.abs(text[idx]), MAX_TERMS)[:MAX_TERMS]])
    model = UserModel(
        text_idx=idx.astype(np.int32),
        text_val=text[idx],
        coef_emb=np.asarray(emb_clf.coef_, dtype=np.float32).ravel(),
        intercept=float(clf.intercept_[0]),
        pos=pos,
        pos_weight=pw / pw.max(),
        neg=neg if has_neg else None,
        category_share=_category_share(pos.categories, pw),
        parts={},
        background_blend=np.zeros(0),
    )
    comps = model.components(bg)
    model.parts = {k: Component.of(v) for k, v in comps.items()}
    model.background_blend = np.sort(model.blend(comps))
    return model
