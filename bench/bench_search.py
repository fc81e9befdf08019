"""End-to-end search latency through ``SearchService`` (query parsing, query embedding,
BM25, vectors, fusion, filters, row fetch, highlighting), per mode, over the 400 realistic
queries in ``../shared/data/paper_search_queries/``.

    # 75k real papers: a home with both shared files imported and `paperfeed index` run
    python bench/bench_search.py --home /tmp/bench75k
    # 1M papers: copy that home, add 925,272 generated papers (text like bench_lexical.py, vectors
    # synthesised like bench_vectors.py from the real embeddings), index, then time
    python bench/bench_search.py --build-1m /tmp/bench1m --from-home /tmp/bench75k
    python bench/bench_search.py --home /tmp/bench1m
    # the same 1M papers in PostgreSQL with pgvector (bench/bench_pgvector.py loads them)
    python bench/bench_search.py --home /tmp/bench1m --database-url postgresql://.../bench1m
    # issue 16's "no slower": hybrid with and without the per-query reading, query by query, same process
    python bench/bench_search.py --home /tmp/bench1m --compare-reading --passes 2
    # the opt-in Fusion("smoothed") against the default, query by query, same process
    python bench/bench_search.py --home /tmp/bench1m --compare-smoothing --passes 1

Prints wall p50/p95/p99 (and CPU p95) per mode and the process's peak RSS. Targets (2 cores):
hybrid p95 <= 30 ms at 75k; hybrid p95 <= 60 ms and keyword p95 <= 40 ms at 1M, RSS <= 6 GB.
"""

from __future__ import annotations

import argparse
import functools
import resource
import shutil
import sqlite3
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_lexical import load_queries, synthetic_rows  # noqa: E402
from bench_util import pct  # noqa: E402
from bench_vectors import Synth, calibrate, nn_cos  # noqa: E402
from paperfeed.config import Settings  # noqa: E402
from paperfeed.records import PaperRecord  # noqa: E402
from paperfeed.search import hybrid  # noqa: E402
from paperfeed.search.fusion import DEFAULT_FUSION, SMOOTHED, Fusion, FusionDecision  # noqa: E402
from paperfeed.search.hybrid import SearchRequest, SearchService  # noqa: E402
from paperfeed.store import embeddings as emb_store  # noqa: E402
from paperfeed.store.db import Database  # noqa: E402
from paperfeed.store.papers import upsert_arxiv  # noqa: E402

TARGET_TOTAL = 1_000_000


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(home: Path, passes: int, database_url: str | None = None) -> None:
    settings = Settings(home=home, secret_key="bench", database_url=database_url)
    db = Database(settings.db_url)
    service = SearchService(settings, db)
    queries = load_queries()
    t0 = time.perf_counter()
    service.search(SearchRequest(q="warm up the encoder and the indexes", mode="hybrid"))
    print(
        f"papers: {db.engine.connect().exec_driver_sql('select count(*) from papers').scalar():,}; "
        f"start-up (encoder + vectors + lexical) {time.perf_counter() - t0:.1f} s"
    )
    for mode in ("keyword", "semantic", "hybrid"):
        for q in queries[:50]:  # warm caches of the page cache / mmap, not the query cache
            service.search(SearchRequest(q=q + " warmup", mode=mode))
        wall: list[float] = []
        cpu: list[float] = []
        for _ in range(passes):
            service._qcache.clear()  # every query pays for its embedding
            for q in queries:
                w0, c0 = time.perf_counter(), time.thread_time()
                service.search(SearchRequest(q=q, mode=mode, limit=20))
                wall.append((time.perf_counter() - w0) * 1000)
                cpu.append((time.thread_time() - c0) * 1000)
        print(
            f"{mode:<8} wall p50 {pct(wall, 50):6.1f}  p95 {pct(wall, 95):6.1f}  p99 {pct(wall, 99):6.1f} ms"
            f"   calling-thread CPU p95 {pct(cpu, 95):6.1f} ms   ({len(wall)} queries)"
        )
    print(f"vector index: {service._vectors.mode if service._vectors is not None else 'none'}")
    print(f"peak RSS {rss_mb():,.0f} MB")


def _plain_decide(fusion: Fusion, *_args: object) -> FusionDecision:
    """Fusion as before issue 16: the fixed weight, nothing read from the query or the lists."""
    return FusionDecision(fusion.semantic_weight, fusion.method)


def loaded_service(home: Path) -> tuple[SearchService, list[str]]:
    """A search service on ``home`` with its encoder and indexes loaded, and the benchmark queries."""
    settings = Settings(home=home, secret_key="bench")
    service = SearchService(settings, Database(settings.db_url))
    service.search(SearchRequest(q="warm up the encoder and the indexes", mode="hybrid"))
    return service, load_queries()


