"""Fusion of the keyword (BM25) and semantic (MiniLM cosine) rankings, and how each query is read.

Runs on every hybrid search, after both first-stage retrievers and before filtering. Every query is read
(:class:`QueryFeatures`): its form (words, question-like, a comma-separated keyword list), how rare its
terms are in the index, quoted phrases and author filters, how peaked each score distribution is, how
much the two top-10 lists agree. That reading and the weights used are explained in each hit's "why"
(:meth:`FusionDecision.explain`).

The weights: by default one fixed semantic weight (:data:`DEFAULT_FUSION`). A query-adaptive weight,
``sigmoid(bias + sum(coef * standardised feature))`` (:class:`AdaptiveModel`), fitted by
``bench/fit_fusion.py`` on the *tuning* halves of the evaluation sets (coefficients in
``fusion_model.json`` next to this file), is available as ``Fusion("adaptive")`` but is not the default:
it did not match the best fixed weight on every tuning half (it won on the 30 judged tuning queries and
lost on SciFact and known-item), and it lost on the test halves too (``bench/README.md``). Quoted phrases
and author filters never occur in those sets, so their effect in the adaptive model is a fixed,
documented prior (:data:`EXACT_PRIOR`), not a fitted one.

Scores are min-max normalised per list before the weighted sum (:func:`normalise`).

``Fusion("smoothed")`` (:data:`SMOOTHED`, opt-in, scored by ``paperfeed eval`` as ``hybrid-smoothed``) is the
one variant of the SciFact work that passed the adoption rule on the tuning halves: bounded normalisation
(BM25 as a share of the score the query could reach, :func:`keyword_ceiling`; cosine above
:data:`COSINE_FLOOR`) and a lift for each of the fused top :data:`SMOOTH_DEPTH` from the best of its
:data:`SMOOTH_K` most similar candidates (:func:`smooth`: similar papers support each other, the cluster
hypothesis). It gained 0.009 nDCG@10 on SciFact train without losing on the other tuning halves, but nothing on
the SciFact test half and 0.03 on the judged test half, so it is not the default (``bench/README.md``,
"Towards SciFact 0.74").
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from paperfeed.search.lexical_query import TITLE_BOOST, TermStat
from paperfeed.search.query import ParsedQuery

TOP = 10  # the head of each list that the peak and agreement features look at
MODEL_FILE = Path(__file__).with_name("fusion_model.json")
EXACT_PRIOR = -1.0  # logit shift towards keyword for quoted phrases / author filters (a prior: see module doc)
FEATURES = ("log_words", "question", "keyword_list", "idf", "exact", "kw_peak", "sem_peak", "sem_top", "agree")
FITTED = tuple(f for f in FEATURES if f != "exact")
# Fusion("smoothed"), chosen on the tuning halves (bench/README.md, "Towards SciFact 0.74"):
BM25_K1 = 1.2  # tantivy's fixed k1: a term's BM25 never exceeds idf * (k1 + 1)
COSINE_FLOOR = 0.25  # cosines at or below this count as no semantic evidence
SMOOTH_DEPTH = 100  # the head of the fused list that is smoothed
SMOOTH_K = 3  # each candidate looks at its this many most similar candidates
SMOOTH_WEIGHT = 0.3  # and gains this share of the best fused score among them

_QUESTION_START = frozenset(
    "how what which why when where who whom whose can could does do did is are should would will "
    "compare explain find looking i we".split()
)
_SENTENCE_END = re.compile(r"[.?!](\s|$)")


@dataclass(frozen=True)
class Fusion:
    """How keyword and semantic rankings are combined.

    ``method="score"`` (the default): convex combination of normalised scores with the fixed
    ``semantic_weight`` 0.45 (best on SciFact train; 0.475 was best over all three tuning halves by 0.005,
    and lost on the test halves, so the default did not move). ``method="adaptive"``: score fusion with a
    per-query weight from :class:`AdaptiveModel` (not the default: see the module doc). ``method="rrf"``:
    weighted reciprocal-rank fusion ``w / (k + rank)``. ``method="smoothed"``: bounded score fusion
    (:func:`fuse` with the query's :func:`keyword_ceiling`) followed by :func:`smooth` (:data:`SMOOTHED`;
    not the default).
    """

    method: str = "score"
    semantic_weight: float = 0.45
    rrf_k: int = 60


DEFAULT_FUSION = Fusion()
SMOOTHED = Fusion("smoothed", 0.40)


@dataclass(frozen=True)
class QueryFeatures:
    words: int
    question: bool
    keyword_list: bool
    idf: float  # mean IDF of the terms used, divided by log(N): 0 = in every paper, 1 = in one
    exact: bool  # quoted phrases or author filters
    kw_peak: float  # (BM25 #1 - BM25 #10) / BM25 #1; 0 without keyword hits
    sem_peak: float  # cosine #1 - cosine #10
    sem_top: float  # cosine #1
    agree: float  # share of the keyword top 10 also in the semantic top 10
    rare_terms: tuple[str, ...] = ()  # the rarest terms used (for the explanation)

    def vector(self) -> dict[str, float]:
        return {
            "log_words": math.log2(1 + self.words),
            "question": float(self.question),
            "keyword_list": float(self.keyword_list),
            "idf": self.idf,
            "exact": float(self.exact),
            "kw_peak": self.kw_peak,
            "sem_peak": self.sem_peak,
            "sem_top": self.sem_top,
            "agree": self.agree,
        }

    @property
    def form(self) -> str:
        if self.keyword_list:
            return "keyword list"
        if self.question:
            return "question-like query"
        if self.words <= 4:
            return "short query"
        return "descriptive query"


@dataclass(frozen=True)
class FusionDecision:
    semantic_weight: float
    method: str
    features: QueryFeatures | None = None

    def explain(self) -> str:
        """One line for the "why" of each hit, e.g. ``question-like query, 42 words; lists agree 3/10:
        semantic 0.48 / keyword 0.52 (fixed)``."""
        w = self.semantic_weight
        how = {
            "score": "fixed",
            "rrf": "rank fusion",
            "adaptive": "adapted to the query",
            "smoothed": "fixed; bounded scores, similar results lift each other",
        }.get(self.method, self.method)
        weights = f"semantic {w:.2f} / keyword {1 - w:.2f} ({how})"
        f = self.features
        if f is None:
            return weights
        parts = [f"{f.form}, {f.words} word{'s' if f.words != 1 else ''}"]
        if f.exact:
            parts.append("exact phrase or author asked for")
        if f.rare_terms:
            parts.append("rare terms " + ", ".join(f.rare_terms))
        parts.append(f"lists agree {round(f.agree * TOP)}/{TOP}")
        return f"{'; '.join(parts)}: {weights}"


@dataclass(frozen=True)
class AdaptiveModel:
    """``w = sigmoid(bias + sum(coef[f] * (x[f] - mean[f]) / scale[f]))``, clipped to [lo, hi]."""

    bias: float = -0.2  # sigmoid(-0.2) = 0.45: the old fixed weight, when nothing else is known
    coef: dict[str, float] = field(default_factory=dict)
    mean: dict[str, float] = field(default_factory=dict)
    scale: dict[str, float] = field(default_factory=dict)
    lo: float = 0.05
    hi: float = 0.95
    fitted_on: str = ""

    def weight(self, f: QueryFeatures) -> float:
        x = f.vector()
        z = self.bias + (EXACT_PRIOR if f.exact else 0.0)
        for name, c in self.coef.items():
            if name in x:
                z += c * (x[name] - self.mean.get(name, 0.0)) / (self.scale.get(name, 1.0) or 1.0)
        return min(self.hi, max(self.lo, 1.0 / (1.0 + math.exp(-z))))

    def to_json(self) -> dict[str, Any]:
        return {
            "bias": self.bias,
            "coef": self.coef,
            "mean": self.mean,
            "scale": self.scale,
            "lo": self.lo,
            "hi": self.hi,
            "fitted_on": self.fitted_on,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AdaptiveModel:
        return cls(
            bias=float(data["bias"]),
            coef={k: float(v) for k, v in data.get("coef", {}).items()},
            mean={k: float(v) for k, v in data.get("mean", {}).items()},
            scale={k: float(v) for k, v in data.get("scale", {}).items()},
            lo=float(data.get("lo", 0.05)),
            hi=float(data.get("hi", 0.95)),
            fitted_on=str(data.get("fitted_on", "")),
        )


@cache
def default_model() -> AdaptiveModel:
    """The fitted model shipped with the package (the prior alone if the file is missing)."""
    if MODEL_FILE.exists():
        return AdaptiveModel.from_json(json.loads(MODEL_FILE.read_text(encoding="utf-8")))
    return AdaptiveModel()


def _is_question(text: str, words: list[str]) -> bool:
    if text.rstrip().endswith("?") or len(_SENTENCE_END.findall(text.rstrip())) >= 2:
        return True
    return bool(words) and words[0].lower().strip(",.:;") in _QUESTION_START


def _is_keyword_list(text: str) -> bool:
    chunks = [c.split() for c in re.split(r"[,;]", text) if c.strip()]
    return len(chunks) >= 3 and sum(map(len, chunks)) / len(chunks) <= 4.0


def _peak(scores: list[float]) -> float:
    if not scores or scores[0] <= 0:
        return 0.0
    tail = scores[min(len(scores), TOP) - 1]
    return max(0.0, (scores[0] - tail) / scores[0])


def query_features(
    pq: ParsedQuery,
    terms: list[TermStat],
    num_docs: int,
    keyword: list[tuple[str, float]],
    semantic: list[tuple[str, float]],
) -> QueryFeatures:
    """What the query and the first-stage lists say (cheap: no index access, a few dozen operations)."""
    text = pq.text
    words = text.split()
    used = [t for t in terms if t.kept and t.df > 0]
    log_n = math.log(max(num_docs, 2))
    idf = sum(math.log(max(num_docs, 1) / t.df) / log_n for t in used) / len(used) if used else 0.0
    rare = [t.term for t in sorted(used, key=lambda t: t.df) if t.df <= max(1, num_docs // 1000)][:3]
    sem_scores = [s for _, s in semantic[:TOP]]
    kw_top = {pid for pid, _ in keyword[:TOP]}
    sem_top = {pid for pid, _ in semantic[:TOP]}
    return QueryFeatures(
        words=len(words),
        question=_is_question(text, words),
        keyword_list=_is_keyword_list(text),
        idf=max(0.0, min(1.0, idf)),
        exact=bool(pq.phrases or pq.authors),
        kw_peak=_peak([s for _, s in keyword[:TOP]]),
        sem_peak=(sem_scores[0] - sem_scores[-1]) if sem_scores else 0.0,
        sem_top=sem_scores[0] if sem_scores else 0.0,
        agree=len(kw_top & sem_top) / TOP if kw_top and sem_top else 0.0,
        rare_terms=tuple(rare),
    )


def normalise(scores: list[float]) -> list[float]:
    """Min-max over the whole list (all equal: all 1.0). Measured against a depth-independent variant
    (min-max against rank 100, clipped): that one lost 0.01-0.03 nDCG on every tuning half."""
    if not scores:
        return []
    hi, lo = max(scores), min(scores)
    if hi - lo < 1e-12:
        return [1.0] * len(scores)
    return [(s - lo) / (hi - lo) for s in scores]


def keyword_ceiling(terms: list[TermStat], num_docs: int) -> float:
    """The BM25 a paper would score if every query term used were saturated in its text and its title: the
    sum of tantivy's idf ``ln(1 + (N - df + 0.5) / (df + 0.5))`` times ``(k1 + 1)``, times ``1 + TITLE_BOOST``
    (the title field's idf is approximated by the text's). 0.0 when no term occurs."""
    n = max(num_docs, 1)
    idf = sum(math.log(1.0 + (n - t.df + 0.5) / (t.df + 0.5)) for t in terms if t.kept and t.df > 0)
    return idf * (BM25_K1 + 1.0) * (1.0 + TITLE_BOOST)


def bounded(scores: list[float], ceiling: float) -> list[float]:
    """BM25 scores as a share of ``ceiling`` (:func:`keyword_ceiling`), at most 1; without a ceiling, of the
    top score."""
    top = ceiling if ceiling > 0 else max(scores, default=0.0)
    return [min(1.0, s / top) if top > 0 else 0.0 for s in scores]


def fuse(
    keyword: list[tuple[str, float]],
    semantic: list[tuple[str, float]],
    fusion: Fusion = DEFAULT_FUSION,
    semantic_weight: float | None = None,
    ceiling: float = 0.0,
) -> list[tuple[str, float]]:
    """Combine two ranked lists of (id, score), best first, into one (pure function, tested).

    ``semantic_weight`` overrides the fusion's own weight (the adaptive method passes its decision).
    ``ceiling`` is the query's :func:`keyword_ceiling`, read by the ``smoothed`` method only."""
    combined: dict[str, float] = {}
    w_s = fusion.semantic_weight if semantic_weight is None else semantic_weight
    w_k = 1.0 - w_s
    if fusion.method == "smoothed":  # bounded: a weak best match stays weak
        for (pid, _s), norm in zip(keyword, bounded([s for _, s in keyword], ceiling), strict=True):
            combined[pid] = combined.get(pid, 0.0) + w_k * norm
        for pid, cos in semantic:
            combined[pid] = combined.get(pid, 0.0) + w_s * max(0.0, (cos - COSINE_FLOOR) / (1.0 - COSINE_FLOOR))
    elif fusion.method == "rrf":
        for rank, (pid, _s) in enumerate(keyword):
            combined[pid] = combined.get(pid, 0.0) + w_k / (fusion.rrf_k + rank + 1)
        for rank, (pid, _s) in enumerate(semantic):
            combined[pid] = combined.get(pid, 0.0) + w_s / (fusion.rrf_k + rank + 1)
    else:
        for (pid, _s), norm in zip(keyword, normalise([s for _, s in keyword]), strict=True):
            combined[pid] = combined.get(pid, 0.0) + w_k * norm
        for (pid, _s), norm in zip(semantic, normalise([s for _, s in semantic]), strict=True):
            combined[pid] = combined.get(pid, 0.0) + w_s * norm
    return sorted(combined.items(), key=lambda kv: (-kv[1], kv[0]))


