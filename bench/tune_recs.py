"""Tune the "for you" blend (paperfeed.recs.model) on a development sample of users, fast.

``paperfeed eval-recs`` refits every user's model for every setting tried, ~1 s a test paper.
This script pays that once: for each test paper of a development sample (users drawn with
another seed and disjoint from the evaluation sample, ``--exclude-seed 14``) it fits the
product's model and dumps, for every candidate, each score component the blend could use (the
product's components plus candidate features under test, and the classifier of a few fit
settings), standardised against the background sample exactly as the product does, together
with the relevance labels. ``learn`` then scores a grid of blend weights on those dumps in
seconds (nDCG@10 itself; folds are the dumps' ``--shard K/3`` parts, and each fold's blend is
also chosen on the other two and scored on it) and prints the best blends.

    PYTHONPATH=src python bench/tune_recs.py dump --home /work/homes/cs80k --users 200 --seed 1414 \\
        --exclude-seed 14 --out /tmp/recs_dev.pkl
    PYTHONPATH=src python bench/tune_recs.py learn /tmp/recs_dev.pkl --weight classifier=1 \\
        --weight emb_classifier=0,0.35 --weight nearest_emb=0,0.3 --popularity 0.15,0.4

Author names are never read: the components are those of the product's model (title, abstract,
categories, vectors) and of the text of the library.
"""

from __future__ import annotations

import argparse
import itertools
import math
import pickle
import time
from pathlib import Path
from typing import TypedDict

import numpy as np
import scipy.sparse as sp

from paperfeed.config import Settings
from paperfeed.recs import evaluate as ev
from paperfeed.recs import metrics, protocol
from paperfeed.recs import model as m
from paperfeed.recs.ranker import Weights
from paperfeed.store import embeddings as emb_store
from paperfeed.store.db import Database

CTX_CACHE = Path("/tmp/recs_ctx.pkl")
DOWNWEIGHTS = (0.5, 0.1)  # factors tried on the library papers closest to dismissed ones (``negatives``)
Rule = dict[str, float | str]  # one way to use the dismissals (``negatives``): kind, weights, column


class DumpedPaper(TypedDict):
    """One dumped test paper, its dumps merged (``_merge``): its query index, which candidates are
    relevant, and each component as (values over the candidates, background mean, background std)."""

    query: int
    y: np.ndarray
    cols: dict[str, tuple[np.ndarray, float, float]]


def load_context(shared: Path, home: Path, seed: int) -> ev.Context:
    """Corpus, HF upvotes, vectors and hashed counts of every paper (cached in /tmp)."""
    if CTX_CACHE.is_file():
        with CTX_CACHE.open("rb") as fh:
            corpus, emb, counts = pickle.load(fh)
    else:
        corpus = protocol.read_listings(shared / "arxiv_daily" / "arxiv_cs_listings.jsonl.gz")
        corpus.upvotes = protocol.read_hf_upvotes([shared / "hf_daily_papers" / "hf_daily_papers_by_day.jsonl.gz"])
        db = Database(Settings(home=home).db_url)
        try:
            rows = emb_store.load_vectors(db, None)
        finally:
            db.dispose()
        where = {pid: i for i, pid in enumerate(rows.paper_ids)}
        emb = np.zeros((len(corpus), rows.matrix.shape[1]), dtype=np.float32)
        for r, pid in enumerate(corpus.ids):
            i = where.get(pid)
            if i is not None:
                emb[r] = rows.matrix[i]
        counts = m.count_matrix([m.paper_text(t, a) for t, a in zip(corpus.titles, corpus.abstracts, strict=True)])
        with CTX_CACHE.open("wb") as fh:
            pickle.dump((corpus, emb, counts), fh, protocol=pickle.HIGHEST_PROTOCOL)
    ctx = ev.Context(corpus, emb, seed)
    ctx.prepare([])
    ctx.counts = counts
    return ctx


