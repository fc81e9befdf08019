"""Cost of the "for you" ranker (paperfeed.recs) on a real home with ~80k papers and their vectors.

Times, on the home's database (SQLite or PostgreSQL via PAPERFEED_DATABASE_URL):

* the for-you ranking of a user with a 500-paper library: the default candidates (the last 7
  listing days plus the daily picks) ranked with the user's model (p50/p95 over repeats), and
  the first, cold call of the process (paper features and the background sample loaded);
* a refit after one new save (the 500-paper library plus one paper; p50/p95);
* the for-you sections of a digest for N users (default 10,000): each user's candidates (the
  newest listing day plus that day's picks) ranked with their model, top 10 kept. Models come
  from the refit-on-save cache; the users cycle over ``--models`` distinct fitted models with
  50-paper libraries (fitting 10,000 models is the refit cost above, paid at save time).

Libraries are coherent: the papers nearest (by embedding) to a random seed paper among a sample
of older papers, so each looks like one researcher's reading.

    PYTHONPATH=src python bench/bench_recs.py --home /work/homes/cs80k [--library 500] [--users 10000]
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from paperfeed.config import Settings
from paperfeed.recs.ranker import Ranker, Signal, UserSignals
from paperfeed.store import recs_queries as q
from paperfeed.store.db import Database


class Clock:
    """Wall and CPU (this process, all threads) time of a block: on a shared, loaded machine the
    CPU time is the better guide to what a quiet one would show."""

    def __enter__(self) -> Clock:
        self.w, self.c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *_: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.w, time.process_time() - self.c


def ms(values: list[float]) -> str:
    return f"p50 {statistics.median(values) * 1000:.0f} ms, p95 {pct(values, 95) * 1000:.0f} ms"


def pct(values: list[float], p: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def libraries(ranker: Ranker, db: Database, n_libs: int, size: int, seed: int) -> list[list[str]]:
    """``n_libs`` coherent libraries of ``size`` papers from a sample of older papers."""
    with db.read() as conn:
        pool = q.background_ids(conn, size=20_000, window_days=400, seed=seed)
    ranker._load(pool)
    pool = [p for p in pool if p in ranker._vectors]
    mat = np.stack([ranker._vectors[p] for p in pool])
    rng = np.random.default_rng(seed)
    out = []
    for s in rng.choice(len(pool), size=n_libs, replace=False):
        near = np.argsort(-(mat @ mat[s]))[:size]
        out.append([pool[int(i)] for i in near])
    return out


def signals_for(lib: list[str]) -> UserSignals:
    t0 = datetime(2026, 1, 1)
    return UserSignals(saves=tuple(Signal(p, 1.0, t0 + timedelta(hours=i)) for i, p in enumerate(lib)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--home", type=Path, required=True)
    ap.add_argument("--library", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--models", type=int, default=20)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()

    db = Database(Settings.from_env(home=a.home).db_url)
    ranker = Ranker(db)
    with db.read() as conn:
        from sqlalchemy import func, select

        from paperfeed.store.schema import embeddings, papers

        n_papers = conn.scalar(select(func.count()).select_from(papers))
        n_vec = conn.scalar(select(func.count()).select_from(embeddings))
    print(f"home {a.home}: {n_papers:,} papers, {n_vec:,} vectors")

    lib = libraries(ranker, db, 1, a.library + a.repeats, a.seed)[0]
    base, extra = lib[: a.library], lib[a.library :]
    signals = signals_for(base)
    t = time.perf_counter()
    cands = ranker.candidates()
    model = ranker.fit(signals)
    ranked = ranker.rank(signals, cands, model=model)
    cold = time.perf_counter() - t
    print(f"candidates: {len(cands):,} (last 7 listing days + picks); cold first fit+rank {cold * 1000:.0f} ms")
    print("top 3:", [(r.paper_id, round(r.relevance, 3), [w.text[:60] for w in r.reasons]) for r in ranked[:3]])

    fits: list[Clock] = []
    for p in extra:
        s = signals_for([*base, p])
        with Clock() as c:
            model = ranker.fit(s)
        fits.append(c)
    print(
        f"refit after one new save ({a.library + 1} positives): wall {ms([c.wall for c in fits])}; "
        f"CPU {ms([c.cpu for c in fits])}"
    )

    ranks: list[Clock] = []
    for _ in range(a.repeats):
        with Clock() as c:
            ranker.rank(signals, cands, model=model, limit=50)
        ranks.append(c)
    print(
        f"for-you ranking, {a.library}-paper library, model cached: wall {ms([c.wall for c in ranks])}; "
        f"CPU {ms([c.cpu for c in ranks])}"
    )

    day = ranker.candidates(days=1)
    libs = libraries(ranker, db, a.models, 50, a.seed + 1)
    models = []
    for lb in libs:
        s = signals_for(lb)
        models.append((s, ranker.fit(s)))
    with Clock() as c:
        for u in range(a.users):
            s, mdl = models[u % len(models)]
            ranker.rank(s, day, model=mdl, limit=10)
    print(
        f"digest for-you sections: {a.users:,} users x {len(day):,} candidates (newest day + picks), "
        f"50-paper libraries: wall {c.wall:.1f} s, CPU {c.cpu:.1f} s ({c.cpu / a.users * 1000:.1f} ms CPU a user)"
    )


if __name__ == "__main__":
    main()
