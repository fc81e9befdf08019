"""Benchmark: lexical (BM25) index build time and keyword-query latency at 75k and 1M papers,
plus keyword quality on BEIR SciFact.

Run: ``python bench/bench_lexical.py`` (needs ../shared/data). Indexes go to ``--out``
(default ``/tmp/paperfeed-bench-lexical``, never the repo); ``--reuse`` keeps already built ones.

* 75k: the 74,728 real arXiv listing papers (read straight from the gz file, no database).
* 1M: those plus 925,272 generated papers. Each copies the shape of a random real paper (its
  sentence count and categories) and is filled with sentences drawn at random from the pool of
  all real abstract sentences; its title joins the first half of one real title to the second half
  of another; 1-8 real author names; a publication date uniform over 2007-2026. Term statistics
  therefore follow real abstracts; common terms' posting lists grow 13x, as they would in a real
  corpus 13x larger (the rare-term tail grows less than in reality, which does not matter for
  latency: long posting lists do).
* Queries: the 400 from ``paper_search_queries`` (``search_query``), each parsed and searched
  for the top 100 in a fresh process (after one warm-up pass), plus the same queries with a
  category or a year filter added. Timings include parsing and fetching the 100 paper ids.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import os
import random
import re
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from bench_util import pct  # a sibling module: python puts bench/ on sys.path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from paperfeed.config import Settings  # noqa: E402
from paperfeed.search.evaluate import load_beir, ndcg_at_k, recall_at_k  # noqa: E402
from paperfeed.search.lexical import LexicalIndex  # noqa: E402
from paperfeed.search.query import parse_query  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
LISTINGS = SHARED / "arxiv_daily" / "arxiv_cs_listings.jsonl.gz"
QUERIES = SHARED / "paper_search_queries"
SCIFACT = SHARED / "scifact"
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9$\\(])")


def real_rows() -> list[dict[str, Any]]:
    rows = []
    with gzip.open(LISTINGS, "rt", encoding="utf-8") as fh:
        for line in fh:
            d = json.loads(line)
            rows.append(
                {
                    "id": d["id"],
                    "title": " ".join(d["title"].split()),
                    "abstract": " ".join(d["abstract"].split()),
                    "authors": d.get("authors_list") or [],
                    "categories": d["categories"].split(),
                    "published": date.fromisoformat(d["update_date"]),
                }
            )
    return rows


def synthetic_rows(real: list[dict[str, Any]], n: int, seed: int = 20250101) -> Iterator[dict[str, Any]]:
    rnd = random.Random(seed)
    pool: list[str] = []
    shapes: list[tuple[int, list[str]]] = []
    titles: list[list[str]] = []
    authors: list[str] = []
    for r in real:
        sentences = _SENTENCE.split(r["abstract"])
        pool.extend(sentences)
        shapes.append((len(sentences), r["categories"]))
        titles.append(r["title"].split())
        authors.extend(r["authors"])
    start, days = date(2007, 1, 1), (date(2026, 7, 1) - date(2007, 1, 1)).days
    for i in range(n):
        k, cats = shapes[rnd.randrange(len(shapes))]
        a, b = titles[rnd.randrange(len(titles))], titles[rnd.randrange(len(titles))]
        yield {
            "id": f"synth/{i:07d}",
            "title": " ".join(a[: max(1, len(a) // 2)] + b[len(b) // 2 :]),
            "abstract": " ".join(pool[rnd.randrange(len(pool))] for _ in range(k)),
            "authors": rnd.sample(authors, rnd.randint(1, 8)),
            "categories": cats,
            "published": start + timedelta(days=rnd.randrange(days)),
        }


def load_queries() -> list[str]:
    out: list[str] = []
    for path in sorted(QUERIES.glob("*.json")):
        out.extend(v["search_query"] for v in json.loads(path.read_text()).values())
    return out


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _dir_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def build(size: str, out: Path, reuse: bool, heap_mb: int) -> Path:
    home = out / size
    index = LexicalIndex(Settings(home=home), writer_heap_mb=heap_mb)
    if reuse and index.count() > 0:
        print(f"[{size}] reusing {home} ({index.count():,} docs)")
        return home
    real = real_rows()
    n = len(real) if size == "75k" else 1_000_000
    rows = real if size == "75k" else itertools.chain(real, synthetic_rows(real, n - len(real)))
    t0 = time.perf_counter()
    written = index.build_from_rows(iter(rows), total=n, progress=sys.stderr.isatty())
    took = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"[{size}] built {written:,} docs in {took:.1f} s ({written / took:,.0f} docs/s), "
        f"index {_dir_mb(home / 'index'):,.0f} MB on disk, build process peak RSS {peak:,.0f} MB "
        f"(includes the real rows and sentence pool held in memory)"
    )
    return home


def measure(home: Path, passes: int) -> None:
    """Latency in this (fresh) process: parse + search top 100 + ids."""
    index = LexicalIndex(Settings(home=home))
    queries = load_queries()
    variants = {
        "plain": queries,
        "+cat:cs.CV": [f"{q} cat:cs.CV" for q in queries],
        "+year:2025": [f"{q} year:2025" for q in queries],
    }
    rss0 = _rss_mb()
    for name, qs in variants.items():
        for q in qs:  # warm-up: page cache, lazy structures
            index.search(parse_query(q), limit=100)
        times: list[float] = []
        cpu: list[float] = []
        empty = 0
        for _ in range(passes):
            for q in qs:
                t0, c0 = time.perf_counter(), time.thread_time()
                hits = index.search(parse_query(q), limit=100).hits
                cpu.append((time.thread_time() - c0) * 1000)
                times.append((time.perf_counter() - t0) * 1000)
                empty += not hits
        # A search runs on the calling thread only, so its CPU time is what the wall time would be
        # on an idle machine; on a busy one, wall time also counts waiting for a core.
        print(
            f"[{home.name}] {name:11s} n={len(times)} wall p50={pct(times, 50):.1f} p95={pct(times, 95):.1f} "
            f"p99={pct(times, 99):.1f} max={max(times):.1f} ms | cpu p50={pct(cpu, 50):.1f} "
            f"p95={pct(cpu, 95):.1f} p99={pct(cpu, 99):.1f} ms (no hits: {empty // passes})"
        )
    print(f"[{home.name}] docs={index.count():,} search process RSS {_rss_mb():,.0f} MB (before queries {rss0:,.0f})")


def scifact(out: Path) -> None:
    for split in ("train", "test"):
        corpus, queries, qrels = load_beir(SCIFACT, split)
        home = out / "scifact"
        index = LexicalIndex(Settings(home=home))
        if index.count() != len(corpus):
            rows = ({"id": did, "title": d["title"], "abstract": d["text"]} for did, d in corpus.items())
            index.build_from_rows(rows, total=len(corpus), progress=False)
        run = {
            qid: [h.paper_id for h in index.search(parse_query(text), limit=100).hits] for qid, text in queries.items()
        }
        print(
            f"[scifact {split}] queries={len(queries)} nDCG@10={ndcg_at_k(run, qrels, 10):.4f} "
            f"R@100={recall_at_k(run, qrels, 100):.4f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="75k,1m", help="comma separated: 75k, 1m")
    ap.add_argument("--out", type=Path, default=Path("/tmp/paperfeed-bench-lexical"))
    ap.add_argument("--reuse", action="store_true", help="reuse indexes already built under --out")
    ap.add_argument("--passes", type=int, default=3, help="timed passes over the queries")
    ap.add_argument("--heap-mb", type=int, default=1_000, help="indexing heap (bigger: fewer segments)")
    ap.add_argument("--no-scifact", action="store_true")
    ap.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # internal: latency in a fresh process
    args = ap.parse_args()
    if args.measure:
        measure(args.measure, args.passes)
        return
    if not LISTINGS.exists():
        sys.exit(f"{LISTINGS} is missing: this benchmark needs ../shared/data")
    print(f"cpus={os.cpu_count()} load={os.getloadavg()[0]:.1f} (1-min load average: >cpus means contention)")
    if not args.no_scifact:
        scifact(args.out)
    for size in [s.strip() for s in args.sizes.split(",") if s.strip()]:
        home = build(size, args.out, args.reuse, args.heap_mb)
        cmd = [sys.executable, __file__, "--measure", str(home), "--passes", str(args.passes)]
        subprocess.run(cmd, check=True)
    print(f"load after={os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