def _topk_mean(s: np.ndarray, k: int) -> np.ndarray:
    if s.shape[1] <= k:
        return s.mean(axis=1)
    return np.sort(s, axis=1)[:, -k:].mean(axis=1)


def _zotero_w(n: int) -> np.ndarray:
    w = 1.0 / (1.0 + np.log10(np.arange(n) + 1.0))
    return (w / w.sum())[::-1]  # library is oldest first; the newest gets the largest weight


def extra_features(f: m.Features, pos: m.Features, pw: np.ndarray, full: sp.csr_matrix, full_pos: sp.csr_matrix
                   ) -> dict[str, np.ndarray]:  # fmt: skip
    """Candidate features under test (not in the product unless the blend keeps them)."""
    se = f.emb @ pos.emb.T
    st = np.asarray((f.text @ pos.text.T).todense())
    sf = np.asarray((full @ full_pos.T).todense())
    zw = _zotero_w(len(pos))
    cw = pw / pw.sum()
    tc = np.asarray(pos.text.multiply(cw[:, None]).sum(axis=0)).ravel()
    tc = tc / (np.linalg.norm(tc) or 1.0)
    fc = np.asarray(full_pos.multiply(cw[:, None]).sum(axis=0)).ravel()
    fc = fc / (np.linalg.norm(fc) or 1.0)
    return {
        "emb_top3": _topk_mean(se, 3),
        "text_top3": _topk_mean(st, 3),
        "emb_centroid": se @ zw,
        "text_centroid": np.asarray(f.text @ tc).ravel(),
        "full_max": sf.max(axis=1),
        "full_top3": _topk_mean(sf, 3),
        "full_centroid": np.asarray(full @ fc).ravel(),
        "full_top2": _topk_mean(sf, 2),
        "full_top5": _topk_mean(sf, 5),
        "emb_top5": _topk_mean(se, 5),
        "text_top5": _topk_mean(st, 5),
    }


def dump(args: argparse.Namespace) -> None:
    ctx = load_context(args.shared, args.home, args.seed)
    corpus = ctx.corpus
    queries = protocol.build_queries(corpus, args.users, args.seed, exclude=(args.exclude_seed, args.exclude_users))
    eval_users = set(protocol.sample_users(protocol.eligible_users(corpus), args.exclude_users, args.exclude_seed))
    assert not eval_users & {q.user for q in queries}, "dev sample overlaps the evaluation sample"
    ctx.user_rows = {u: set(r) for u, r in protocol.user_papers(corpus).items() if u in {q.user for q in queries}}
    # Full-corpus idf (every listed paper, no vocabulary cap).
    assert ctx.counts is not None
    full_space = m.TextSpace.fit(ctx.counts)
    variants = _parse_variants(args.variant)
    out: list[dict[str, object]] = []
    t0 = time.perf_counter()
    for i, q in enumerate(queries):
        if i % args.shard[1] != args.shard[0]:
            continue
        rng = np.random.default_rng([ctx.seed, i])
        space, bg = ev._background(q, ctx, rng)
        sig = ev._signals(q, ctx)
        pw = ev.signal_weights(sig)
        pos = ev._features(ctx, q.library, space)
        model = m.fit(pos, bg, pos_weight=pw)
        cands = list(q.candidates)
        f = ev._features(ctx, cands, space)
        cols: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # name -> (candidate values, background values)
        cb, cc = model.components(bg), model.components(f)
        for k in ("classifier", "emb_classifier", "nearest_emb", "nearest_text", "category"):
            cols[k] = (cc[k], cb[k])
        full_c = full_space.weigh(ctx.counts[cands])
        full_b = full_space.weigh(ctx.counts[[corpus_row for corpus_row in _rows(ctx, bg.ids)]])
        full_p = full_space.weigh(ctx.counts[list(q.library)])
        ec = extra_features(f, pos, pw, full_c, full_p)
        eb = extra_features(bg, pos, pw, full_b, full_p)
        for k in ec:
            cols[k] = (ec[k], eb[k])
        for name, setting in variants.items():
            cols[name] = _variant(q, ctx, rng_seed=(ctx.seed, i), setting=setting, pos_rows=q.library, pw=pw,
                                  cands=cands, default=(space, bg))  # fmt: skip
        if args.negatives:
            cols.update(_negatives(q, ctx, model, space, bg, pos, pw, f, (ctx.seed, i)))
        # The classifier in the full-idf text space.
        fpos = m.Features(pos.ids, full_p, pos.emb, pos.categories)
        fbg = m.Features(bg.ids, full_b, bg.emb, bg.categories)
        fm = m.fit(fpos, fbg, pos_weight=pw)
        cols["clf_fullidf"] = (fm.classifier(m.Features(f.ids, full_c, f.emb, f.categories)), fm.classifier(fbg))
        up = np.array([corpus.upvotes.get(corpus.ids[r], 0) for r in cands], dtype=np.float64)
        upb = np.array([corpus.upvotes.get(pid, 0) for pid in bg.ids], dtype=np.float64)
        cols["pop"] = (np.log1p(up), np.log1p(upb))
        names = sorted(cols)
        xc = np.stack([cols[k][0] for k in names], axis=1).astype(np.float32)
        mean = np.array([cols[k][1].mean() for k in names])
        std = np.array([cols[k][1].std() or 1.0 for k in names])
        out.append({
            "query": i, "user": hash(q.user), "names": names, "x": xc, "bg_mean": mean, "bg_std": std,
            "y": np.array([r in q.relevant for r in cands], dtype=bool),
        })  # fmt: skip
        if len(out) % 25 == 0:
            print(f"{len(out)} queries, {time.perf_counter() - t0:.0f} s", flush=True)
    with Path(args.out).open("wb") as fh:
        pickle.dump(out, fh, protocol=pickle.HIGHEST_PROTOCOL)
    print(f"wrote {len(out)} queries to {args.out} in {time.perf_counter() - t0:.0f} s")


