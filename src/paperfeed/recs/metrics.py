"""Ranking metrics for ``paperfeed eval-recs``: Recall@10, MRR and nDCG@10 (binary relevance),
averaged over queries, with percentile-bootstrap 95% intervals over queries.

Definitions (one query, ranked list ``r``, relevant set ``R``):

* Recall@k = |top-k ∩ R| / |R|
* MRR = 1 / (rank of the first relevant item), 0 if none is ranked (full list, not cut at 10)
* nDCG@k = DCG@k / IDCG@k with DCG = Σ 1/log2(rank + 1) over relevant items in the top k and
  IDCG the same for the ideal order (min(|R|, k) hits at the top)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

K = 10


def recall_at(ranked: Sequence[int], relevant: set[int] | frozenset[int], k: int = K) -> float:
    if not relevant:
        return 0.0
    return sum(1 for r in ranked[:k] if r in relevant) / len(relevant)


def reciprocal_rank(ranked: Sequence[int], relevant: set[int] | frozenset[int]) -> float:
    for i, r in enumerate(ranked, 1):
        if r in relevant:
            return 1.0 / i
    return 0.0


def ndcg_at(ranked: Sequence[int], relevant: set[int] | frozenset[int], k: int = K) -> float:
    if not relevant:
        return 0.0
    dcg = sum(1.0 / math.log2(i + 1) for i, r in enumerate(ranked[:k], 1) if r in relevant)
    ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(len(relevant), k) + 1))
    return dcg / ideal


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float

    def overlaps(self, other: Interval) -> bool:
        return not (self.low > other.high or other.low > self.high)


def bootstrap(values: Sequence[float], *, rounds: int = 1000, seed: int = 0, level: float = 0.95) -> Interval:
    """Mean of ``values`` with a percentile bootstrap interval (resampling the values)."""
    v = np.asarray(values, dtype=np.float64)
    if not len(v):
        return Interval(0.0, 0.0, 0.0)
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, len(v), size=(rounds, len(v)))].mean(axis=1)
    a = (1.0 - level) / 2.0
    return Interval(float(v.mean()), float(np.quantile(means, a)), float(np.quantile(means, 1.0 - a)))


@dataclass(frozen=True)
class QueryScores:
    recall: float
    mrr: float
    ndcg: float


def score_query(ranked: Sequence[int], relevant: set[int] | frozenset[int]) -> QueryScores:
    return QueryScores(recall_at(ranked, relevant), reciprocal_rank(ranked, relevant), ndcg_at(ranked, relevant))