@dataclass(frozen=True)
class Lift:
    """What :func:`smooth` added to one paper: ``boost`` from ``neighbour`` (cosine ``similarity``)."""

    boost: float
    neighbour: str
    similarity: float


def smooth(
    ranked: list[tuple[str, float]],
    vectors: dict[str, np.ndarray],
    *,
    depth: int = SMOOTH_DEPTH,
    k: int = SMOOTH_K,
    weight: float = SMOOTH_WEIGHT,
) -> tuple[list[tuple[str, float]], dict[str, Lift]]:
    """Each of the top ``depth`` papers that has a unit vector in ``vectors`` gains ``weight`` times the best
    fused score among its ``k`` most similar such papers (pure function, tested). Papers without a vector keep
    their score; the rest of the list follows unchanged (a lift never lowers a score, so the head stays ahead).
    Returns the new order and each lifted paper's :class:`Lift`."""
    head = ranked[:depth]
    idx = [i for i, (pid, _) in enumerate(head) if pid in vectors]
    if len(idx) < 2 or k < 1 or weight <= 0:
        return ranked, {}
    ids = [head[i][0] for i in idx]
    scores = np.array([head[i][1] for i in idx])
    mat = np.stack([np.asarray(vectors[p], dtype=np.float32).reshape(-1) for p in ids])
    sims = mat @ mat.T
    np.fill_diagonal(sims, -np.inf)
    kk = min(k, len(ids) - 1)
    nearest = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]
    best = nearest[np.arange(len(ids)), np.argmax(scores[nearest], axis=1)]
    lifts: dict[str, Lift] = {}
    new = dict(head)
    for j, pid in enumerate(ids):
        b = weight * float(scores[best[j]])
        if b > 0:
            new[pid] += b
            lifts[pid] = Lift(b, ids[best[j]], float(sims[j, best[j]]))
    out = sorted(new.items(), key=lambda kv: (-kv[1], kv[0]))
    return out + ranked[depth:], lifts


def decide(
    fusion: Fusion,
    pq: ParsedQuery,
    terms: list[TermStat],
    num_docs: int,
    keyword: list[tuple[str, float]],
    semantic: list[tuple[str, float]],
    model: AdaptiveModel | None = None,
) -> FusionDecision:
    """The semantic weight for this query under ``fusion``, with what the query showed (fixed methods read
    the query only to explain it)."""
    feats = query_features(pq, terms, num_docs, keyword, semantic)
    if fusion.method != "adaptive":
        return FusionDecision(fusion.semantic_weight, fusion.method, feats)
    return FusionDecision((model or default_model()).weight(feats), "adaptive", feats)
