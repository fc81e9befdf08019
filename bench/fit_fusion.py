"""Fit the query-adaptive fusion (and the long-query term pruning) on the TUNING halves only.

    python bench/fit_fusion.py --workdir /tmp/fusion-eval --home /tmp/fusion20k [--lexical] [--write]

Retrieves once per query of each set's tune and test halves (keyword top 300 with the term statistics,
semantic top 300, exactly as a ``limit=100`` search does), then:

* ``--lexical``: grid-searches the long-query pruning constants of ``paperfeed.search.lexical_query``
  (``LONG_QUERY_TERMS``, ``MAX_DF_SHARE``, ``LONG_QUERY_KEEP``, noise words dropped) by keyword-mode nDCG on
  the tune halves (mean over the three sets, each set counting once) and keeps the best for what follows
  (without it, the library defaults are used);
* tabulates, per tune query, the headline metric (nDCG@10; nDCG@5 for the judged set) of score fusion
  at 41 semantic weights 0, 0.025, ..., 1;
* fits ``sigmoid(bias + coef . standardised features)`` (``paperfeed.search.fusion``) to maximise the mean
  of that metric over the tune queries (each set counting once), with an L2 penalty chosen by 5-fold
  cross-validation within the tune queries (a large penalty leaves one fixed weight), by coordinate search
  from several starts;
* prints tune and test figures for keyword, semantic, the fixed 0.45, the best fixed weight on tune, the
  fitted model and the per-query oracle; ``--write`` stores the model in
  ``src/paperfeed/search/fusion_model.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import pickle
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from paperfeed.search import lexical_query
from paperfeed.search.eval_sets import SETS, load_split
from paperfeed.search.eval_suite import open_set
from paperfeed.search.evaluate import ndcg_at_k
from paperfeed.search.fusion import FITTED, MODEL_FILE, AdaptiveModel, Fusion, fuse, query_features
from paperfeed.search.hybrid import SearchService
from paperfeed.search.lexical_query import TermStat
from paperfeed.search.query import ParsedQuery, parse_query

DEPTH = 300
GRID = np.linspace(0.0, 1.0, 41)
SCORE = Fusion("score", 0.45)


@dataclass
class Item:
    set: str
    split: str
    qid: str
    pq: ParsedQuery
    qrels: dict[str, int]
    cutoff: int
    sem: list[tuple[str, float]]
    # the keyword side, filled by run_keyword (again after each change of the lexical constants)
    kw: list[tuple[str, float]] = field(default_factory=list)
    terms: list[TermStat] = field(default_factory=list)
    num_docs: int = 0


def metric(ranked: list[str], item: Item) -> float:
    return ndcg_at_k({item.qid: ranked}, {item.qid: item.qrels}, item.cutoff)


def retrieve(args: argparse.Namespace) -> tuple[list[Item], dict[str, SearchService]]:
    cache = args.workdir / "fit-semantic.pkl"
    cached = pickle.loads(cache.read_bytes()) if cache.exists() else {}
    items: list[Item] = []
    services: dict[str, SearchService] = {}
    for name in args.sets:
        settings, db = open_set(name, args.data, args.shared, args.workdir, home=args.home, progress=False)
        service = SearchService(settings, db)
        services[name] = service
        sem_parts = service._semantic()
        assert sem_parts is not None, f"{name}: no vectors"
        encoder, vectors = sem_parts
        for split in ("tune", "test"):
            qs = load_split(name, split, args.data, args.shared)
            for qid, text in qs.queries.items():
                if not any(g > 0 for g in qs.qrels.get(qid, {}).values()):
                    continue  # like trec_eval: a query without a relevant document is not scored
                pq = parse_query(text)
                key = (name, qid, pq.text)
                if key not in cached:
                    cached[key] = vectors.search(encoder.encode_query(pq.text), k=DEPTH)
                items.append(Item(name, split, qid, pq, qs.qrels[qid], qs.cutoff, cached[key]))
    cache.write_bytes(pickle.dumps(cached))
    return items, services


def run_keyword(items: list[Item], services: dict[str, SearchService]) -> None:
    for it in items:
        res = services[it.set].lexical.search(it.pq, limit=DEPTH)
        it.kw = [(h.paper_id, h.score) for h in res.hits]
        it.terms, it.num_docs = res.terms, res.num_docs


def per_set_mean(items: list[Item], values: np.ndarray, split: str) -> dict[str, float]:
    out = {}
    for name in dict.fromkeys(it.set for it in items):
        idx = [i for i, it in enumerate(items) if it.set == name and it.split == split]
        if idx:
            out[name] = float(np.mean(values[idx]))
    return out


def lexical_grid(items: list[Item], services: dict[str, SearchService]) -> None:
    tune = [it for it in items if it.split == "tune"]
    best = None
    for long_terms in (10, 16, 24, 10_000):
        for share in (0.05, 0.1, 0.25, 0.5):
            for keep in (12, 24):
                if long_terms == 10_000 and (share, keep) != (0.5, 24):
                    continue  # pruning off: one run is enough
                lexical_query.LONG_QUERY_TERMS, lexical_query.MAX_DF_SHARE = long_terms, share
                lexical_query.LONG_QUERY_KEEP, lexical_query.DROP_NOISE = keep, long_terms != 10_000
                run_keyword(tune, services)
                vals = np.array([metric([p for p, _ in it.kw], it) for it in tune])
                sets = per_set_mean(tune, vals, "tune")
                mean = float(np.mean(list(sets.values())))
                cells = "  ".join(f"{k} {v:.4f}" for k, v in sets.items())
                print(
                    f"lexical long>{long_terms:<5} df<={share:<4} keep {keep:<2}: mean {mean:.4f}  {cells}", flush=True
                )
                if best is None or mean > best[0] + 1e-9:
                    best = (mean, long_terms, share, keep)
    assert best is not None
    _m, lexical_query.LONG_QUERY_TERMS, lexical_query.MAX_DF_SHARE, lexical_query.LONG_QUERY_KEEP = best
    print(f"best lexical: LONG_QUERY_TERMS={best[1]} MAX_DF_SHARE={best[2]} LONG_QUERY_KEEP={best[3]}")


def tables(items: list[Item]) -> tuple[np.ndarray, np.ndarray]:
    table = np.zeros((len(items), len(GRID)))
    feats = np.zeros((len(items), len(FITTED)))
    for i, it in enumerate(items):
        for j, w in enumerate(GRID):
            table[i, j] = metric([p for p, _ in fuse(it.kw, it.sem, SCORE, float(w))[:100]], it)
        vec = query_features(it.pq, it.terms, it.num_docs, it.kw, it.sem).vector()
        feats[i] = [vec[f] for f in FITTED]
    return table, feats


def objective(params: np.ndarray, xs: np.ndarray, table: np.ndarray, groups: list[np.ndarray], lam: float) -> float:
    z = params[0] + xs @ params[1:]
    w = np.clip(1.0 / (1.0 + np.exp(-z)), 0.05, 0.95)
    j = np.rint(w * (len(GRID) - 1)).astype(int)
    vals = table[np.arange(len(j)), j]
    return float(np.mean([vals[g].mean() for g in groups]) - lam * np.sum(params[1:] ** 2))


def fit(xs: np.ndarray, table: np.ndarray, groups: list[np.ndarray], lam: float, seed: int = 16) -> np.ndarray:
    rng = np.random.default_rng(seed)
    best_p = np.zeros(xs.shape[1] + 1)
    best_p[0] = math.log(0.45 / 0.55)
    best_v = objective(best_p, xs, table, groups, lam)
    starts = [best_p.copy()] + [np.concatenate([[best_p[0]], rng.normal(0, 0.7, xs.shape[1])]) for _ in range(11)]
    for start in starts:
        p, v = start.copy(), objective(start, xs, table, groups, lam)
        step = 1.0
        while step > 0.02:
            improved = False
            for k in range(len(p)):
                for d in (step, -step):
                    q = p.copy()
                    q[k] += d
                    qv = objective(q, xs, table, groups, lam)
                    if qv > v + 1e-9:
                        p, v, improved = q, qv, True
            if not improved:
                step /= 2
        if v > best_v:
            best_p, best_v = p, v
    return best_p


def cross_validate(
    xs: np.ndarray, table: np.ndarray, set_of: list[str], lams: list[float], folds: int = 5, seed: int = 16
) -> float:
    """The L2 weight with the best mean held-out score over ``folds`` folds of the tune queries."""
    rng = np.random.default_rng(seed)
    fold_of = rng.integers(0, folds, len(xs))
    names = sorted(set(set_of))
    best = (-1.0, lams[0])
    for lam in lams:
        scores = []
        for f in range(folds):
            tr, va = np.nonzero(fold_of != f)[0], np.nonzero(fold_of == f)[0]
            g_tr = [np.array([k for k, i in enumerate(tr) if set_of[i] == n]) for n in names]
            g_va = [np.array([k for k, i in enumerate(va) if set_of[i] == n]) for n in names]
            params = fit(xs[tr], table[tr], [g for g in g_tr if len(g)], lam)
            scores.append(objective(params, xs[va], table[va], [g for g in g_va if len(g)], 0.0))
        mean = float(np.mean(scores))
        print(f"cv lam {lam:<6} held-out mean {mean:.4f}", flush=True)
        if mean > best[0] + 1e-9:
            best = (mean, lam)
    return best[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/paperfeed-eval"))
    ap.add_argument("--home", type=Path, default=None, help="the judged corpus home")
    ap.add_argument("--data", type=Path, default=Path("data/eval"))
    ap.add_argument("--shared", type=Path, default=Path("../shared/data"))
    ap.add_argument("--sets", nargs="+", default=list(SETS))
    ap.add_argument("--lexical", action="store_true")
    ap.add_argument(
        "--lam",
        type=float,
        nargs="+",
        default=[0.002, 0.01, 0.03, 0.1, 1.0],
        help="L2 weights to choose from by 5-fold cross-validation on the tune queries",
    )
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    t0 = time.perf_counter()
    items, services = retrieve(args)
    print(f"retrieved {len(items)} queries in {time.perf_counter() - t0:.0f} s", flush=True)
    if args.lexical:
        lexical_grid(items, services)
    run_keyword(items, services)
    table, feats = tables(items)
    tune_idx = np.array([i for i, it in enumerate(items) if it.split == "tune"])
    mean = feats[tune_idx].mean(axis=0)
    scale = feats[tune_idx].std(axis=0)
    scale[scale < 1e-9] = 1.0
    xs = (feats - mean) / scale
    names = list(dict.fromkeys(it.set for it in items))
    groups = [np.array([k for k, i in enumerate(tune_idx) if items[i].set == n]) for n in names]
    lam = cross_validate(xs[tune_idx], table[tune_idx], [items[i].set for i in tune_idx], args.lam)
    params = fit(xs[tune_idx], table[tune_idx], groups, lam)
    model = AdaptiveModel(
        bias=float(params[0]),
        coef={f: round(float(c), 4) for f, c in zip(FITTED, params[1:], strict=True)},
        mean={f: round(float(m), 6) for f, m in zip(FITTED, mean, strict=True)},
        scale={f: round(float(s), 6) for f, s in zip(FITTED, scale, strict=True)},
        fitted_on=f"tune halves of {', '.join(names)} ({len(tune_idx)} queries); bench/fit_fusion.py, "
        f"lam={lam} (5-fold CV)",
    )
    print(json.dumps(model.to_json(), indent=1))

    def weights_of(m: AdaptiveModel) -> np.ndarray:
        return np.array([m.weight(query_features(it.pq, it.terms, it.num_docs, it.kw, it.sem)) for it in items])

    w_model = weights_of(model)
    adaptive = np.array(
        [
            metric([p for p, _ in fuse(it.kw, it.sem, SCORE, float(w))[:100]], it)
            for it, w in zip(items, w_model, strict=True)
        ]
    )
    tune_means = np.mean([table[tune_idx][g].mean(axis=0) for g in groups], axis=0)
    best_fixed = int(np.argmax(tune_means))
    rows = {
        "keyword": table[:, 0],
        "semantic": table[:, -1],
        "fixed 0.45": table[:, 18],
        f"best fixed {GRID[best_fixed]:.3f}": table[:, best_fixed],
        "adaptive": adaptive,
        "oracle": table.max(axis=1),
    }
    for split in ("tune", "test"):
        print(f"\n== {split} (nDCG@10; judged nDCG@5) ==")
        for label, vals in rows.items():
            cells = "  ".join(f"{k} {v:.4f}" for k, v in per_set_mean(items, vals, split).items())
            print(f"{label:<18} {cells}")
        for name in names:
            idx = [i for i, it in enumerate(items) if it.set == name and it.split == split]
            ws = w_model[idx]
            print(f"  {name}: mean weight {ws.mean():.2f} (min {ws.min():.2f}, max {ws.max():.2f})")
    tune_fixed = per_set_mean(items, table[:, best_fixed], "tune")
    tune_adaptive = per_set_mean(items, adaptive, "tune")
    adopt = all(tune_adaptive[n] >= tune_fixed[n] for n in names)
    print(
        f"\nadopt adaptive as the default: {'yes' if adopt else 'no'} (rule: no worse than the best fixed weight, "
        f"{GRID[best_fixed]:.3f}, on every tuning half)"
    )
    if args.write:
        MODEL_FILE.write_text(json.dumps(model.to_json(), indent=1) + "\n", encoding="utf-8")
        print(f"wrote {MODEL_FILE}")
    print(f"done in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