def _parse_variants(specs: list[str]) -> dict[str, dict[str, float]]:
    """``name:KEY=VAL,KEY=VAL`` -> settings; KEY is a module constant of paperfeed.recs.model or
    BG_DAYS / BG_SIZE (the background sample's window and size)."""
    out = {}
    for spec in specs:
        name, _, rest = spec.partition(":")
        out[name] = {k: float(v) for k, v in (kv.split("=") for kv in rest.split(",") if kv)}
    return out


def _variant(q: protocol.Query, ctx: ev.Context, *, rng_seed: tuple[int, int], setting: dict[str, float],
             pos_rows: tuple[int, ...], pw: np.ndarray, cands: list[int], default: tuple[m.TextSpace, m.Features]
             ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """The classifier of one fit setting: (candidate values, its own background's values)."""
    assert ctx.counts is not None
    consts = {k: v for k, v in setting.items() if not k.startswith("BG_") and k != "EMB_ONLY"}
    unknown = [k for k in consts if not hasattr(m, k)]
    if unknown:
        raise SystemExit(f"paperfeed.recs.model has no setting {unknown[0]}")
    if "BG_DAYS" in setting or "BG_SIZE" in setting:
        rng = np.random.default_rng([*rng_seed, 7])
        rows = ctx.rows_between(ctx.window_start(q.day, int(setting.get("BG_DAYS", ev.BACKGROUND_DAYS))), q.day)
        size = int(setting.get("BG_SIZE", ev.BACKGROUND_SIZE))
        if len(rows) > size:
            rows = np.sort(rng.choice(rows, size=size, replace=False))
        space = m.TextSpace.fit(ctx.counts[rows])
        bg = ev._features(ctx, rows, space)
    else:
        space, bg = default
    pos = ev._features(ctx, pos_rows, space)
    if "EMB_ONLY" in setting:  # a logistic regression on the embedding alone (C = the value)
        from sklearn.linear_model import LogisticRegression

        keep = [j for j, pid in enumerate(bg.ids) if pid not in set(pos.ids)]
        xe = np.vstack([pos.emb, bg.emb[keep]])
        ye = np.r_[np.ones(len(pos)), np.zeros(len(keep))]
        we = np.r_[pw * (len(keep) / pw.sum()), np.ones(len(keep))]
        lr = LogisticRegression(C=setting["EMB_ONLY"], solver="liblinear").fit(xe, ye, sample_weight=we)
        cand = ev._features(ctx, cands, space)
        return lr.decision_function(cand.emb), lr.decision_function(bg.emb)
    saved = {k: getattr(m, k) for k in consts}
    for k, v in consts.items():
        setattr(m, k, v)
    try:
        if "HALF_LIFE" in consts:  # the library's age weights follow the setting
            pw = ev.signal_weights(ev._signals(q, ctx))
        vm = m.fit(pos, bg, pos_weight=pw)
    finally:
        for k, v in saved.items():
            setattr(m, k, v)
    return vm.classifier(ev._features(ctx, cands, space)), vm.classifier(bg)


def _negatives(q: protocol.Query, ctx: ev.Context, model: m.UserModel, space: m.TextSpace, bg: m.Features,
               pos: m.Features, pw: np.ndarray, f: m.Features, rng_seed: tuple[int, int]
               ) -> dict[str, tuple[np.ndarray, np.ndarray]]:  # fmt: skip
    """The simulated "not interested" of eval-recs (the product model's 5 top papers of the
    previous listing day that are not the user's) as candidate features: similarity to them and
    the classifier refitted with them at four weights (P: each as heavy as a positive), and the
    dismissed papers' own blend components (what put them at the top)."""
    dismissed = ev.previous_day_dismissals(
        q,
        ctx,
        lambda rows, day: ev._paperfeed_scores(rows, model, space, ctx, day),
        np.random.default_rng([*rng_seed, 9]),
    )
    weights = {"1": 1.0, "3": 3.0, "10": 10.0, "P": len(bg) / max(float(pw.sum()), 1e-9)}  # P: as a positive
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if not dismissed:
        z = (np.zeros(len(f)), np.zeros(len(bg)))
        cc, cb = model.components(f), model.components(bg)  # nothing to weigh down: the model's own
        for factor in DOWNWEIGHTS:
            for k in ("classifier", "emb_classifier", "nearest_emb", "nearest_text"):
                out[f"dw{factor}_{k}"] = (cc[k], cb[k])
        for k in ("neg_emb", "neg_text", "neg_max", "dz_classifier", "dz_emb_classifier", "dz_nearest_emb",
                  "dz_nearest_text", "dz_category", "dz_negative", "dz_pop"):  # fmt: skip
            out[k] = z
        for tag in weights:
            out[f"clf_neg{tag}"] = (model.classifier(f), model.classifier(bg))
            out[f"embclf_neg{tag}"] = (model.emb_classifier(f), model.emb_classifier(bg))
        return out
    nf = ev._features(ctx, dismissed, space)
    # The dismissed papers' own standardised components (mean over the five) and popularity, as
    # constant columns (background zeros: read raw): what misled the blend for this user.
    dc = model.components(nf)
    zero_b = np.zeros(len(bg))
    for k, v in dc.items():
        out[f"dz_{k}"] = (np.full(len(f), float(model.parts[k].z(v).mean())), zero_b)
    up = np.array([ctx.corpus.upvotes.get(pid, 0) for pid in nf.ids], dtype=np.float64)
    out["dz_pop"] = (np.full(len(f), float(np.log1p(up).mean())), zero_b)
    se_f, se_b = f.emb @ nf.emb.T, bg.emb @ nf.emb.T
    st_f, st_b = (f.text @ nf.text.T).toarray(), (bg.text @ nf.text.T).toarray()
    for which, a, b in (("neg_emb", se_f, se_b), ("neg_text", st_f, st_b), ("neg_max", se_f + st_f, se_b + st_b)):
        out[which] = (np.asarray(a).max(axis=1), np.asarray(b).max(axis=1))
    for tag, w in weights.items():
        saved = m.NEGATIVE_WEIGHT
        m.NEGATIVE_WEIGHT = w
        try:
            vm = m.fit(pos, bg, pos_weight=pw, neg=nf)
        finally:
            m.NEGATIVE_WEIGHT = saved
        out[f"clf_neg{tag}"] = (vm.classifier(f), vm.classifier(bg))
        out[f"embclf_neg{tag}"] = (vm.emb_classifier(f), vm.emb_classifier(bg))
    # The library papers that pulled the dismissed ones up (each one's closest, as the reasons
    # name it), weighed down: the model refitted without negatives, every component recomputed.
    _, _, closest = model.nearest(nf)
    for factor in DOWNWEIGHTS:
        pw2 = pw.copy()
        pw2[np.unique(closest)] *= factor
        vm = m.fit(pos, bg, pos_weight=pw2)
        cc, cb = vm.components(f), vm.components(bg)
        for k in ("classifier", "emb_classifier", "nearest_emb", "nearest_text"):
            out[f"dw{factor}_{k}"] = (cc[k], cb[k])
    return out


_ROW_OF: dict[str, int] = {}


def _rows(ctx: ev.Context, ids: list[str]) -> list[int]:
    if not _ROW_OF:
        _ROW_OF.update({pid: r for r, pid in enumerate(ctx.corpus.ids)})
    return [_ROW_OF[i] for i in ids]


# -- choosing the blend ------------------------------------------------------------------------------
def _merge(paths: list[str], renames: list[str]) -> list[DumpedPaper]:
    """Dumps of the same test papers (e.g. a second dump with more fit variants) joined by query;
    a column keeps its first dump's values. ``OLD=NEW`` renames a column where NEW is missing."""
    by: dict[int, DumpedPaper] = {}
    for p in paths:
        with Path(p).open("rb") as fh:
            for d in pickle.load(fh):
                x = np.asarray(d["x"], dtype=np.float64)
                cols = {n: (x[:, j], float(d["bg_mean"][j]), float(d["bg_std"][j]) or 1.0)
                        for j, n in enumerate(d["names"])}  # fmt: skip
                for r in renames:
                    old, new = r.split("=")
                    if old in cols and new not in cols:
                        cols[new] = cols[old]
                q = by.setdefault(int(d["query"]), {"query": d["query"], "y": d["y"], "cols": {}})
                for n, v in cols.items():
                    q["cols"].setdefault(n, v)
    return list(by.values())


def _ndcg(data: list[DumpedPaper], weights: dict[str, float], popularity: float) -> np.ndarray:
    """nDCG@10 of each test paper under a blend: sum of weight x background-standardised
    component, plus the ranker's popularity term (``popularity`` x log1p(upvotes) / log1p(50)),
    ties broken by a per-query seeded shuffle."""
    out = []
    for d in data:
        cols = d["cols"]
        s = sum(w * (cols[n][0] - cols[n][1]) / cols[n][2] for n, w in weights.items() if w)
        s = s + popularity * cols["pop"][0] / math.log1p(50.0)
        y = np.asarray(d["y"])
        tie = np.random.default_rng(int(d["query"])).random(len(y))
        out.append(metrics.ndcg_at(list(np.lexsort((tie, -np.asarray(s)))), set(np.flatnonzero(y).tolist())))
    return np.asarray(out)


def learn(args: argparse.Namespace) -> None:
    """Grid search of blend weights on nDCG@10 itself (a pairwise logistic regression over the
    components, tried first, ranks the whole list well and the top 10 worse). Folds are the
    query index mod 3 (the --shard K/3 of the dumps); each fold's blend is also chosen on the
    other two and scored on it (leave-one-fold-out), which is the honest dev figure."""
    data = _merge(args.dumps, args.rename)
    grid = {n: [float(v) for v in vals.split(",")] for n, _, vals in (w.partition("=") for w in args.weight)}
    pops = [float(v) for v in args.popularity.split(",")]
    folds = {k: [d for d in data if int(d["query"]) % 3 == k] for k in range(3)}
    print(f"{len(data)} test papers, folds {[len(f) for f in folds.values()]}")
    results = []
    for combo in itertools.product(*grid.values(), pops):
        w = dict(zip(grid, combo[:-1], strict=True))
        per = _ndcg(data, w, combo[-1])
        idx = {k: np.isin([int(d["query"]) for d in data], [int(d["query"]) for d in f]) for k, f in folds.items()}
        results.append((combo, per.mean(), {k: per[i].mean() for k, i in idx.items()}))
    results.sort(key=lambda r: -r[1])
    print("weights (" + ", ".join(grid) + ", popularity): nDCG@10 all | per fold")
    for combo, mean, per_fold in results[: args.top]:
        print(f"  {combo}: {mean:.4f} | " + " ".join(f"{v:.4f}" for v in per_fold.values()))
    for k in folds:
        n = {j: len(folds[j]) for j in folds if j != k}
        best = max(results, key=lambda r: sum(r[2][j] * n[j] for j in n))
        print(f"  chosen without fold {k}: {best[0]} -> fold {k} {best[2][k]:.4f}")


# -- "not interested" rules ------------------------------------------------------------------------
def _negative_rule_scores(d: DumpedPaper, rule: Rule) -> np.ndarray:
    """The product blend of one dumped test paper, with the simulated dismissals used by ``rule``."""
    cols = d["cols"]

    def z(name: str) -> np.ndarray:
        v, mu, sd = cols[name]
        return np.asarray((v - mu) / sd)

    weights = {"classifier": m.W_CLASSIFIER, "emb_classifier": m.W_EMB_CLASSIFIER, "nearest_emb": m.W_NEAREST_EMB,
               "nearest_text": m.W_NEAREST_TEXT, "category": m.W_CATEGORY}  # fmt: skip
    popularity = Weights().popularity
    tag = rule.get("refit")
    active = bool(np.asarray(cols["neg_max"][0]).max() > 0)  # dismissals exist (not the first listing day)
    kind = rule.get("kind") if active else None
    if kind == "adapt":  # each component (and popularity) counts less the more it put the dismissed on top
        a, ap_ = float(rule["a"]), float(rule["pop"])
        weights = {k: w * math.exp(-a * float(cols[f"dz_{k}"][0][0]) / 3.0) for k, w in weights.items()}
        popularity *= math.exp(-ap_ * (float(cols["dz_pop"][0][0]) - 1.0))
    s = np.zeros(len(np.asarray(d["y"])))
    for k, w in weights.items():
        col = k
        if active and tag and k == "classifier":
            col = f"clf_neg{tag}"
        elif active and tag and k == "emb_classifier":
            col = f"embclf_neg{tag}"
        s = s + w * z(col)
    s = s + popularity * cols["pop"][0] / math.log1p(50.0)
    w = float(rule.get("w", 0.0))
    if kind == "similar":  # standardised similarity to the closest dismissed paper
        s = s - w * np.clip(z(str(rule["col"])), 0.0, None)
    elif kind == "contrast":  # only where closer to a dismissed paper than to the library
        near = cols["nearest_emb"][0] + cols["nearest_text"][0]
        s = s - w * np.clip(cols["neg_max"][0] - near - float(rule["margin"]), 0.0, None) / 0.1
    elif kind == "downweight":  # the library papers that pulled dismissed ones up count less
        s = sum((w_ * z(f"dw{rule['factor']}_{k}") if k != "category" else w_ * z(k) for k, w_ in weights.items()),
                np.zeros(len(s)))  # fmt: skip
        s = s + popularity * cols["pop"][0] / math.log1p(50.0)
    elif kind == "threshold":  # near-duplicates of a dismissed paper
        s = s - w * (cols["neg_emb"][0] > float(rule["cos"]))
    return s


def negatives(args: argparse.Namespace) -> None:
    """Ways to use the simulated "not interested" (dumped with ``dump --negatives``), each scored
    against the blend without them: mean nDCG@10 difference with a paired bootstrap interval."""
    data = _merge(args.dumps, [])
    if not all("dz_pop" in d["cols"] for d in data):
        raise SystemExit("these dumps lack the --negatives columns (re-dump with --negatives)")
    rules: list[Rule] = [{}]
    for tag in ("1", "3", "10", "P"):
        rules.append({"refit": tag})
    for col in ("neg_max", "neg_emb", "neg_text"):
        rules += [{"refit": "3", "kind": "similar", "col": col, "w": w} for w in (0.05, 0.15, 0.3)]
    rules += [
        {"refit": "3", "kind": "contrast", "margin": mg, "w": w} for mg in (-0.1, 0.0, 0.1) for w in (0.1, 0.3, 1.0)
    ]
    rules += [{"kind": "threshold", "cos": c, "w": w} for c in (0.6, 0.7) for w in (0.5, 2.0)]
    if "dw0.5_classifier" in data[0]["cols"]:
        rules += [{"kind": "downweight", "factor": f} for f in DOWNWEIGHTS]
    rules += [{"kind": "adapt", "a": a, "pop": p} for a in (0.0, 0.1, 0.4) for p in (0.0, 0.25, 1.0) if a or p]

    def ndcgs(rule: Rule) -> np.ndarray:
        out = []
        for d in data:
            y = np.asarray(d["y"])
            tie = np.random.default_rng(int(d["query"])).random(len(y))
            s = _negative_rule_scores(d, rule)
            out.append(metrics.ndcg_at(list(np.lexsort((tie, -s))), set(np.flatnonzero(y).tolist())))
        return np.asarray(out)

    base = ndcgs({})
    rng = np.random.default_rng(0)
    print(f"{len(data)} test papers; the blend without dismissals: nDCG@10 {base.mean():.4f}")
    rows = []
    for rule in rules[1:]:
        diff = ndcgs(rule) - base
        boot = [diff[rng.integers(0, len(diff), len(diff))].mean() for _ in range(1000)]
        rows.append((diff.mean(), np.percentile(boot, 2.5), np.percentile(boot, 97.5), rule))
    for mean, low, high, rule in sorted(rows, key=lambda r: -r[0]):
        print(f"  {mean:+.4f} [{low:+.4f}, {high:+.4f}]  {rule}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("dump")
    d.add_argument("--shared", type=Path, default=Path("../shared/data"))
    d.add_argument("--home", type=Path, required=True)
    d.add_argument("--users", type=int, default=300)
    d.add_argument("--seed", type=int, default=protocol.TUNING_SEED)
    d.add_argument("--exclude-seed", type=int, default=protocol.EVAL_SEED)
    d.add_argument("--exclude-users", type=int, default=protocol.EVAL_USERS)
    d.add_argument("--shard", type=lambda s: tuple(int(x) for x in s.split("/")), default=(0, 1))
    d.add_argument("--out", required=True)
    d.add_argument("--variant", action="append", default=[], help="name:KEY=VAL,... a classifier fit setting")
    d.add_argument("--negatives", action="store_true", help="also the simulated not-interested features")
    lr = sub.add_parser("learn")
    lr.add_argument("dumps", nargs="+")
    lr.add_argument("--rename", action="append", default=[], help="OLD=NEW column name (where NEW is missing)")
    lr.add_argument("--weight", action="append", default=[], help="NAME=v1,v2,...: weights to try for a column")
    lr.add_argument("--popularity", default="0.15", help="popularity dials to try (v1,v2,...)")
    lr.add_argument("--top", type=int, default=10)
    ng = sub.add_parser("negatives")
    ng.add_argument("dumps", nargs="+")
    args = ap.parse_args()
    {"dump": dump, "learn": learn, "negatives": negatives}[args.cmd](args)


if __name__ == "__main__":
    main()
