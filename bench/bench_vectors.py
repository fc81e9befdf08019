"""Benchmark: the vector index at one million papers - HNSW build time and memory, k=100 query
latency, recall@10 against exact search, and the database load/refresh paths.

Run: ``python bench/bench_vectors.py`` (needs ../shared/data for the real abstracts). Work files go
to ``--out`` (default ``/tmp/pf_bench_vectors``, never the repo); ``--reuse`` keeps an index and
a database built by an earlier run with the same parameters.

* Real vectors: ``--real`` (10,000) abstracts drawn at random (seed 7) from
  ``arxiv_daily/arxiv_cs_listings.jsonl.gz``, embedded once with the project encoder
  (``paper_text(title, abstract)``) and cached in ``/tmp/pf_bench_vecs.npy``. 500 of them are held
  out as "paper" queries (what ``similar()`` sends); the 400 ``paper_search_queries`` are embedded
  with ``encode_query`` as "text" queries.
* 1M synthetic vectors: every real vector ``v`` (the remaining 9,500) gets ~105 perturbed copies
  ``normalise(v + sigma * s_v * e)``, where ``e`` is Gaussian noise with the covariance of the real
  vectors (scaled to unit expected norm): papers vary along the directions real papers vary in,
  not isotropically. ``s_v`` follows the local density of the real set (papers with a close real
  neighbour get closer copies), so the spread of the NN distribution is kept too. ``sigma`` is
  chosen by bisection so that the median nearest-neighbour cosine of the full synthetic set
  matches the real set's; both distributions' quantiles are printed.
* Ground truth: exact top-100 by brute-force matrix products. Latencies are single-threaded,
  one query at a time, after a warm-up pass (``threads=1``), on whatever else the machine runs.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

from bench_util import pct  # a sibling module: python puts bench/ on sys.path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from paperfeed.config import Settings  # noqa: E402
from paperfeed.search import vectors as vx  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
LISTINGS = SHARED / "arxiv_daily" / "arxiv_cs_listings.jsonl.gz"
QUERIES = SHARED / "paper_search_queries"
CACHE = Path("/tmp/pf_bench_vecs.npy")
QCACHE = Path("/tmp/pf_bench_qvecs.npy")
MODEL = "bench-model"


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def quantiles(x: np.ndarray) -> str:
    qs = np.quantile(x, [0.05, 0.25, 0.5, 0.75, 0.95])
    return " ".join(f"p{p}={v:.3f}" for p, v in zip((5, 25, 50, 75, 95), qs, strict=True))


def latency(ms: list[float]) -> str:
    return f"p50={pct(ms, 50):.2f} ms p95={pct(ms, 95):.2f} ms p99={pct(ms, 99):.2f} ms"


# -- real vectors ---------------------------------------------------------------------------------
def real_vectors(n: int) -> tuple[np.ndarray, np.ndarray | None, str]:
    meta = CACHE.with_suffix(".json")
    if CACHE.exists() and meta.exists():
        info = json.loads(meta.read_text())
        vecs = np.load(CACHE)
        if len(vecs) >= n:
            qv = np.load(QCACHE) if QCACHE.exists() else None
            return vecs[:n], qv, info.get("encoder", "?")
    from paperfeed.search.encoder import get_encoder, paper_text

    rows = [json.loads(line) for line in gzip.open(LISTINGS, "rt", encoding="utf-8")]
    random.Random(7).shuffle(rows)
    rows = rows[:n]
    enc = get_encoder(Settings.from_env())
    t0 = time.perf_counter()
    vecs = enc.encode([paper_text(r["title"], r["abstract"]) for r in rows], batch_size=32)
    print(f"embedded {n} real abstracts in {time.perf_counter() - t0:.0f} s ({enc.model_name}, {enc.variant})")
    texts = []
    for name in ("computer_science_ai_search_queries.json", "computer_science_non_ai_search_queries.json"):
        texts += [v["search_query"] for v in json.loads((QUERIES / name).read_text()).values()]
    qv = np.stack([enc.encode_query(t) for t in texts]).astype(np.float32)
    label = f"paperfeed encoder {enc.model_name} ({enc.variant})"
    np.save(CACHE, vecs.astype(np.float32))
    np.save(QCACHE, qv)
    meta.write_text(json.dumps({"ids": [r["id"] for r in rows], "encoder": label}))
    return vecs, qv, label


# -- synthesis ------------------------------------------------------------------------------------
def nn_cos(queries: np.ndarray, data: np.ndarray, self_index: np.ndarray | None = None) -> np.ndarray:
    """Cosine to the nearest neighbour of each query in ``data`` (excluding itself)."""
    best = np.full(len(queries), -np.inf, dtype=np.float32)
    step = 200_000
    qstep = 2_048  # bounds the similarity block to qstep x step floats (1.6 GB)
    for q0 in range(0, len(queries), qstep):
        q = queries[q0 : q0 + qstep]
        own = None if self_index is None else self_index[q0 : q0 + qstep]
        for i in range(0, len(data), step):
            sims = q @ data[i : i + step].T
            if own is not None:
                rows = np.nonzero((own >= i) & (own < i + step))[0]
                sims[rows, own[rows] - i] = -np.inf
            best[q0 : q0 + qstep] = np.maximum(best[q0 : q0 + qstep], sims.max(axis=1))
    return best


class Synth:
    """``normalise(parent + sigma * noise)``; the noise is drawn once so any sigma is cheap to try."""

    def __init__(self, parents: np.ndarray, n: int, seed: int = 0) -> None:
        self.parents = parents
        cov = np.cov(parents, rowvar=False).astype(np.float64)
        chol = np.linalg.cholesky(cov + 1e-6 * np.eye(cov.shape[0])).astype(np.float32)
        scale = np.float32(1.0 / np.sqrt(np.trace(cov)))  # E|noise|^2 = 1
        # Papers in dense areas get closer copies: a parent whose own nearest real neighbour has
        # cosine c gets noise scaled by sqrt(1/c - 1) (siblings then sit at cosine ~c), relative
        # to the median parent. This keeps the spread of the real NN distribution, not just its middle.
        c = np.clip(nn_cos(parents, parents, np.arange(len(parents))), 0.2, 0.98)
        local = np.sqrt(1 / c - 1)
        local = (local / np.median(local)).astype(np.float32)
        rng = np.random.default_rng(seed)
        self.parent_of = np.arange(n) % len(parents)  # ~n/len(parents) copies of each real paper
        self.noise = np.empty((n, parents.shape[1]), dtype=np.float32)
        for i in range(0, n, 100_000):
            m = min(100_000, n - i)
            z = rng.standard_normal((m, parents.shape[1]), dtype=np.float32) @ chol.T
            self.noise[i : i + m] = z * (scale * local[self.parent_of[i : i + m]])[:, None]

    def rows(self, sigma: float, start: int, stop: int) -> np.ndarray:
        x = self.parents[self.parent_of[start:stop]] + np.float32(sigma) * self.noise[start:stop]
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    def make(self, sigma: float) -> np.ndarray:
        n = len(self.noise)
        out = np.empty_like(self.noise)
        for i in range(0, n, 100_000):
            out[i : i + 100_000] = self.rows(sigma, i, min(n, i + 100_000))
        return out

    def nn_median(self, sigma: float, sample: np.ndarray) -> float:
        """Median nearest-neighbour cosine of ``sample`` rows within the whole set, never materialised."""
        n = len(self.noise)
        q = np.concatenate([self.rows(sigma, i, i + 1) for i in sample])
        best = np.full(len(sample), -np.inf, dtype=np.float32)
        for i in range(0, n, 100_000):
            sims = q @ self.rows(sigma, i, min(n, i + 100_000)).T
            rows = np.nonzero((sample >= i) & (sample < i + 100_000))[0]
            sims[rows, sample[rows] - i] = -np.inf
            best = np.maximum(best, sims.max(axis=1))
        return float(np.median(best))


def calibrate(synth: Synth, target_median: float) -> float:
    """Bisection on sigma over the full-size set: its median NN cosine = the real set's."""
    sample = np.random.default_rng(1).choice(len(synth.noise), 300, replace=False)
    lo, hi = 0.05, 2.0
    for _ in range(11):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if synth.nn_median(mid, sample) > target_median else (lo, mid)
    return (lo + hi) / 2