def compare_reading(home: Path, passes: int) -> None:
    """Hybrid searches with the query reading (``fusion.decide``: term rarity, score peaks, list
    agreement, the "why" line) and without it (:func:`_plain_decide`), alternating query by query in one
    process so that both see the same load; the query embedding is recomputed for every search."""
    service, queries = loaded_service(home)
    for q in queries[:50]:
        service.search(SearchRequest(q=q + " warmup", mode="hybrid"))
    variants: dict[str, Callable[..., FusionDecision]] = {
        "with reading": hybrid.decide,
        "without reading": _plain_decide,
    }
    choose = {name: functools.partial(setattr, hybrid, "decide", f) for name, f in variants.items()}
    wall, cpu = alternate(service, queries, passes, choose)
    hybrid.decide = variants["with reading"]
    print_hybrid(wall, cpu)


def alternate(
    service: SearchService, queries: list[str], passes: int, choose: Mapping[str, Callable[[], object]]
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Each query searched once per variant (``choose[name]()`` switches to it), alternating which goes
    first, the query embedding recomputed every time: wall and calling-thread CPU ms per variant."""
    wall: dict[str, list[float]] = {k: [] for k in choose}
    cpu: dict[str, list[float]] = {k: [] for k in choose}
    names = list(choose)
    for p in range(passes):
        for i, q in enumerate(queries):
            for name in names if (i + p) % 2 == 0 else names[::-1]:
                choose[name]()
                service._qcache.clear()
                w0, c0 = time.perf_counter(), time.thread_time()
                service.search(SearchRequest(q=q, mode="hybrid", limit=20))
                wall[name].append((time.perf_counter() - w0) * 1000)
                cpu[name].append((time.thread_time() - c0) * 1000)
    return wall, cpu


def print_hybrid(wall: dict[str, list[float]], cpu: dict[str, list[float]]) -> None:
    width = max(map(len, wall))
    for name in wall:
        print(
            f"hybrid {name:<{width}} wall p50 {pct(wall[name], 50):6.1f}  p95 {pct(wall[name], 95):6.1f}  "
            f"p99 {pct(wall[name], 99):6.1f} ms   calling-thread CPU p95 {pct(cpu[name], 95):6.1f} ms   "
            f"({len(wall[name])} queries)"
        )


def compare_smoothing(home: Path, passes: int) -> None:
    """Hybrid searches with the default fusion and with ``Fusion("smoothed")`` (bounded scores, then the
    fused top 100 smoothed over their own vectors), alternating query by query in one process; the query
    embedding is recomputed for every search. Also times the smoothing step alone (fetching the 100
    candidates' vectors and :func:`fusion.smooth`), the cost it adds on top of the fusion."""
    service, queries = loaded_service(home)
    sem = service._semantic()
    assert sem is not None, "no vectors in this home"
    vectors = sem[1]
    step: list[float] = []
    plain_smooth, plain_vectors_for = hybrid.smooth, vectors.vectors_for

    def timed_vectors_for(ids: list[str]) -> dict[str, np.ndarray]:
        t = time.perf_counter()
        out = plain_vectors_for(ids)
        step.append(time.perf_counter() - t)
        return out

    def timed_smooth(*args: object, **kwargs: object) -> object:
        t = time.perf_counter()
        out = plain_smooth(*args, **kwargs)  # type: ignore[arg-type]  # passes hybrid's own arguments through
        step[-1] = (step[-1] + time.perf_counter() - t) * 1000
        return out

    vectors.vectors_for = timed_vectors_for
    hybrid.smooth = timed_smooth  # type: ignore[assignment]  # a timing wrapper with the same behaviour
    variants = {"default": DEFAULT_FUSION, "smoothed": SMOOTHED}
    for fusion in variants.values():
        service.fusion = fusion
        for q in queries[:50]:
            service.search(SearchRequest(q=q + " warmup", mode="hybrid"))
    step.clear()
    choose = {name: functools.partial(setattr, service, "fusion", f) for name, f in variants.items()}
    wall, cpu = alternate(service, queries, passes, choose)
    hybrid.smooth = plain_smooth
    print_hybrid(wall, cpu)
    print(
        f"smoothing step (100 candidates' vectors + smooth): p50 {pct(step, 50):.3f}  p95 {pct(step, 95):.3f}  "
        f"p99 {pct(step, 99):.3f} ms ({len(step)} searches; vector index {vectors.mode})"
    )


def spread_timestamps(db_path: Path, rate: float = 50.0) -> None:
    """Give the synthetic vectors the write times of a real ``paperfeed index`` run.

    They are stored here at ~25,000/s, so nearly all of them fall in the 30 s window that the
    vector index re-reads after the HNSW watermark (to catch late commits): every process's
    first load would then re-read and compare 900k vectors (20 s, 6.7 GB peak). Encoding on
    2 cores writes <= ~100 vectors/s, so that window holds a few thousand rows in real use.
    Spread the synthetic rows at ``rate``/s, ending before the first real vector was written.
    """
    from datetime import datetime, timedelta

    with sqlite3.connect(db_path) as c:
        first_real = c.execute("select min(created_at) from embeddings where paper_id not like 'synth/%'").fetchone()[0]
        ids = [r[0] for r in c.execute("select id from embeddings where paper_id like 'synth/%' order by id")]
        end = datetime.fromisoformat(first_real) - timedelta(seconds=60)
        step = timedelta(seconds=1 / rate)
        n = len(ids)
        c.executemany(
            "update embeddings set created_at = ? where id = ?",
            ((str(end - (n - i) * step), key) for i, key in enumerate(ids)),
        )
    print(f"spread {n:,} synthetic vectors' write times over {n / rate / 3600:.1f} h before {first_real}")


def build_1m(dst: Path, src: Path) -> None:
    t_all = time.perf_counter()
    with sqlite3.connect(src / "paperfeed.db") as c:
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src / "paperfeed.db", dst / "paperfeed.db")
    for sub in ("models", "index/lexical"):
        if (src / sub).exists():
            shutil.copytree(src / sub, dst / sub, dirs_exist_ok=True)
    settings = Settings(home=dst, secret_key="bench")
    db = Database(settings.db_url)
    db.migrate()
    with db.read() as conn:
        real = [
            dict(r._mapping)
            for r in conn.exec_driver_sql(
                "select id, title, abstract, authors, categories from papers where id not like 'synth/%'"
            )
        ]
    for r in real:
        if isinstance(r["authors"], str):
            import orjson

            r["authors"] = orjson.loads(r["authors"])
    n_synth = TARGET_TOTAL - len(real)
    print(f"{len(real):,} real papers; generating {n_synth:,}")
    t0 = time.perf_counter()
    batch: list[PaperRecord] = []
    for row in synthetic_rows(real, n_synth):
        batch.append(
            PaperRecord(
                id=row["id"],
                title=row["title"],
                abstract=row["abstract"],
                authors=row["authors"],
                categories=row["categories"],
                published=row["published"],
            )
        )
        if len(batch) == 5000:
            with db.write() as conn:
                upsert_arxiv(conn, batch)
            batch = []
    if batch:
        with db.write() as conn:
            upsert_arxiv(conn, batch)
    print(f"papers stored in {time.perf_counter() - t0:.0f} s")

    model = emb_store.latest_model(db)
    if model is None:
        raise SystemExit(f"{src} has no vectors: run `paperfeed index` there first")
    rows = emb_store.load_vectors(db, model)
    parents = rows.matrix
    print(f"{len(parents):,} real vectors ({model}); synthesising {n_synth:,}")
    synth = Synth(parents, n_synth)
    sample = np.random.default_rng(0).choice(len(parents), 300, replace=False)
    real_median = float(np.median(nn_cos(parents[sample], parents, sample)))
    sigma = calibrate(synth, real_median)
    print(f"sigma {sigma:.3f} (real median nearest-neighbour cosine {real_median:.3f})")
    t0 = time.perf_counter()
    with db.read() as conn:
        synth_ids = "select id, content_hash from papers where id like 'synth/%'"
        hashes: dict[str, str] = dict(conn.exec_driver_sql(synth_ids).all())
    for i in range(0, n_synth, 20_000):
        stop = min(n_synth, i + 20_000)
        ids = [f"synth/{j:07d}" for j in range(i, stop)]
        emb_store.upsert_vectors(db, model, [(pid, hashes[pid]) for pid in ids], synth.rows(sigma, i, stop))
    print(f"vectors stored in {time.perf_counter() - t0:.0f} s")
    spread_timestamps(dst / "paperfeed.db")
    from paperfeed.search.indexer import run_index

    report = run_index(settings, db, progress=True)
    print(f"indexed: {report}")
    print(f"1M build total {time.perf_counter() - t_all:.0f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", type=Path)
    ap.add_argument("--build-1m", type=Path)
    ap.add_argument("--from-home", type=Path)
    ap.add_argument("--passes", type=int, default=2)
    ap.add_argument(
        "--database-url", help="with --home: papers and vectors in this database (bench_pgvector.py fills one)"
    )
    ap.add_argument(
        "--compare-reading", action="store_true", help="with --home: hybrid with and without the query reading"
    )
    ap.add_argument(
        "--compare-smoothing", action="store_true", help="with --home: hybrid with the default and smoothed fusion"
    )
    ap.add_argument("--spread-timestamps", type=Path, help="only fix the vector write times of this home")
    args = ap.parse_args()
    if args.spread_timestamps:
        spread_timestamps(args.spread_timestamps / "paperfeed.db")
        return
    if args.build_1m:
        if not args.from_home:
            ap.error("--build-1m needs --from-home")
        build_1m(args.build_1m, args.from_home)
        return
    if not args.home:
        ap.error("--home or --build-1m is required")
    if args.compare_reading:
        compare_reading(args.home, args.passes)
        return
    if args.compare_smoothing:
        compare_smoothing(args.home, args.passes)
        return
    measure(args.home, args.passes, args.database_url)


if __name__ == "__main__":
    main()