# -- measurements -----------------------------------------------------------------------------
def exact_topk(queries: np.ndarray, data: np.ndarray, k: int) -> np.ndarray:
    best_s = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_i = np.zeros((len(queries), k), dtype=np.int64)
    step = 200_000
    for i in range(0, len(data), step):
        sims = queries @ data[i : i + step].T
        cand_s = np.concatenate([best_s, sims], axis=1)
        cand_i = np.concatenate([best_i, np.arange(i, i + sims.shape[1])[None, :].repeat(len(queries), 0)], axis=1)
        top = np.argpartition(-cand_s, k - 1, axis=1)[:, :k]
        best_s = np.take_along_axis(cand_s, top, 1)
        best_i = np.take_along_axis(cand_i, top, 1)
    order = np.argsort(-best_s, axis=1)
    return np.take_along_axis(best_i, order, 1)


def recall_at(found: list[np.ndarray], truth: np.ndarray, k: int = 10) -> float:
    hits = [len(set(f[:k].tolist()) & set(t[:k].tolist())) / k for f, t in zip(found, truth, strict=True)]
    return float(np.mean(hits))


def run_queries(index: Any, queries: np.ndarray, k: int) -> tuple[list[np.ndarray], list[float]]:
    for q in queries[:50]:  # warm-up (page cache, allocator)
        index.search(q, k, threads=1)
    found, times = [], []
    for q in queries:
        t0 = time.perf_counter()
        m = index.search(q, k, threads=1)
        times.append((time.perf_counter() - t0) * 1000)
        found.append(np.asarray(m.keys, dtype=np.int64) - 1)  # keys are row + 1
    return found, times


def db_stage(args: argparse.Namespace, x: np.ndarray, index: Any, params: vx.HnswParams, queries: np.ndarray) -> None:
    """The database paths at full size: bulk load, VectorIndex start-up, refresh, search."""
    from sqlalchemy import insert

    from paperfeed.store import embeddings as store
    from paperfeed.store.db import Database, utcnow
    from paperfeed.store.schema import embeddings, papers

    home = Path(args.out) / f"home-{len(x)}"
    settings = Settings(home=home, ann_threshold=20_000)
    fresh = not (args.reuse and (home / "paperfeed.db").exists())
    if fresh and home.exists():
        import shutil

        shutil.rmtree(home)
    db = Database(settings.db_url)
    db.migrate()
    if fresh:
        t0 = time.perf_counter()
        # Write times as a real `paperfeed index` run leaves them: ~50 papers/s, over hours.
        start = utcnow() - timedelta(seconds=len(x) / 50)
        step = 20_000
        for i in range(0, len(x), step):
            n = min(step, len(x) - i)
            ids = [f"b{j:07d}" for j in range(i, i + n)]
            with db.write() as conn:
                conn.execute(
                    insert(papers),
                    [
                        {
                            "id": p,
                            "title": p,
                            "abstract": "",
                            "authors": [],
                            "content_hash": p,
                            "created_at": start,
                            "modified_at": start,
                        }
                        for p in ids
                    ],
                )
                conn.execute(
                    insert(embeddings),
                    [
                        {
                            "id": i + j + 1,
                            "paper_id": p,
                            "model": MODEL,
                            "content_hash": p,
                            "vector": x[i + j].tobytes(),
                            "created_at": start + timedelta(seconds=(i + j) / 50),
                        }
                        for j, p in enumerate(ids)
                    ],
                )
        print(f"db: wrote {len(x):,} papers + vectors to SQLite in {time.perf_counter() - t0:.0f} s")
    t0 = time.perf_counter()
    rows = store.load_vectors(db, MODEL)
    t_load = time.perf_counter() - t0
    assert len(rows) == len(x) and np.array_equal(rows.matrix[123], x[123])
    print(f"db: load_vectors {len(rows):,} x {rows.matrix.shape[1]} float32 in {t_load:.2f} s (SQLite)")
    files = vx.IndexFiles(settings.index_dir / "vectors")
    with files.lock(blocking=True):
        files.save(
            index,
            rows.keys,
            rows.paper_ids,
            model=MODEL,
            params=params,
            watermark=rows.watermark,
            max_key=int(rows.keys.max()),
        )
    del rows
    r0 = rss_mb()
    t0 = time.perf_counter()
    vi = vx.VectorIndex(settings, db, model=MODEL, params=params)
    t_open = time.perf_counter() - t0
    print(
        f"db: VectorIndex start-up (verify CRC, map HNSW, ids, delta) {t_open:.2f} s, mode={vi.mode}, "
        f"len={len(vi):,}, RSS +{rss_mb() - r0:.0f} MB"
    )
    times = []
    for _ in range(20):
        t0 = time.perf_counter()
        vi.refresh()
        times.append((time.perf_counter() - t0) * 1000)
    print(f"db: refresh() with nothing changed: {latency(times)}")
    with db.write() as conn:  # one paper changes: the delta path
        conn.execute(
            embeddings.update()
            .where(embeddings.c.id == 5)
            .values(vector=x[6].tobytes(), created_at=utcnow() + timedelta(seconds=1))
        )
    t0 = time.perf_counter()
    vi.refresh()
    print(
        f"db: refresh() after one vector changed: {(time.perf_counter() - t0) * 1000:.1f} ms "
        f"(delta {len(vi._snap.pids)}, masked {len(vi._snap.masked)})"
    )
    for k in (10, 100):
        for q in queries[:50]:
            vi.search(q, k)
        times = []
        for q in queries:
            t0 = time.perf_counter()
            vi.search(q, k)
            times.append((time.perf_counter() - t0) * 1000)
        print(f"db: VectorIndex.search k={k}: {latency(times)}")
    print(f"db: process RSS {rss_mb():.0f} MB")
    from paperfeed.search.indexer import sync_ann

    t0 = time.perf_counter()
    todo = store.count_to_embed(db, MODEL)
    print(f"db: `paperfeed index` finding work (none: {todo}) {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    what = sync_ann(settings, db, MODEL, params=params, progress=False)
    print(f"db: `paperfeed index` HNSW step after one change: {what!r} in {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    what = sync_ann(settings, db, MODEL, params=params, progress=False)
    print(f"db: `paperfeed index` HNSW step, nothing changed: {what!r} in {time.perf_counter() - t0:.1f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--real", type=int, default=10_000)
    ap.add_argument("--sigma", type=float, default=None, help="noise scale (default: calibrated)")
    ap.add_argument("--dtype", default=vx.DEFAULT_PARAMS.dtype)
    ap.add_argument("--connectivity", type=int, default=vx.DEFAULT_PARAMS.connectivity)
    ap.add_argument("--expansion-add", type=int, default=vx.DEFAULT_PARAMS.expansion_add)
    ap.add_argument("--expansion-search", type=int, default=vx.DEFAULT_PARAMS.expansion_search)
    ap.add_argument("--sweep", default="64,96,128,192,256", help="expansion_search values to report")
    ap.add_argument("--configs", default="", help="more builds to compare, e.g. f32:16:64,i8:16:64 (dtype:M:ef_add)")
    ap.add_argument("--no-db", action="store_true", help="skip the database stage")
    ap.add_argument("--reuse", action="store_true")
    ap.add_argument("--out", default="/tmp/pf_bench_vectors")
    args = ap.parse_args()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    params = vx.HnswParams(args.dtype, args.connectivity, args.expansion_add, args.expansion_search)
    print(f"params: {params}, N={args.n:,}, cores={len(os.sched_getaffinity(0))}")

    real, text_q, label = real_vectors(args.real)
    print(f"real vectors: {len(real):,} from {label}")
    paper_q, parents = real[-500:], real[:-500]
    sample = np.random.default_rng(3).choice(len(parents), 1000, replace=False)
    real_nn = nn_cos(parents[sample], parents, sample)
    t0 = time.perf_counter()
    synth = Synth(parents, args.n)
    sigma = args.sigma if args.sigma is not None else calibrate(synth, float(np.median(real_nn)))
    x = synth.make(sigma)
    del synth
    print(f"synthesised {args.n:,} vectors (sigma={sigma:.3f}, calibrated) in {time.perf_counter() - t0:.0f} s")
    ssample = np.random.default_rng(4).choice(args.n, 500, replace=False)
    print(f"NN cosine, real ({len(parents):,} papers):   {quantiles(real_nn)}")
    print(f"NN cosine, synthetic ({args.n:,}):      {quantiles(nn_cos(x[ssample], x, ssample))}")
    print(f"top-1 cosine of held-out real papers:  {quantiles(nn_cos(paper_q, x))}")
    queries = {"paper": paper_q}
    if text_q is not None:
        queries["text"] = text_q
        print(f"top-1 cosine of text queries:           {quantiles(nn_cos(text_q, x))}")

    t0 = time.perf_counter()
    truth = {name: exact_topk(q, x, 100) for name, q in queries.items()}
    print(f"exact ground truth for {sum(len(q) for q in queries.values())} queries in {time.perf_counter() - t0:.1f} s")

    configs = [params]
    for spec in filter(None, args.configs.split(",")):
        dtype, m, ea = spec.split(":")
        configs.append(vx.HnswParams(dtype, int(m), int(ea), params.expansion_search))
    first: vx.Index | None = None
    for cfg in configs:
        index = build_and_measure(args, cfg, x, queries, truth)
        first = first or index
    if not args.no_db:
        assert first is not None  # configs starts with params
        first.expansion_search = params.expansion_search  # type: ignore[misc]  # usearch has a setter; its missing annotation makes mypy see a read-only property
        db_stage(args, x, first, params, np.concatenate(list(queries.values())))


def build_and_measure(
    args: argparse.Namespace, params: vx.HnswParams, x: np.ndarray, queries: dict, truth: dict
) -> vx.Index:
    print(f"--- {params}")
    path = Path(args.out) / f"hnsw-{args.n}-{params.dtype}-M{params.connectivity}-ef{params.expansion_add}.usearch"
    r0 = rss_mb()
    if args.reuse and path.exists():
        restored = vx.Index.restore(str(path), view=False)
        if restored is None:
            raise SystemExit(f"{path} is not a usearch index (delete it or run without --reuse)")
        index = restored
        print(f"reused {path}")
    else:
        index = vx.new_index(x.shape[1], params)
        t0 = time.perf_counter()
        vx.add_to_index(index, np.arange(1, args.n + 1, dtype=np.int64), x)
        dt = time.perf_counter() - t0
        print(f"HNSW build: {args.n:,} vectors in {dt:.0f} s ({args.n / dt:,.0f}/s, {vx.cpu_threads()} threads)")
        index.save(str(path))
    print(
        f"HNSW memory: usearch {index.memory_usage / 2**20:.0f} MB, process RSS +{rss_mb() - r0:.0f} MB, "
        f"file {path.stat().st_size / 2**20:.0f} MB"
    )
    for ef in [int(v) for v in args.sweep.split(",") if v]:
        index.expansion_search = ef  # type: ignore[misc]  # usearch has a setter; its missing annotation makes mypy see a read-only property
        for name, q in queries.items():
            found10, _ = run_queries(index, q, 10)
            found100, times = run_queries(index, q, 100)
            print(
                f"ef={ef:>4} {name:>5} queries: recall@10 {recall_at(found10, truth[name]):.4f} (k=10), "
                f"{recall_at(found100, truth[name]):.4f} (top 10 of k=100), "
                f"recall@100 {recall_at(found100, truth[name], 100):.4f}; k=100 latency {latency(times)}"
            )
    index.expansion_search = params.expansion_search  # type: ignore[misc]  # usearch has a setter; its missing annotation makes mypy see a read-only property
    return index


if __name__ == "__main__":
    main()
