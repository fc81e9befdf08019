"""Web throughput and latency: `paperfeed serve` under wrk on the full arXiv + HF corpus.

Prepares (once, resumable) a database in --home from ../shared/data with the real importers:
74,728 arXiv cs listings and the 9,881 Hugging Face daily entries, plus the keyword index (and,
with --semantic, embeddings + vectors). Then starts uvicorn with --workers processes and runs
wrk (50 connections, 30 s by default) against the feed page, /api/daily_papers, the search page
(a rotating mix of 400 real queries, first each once uncached and one at a time, then under
wrk from the cache) and a paper page. Prints one line per target and writes
bench/results/web.json.

    python bench/bench_web.py                       # prepare if needed, then measure
    python bench/bench_web.py --prepare-only
    python bench/bench_web.py --duration 10 --connections 50 --workers 2

Needs wrk (Debian: apt-get install wrk); this script installs nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench_util import free_port, serve, stop_server  # a sibling module: python puts bench/ on sys.path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
ARXIV = SHARED / "arxiv_daily" / "arxiv_cs_listings.jsonl.gz"
HF = SHARED / "hf_daily_papers" / "hf_daily_papers_by_day.jsonl.gz"
QUERIES = [
    SHARED / "paper_search_queries" / "computer_science_ai_search_queries.json",
    SHARED / "paper_search_queries" / "computer_science_non_ai_search_queries.json",
]
RESULTS = REPO / "bench" / "results"

LUA_ROTATE = """
-- Rotates through a list of request paths (one per line in {paths}); counts non-2xx answers.
local paths = {{}}
for line in io.lines("{paths}") do paths[#paths + 1] = line end
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i % #paths) + 1])
end
"""


def prepare(home: Path, semantic: bool) -> None:
    os.environ["PAPERFEED_HOME"] = str(home)
    sys.path.insert(0, str(REPO / "src"))
    from sqlalchemy import func, select

    from paperfeed.config import Settings
    from paperfeed.ingest.arxiv_file import import_arxiv_file
    from paperfeed.ingest.hf_daily import import_hf_daily
    from paperfeed.search.lexical import LexicalIndex
    from paperfeed.store.db import open_database
    from paperfeed.store.schema import daily_entries, papers

    settings = Settings.from_env()
    db = open_database(settings)
    with db.read() as conn:
        n_papers = conn.scalar(select(func.count()).select_from(papers)) or 0
        n_daily = conn.scalar(select(func.count()).select_from(daily_entries)) or 0
    t0 = time.perf_counter()
    if n_papers < 74_000:
        print(f"importing {ARXIV.name} …", flush=True)
        print(import_arxiv_file(db, ARXIV).summary(), flush=True)
    if n_daily < 9_000:
        print(f"importing {HF.name} …", flush=True)
        print(import_hf_daily(db, HF).summary(), flush=True)
    print("author/category lookup tables …", flush=True)
    from paperfeed.store import lookups

    print(f"{lookups.refresh(db):,} papers", flush=True)
    print("keyword index …", flush=True)
    LexicalIndex(settings).update(db, progress=True)
    if semantic:
        from paperfeed.search.indexer import run_index

        run_index(settings, db)
    print(f"prepared in {time.perf_counter() - t0:.0f} s", flush=True)
    db.dispose()


def timed_get(url: str) -> float:
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=30) as r:
        r.read()
    return (time.perf_counter() - t0) * 1000


def parse_wrk(text: str) -> dict[str, float]:
    def ms(value: str, unit: str) -> float:
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]

    out: dict[str, float] = {}
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    out["rps"] = float(m.group(1)) if m else 0.0
    for pct in ("50", "90", "99"):
        m = re.search(rf"^\s+{pct}(?:\.000)?%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
        out[f"p{pct}_ms"] = ms(m.group(1), m.group(2)) if m else float("nan")
    m = re.search(r"(\d+) requests in", text)
    out["requests"] = float(m.group(1)) if m else 0.0
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    errors = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        errors += sum(int(g) for g in m.groups())
    out["errors"] = float(errors)
    return out


def run_wrk(base: str, name: str, paths: list[str], args: argparse.Namespace, tmp: Path, warm: int) -> dict[str, float]:
    listing = tmp / f"{name}.paths"
    listing.write_text("\n".join(paths) + "\n")
    script = tmp / f"{name}.lua"
    script.write_text(LUA_ROTATE.format(paths=listing))
    # Warm up: every distinct path once (search answers are cached per query, as in production).
    for p in paths[:warm]:
        try:
            urllib.request.urlopen(base + p, timeout=30).read()
        except OSError:
            pass
    cmd = [
        "wrk",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{args.duration}s",
        "--latency",
        "--timeout",
        "5s",
        "-s",
        str(script),
        base + paths[0],
    ]
    text = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    (tmp / f"{name}.wrk.txt").write_text(text)
    return parse_wrk(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", type=Path, default=RESULTS / "web-home")
    ap.add_argument("--duration", type=int, default=30)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--warm-passes", type=int, default=3, help="extra passes over the search queries before wrk")
    ap.add_argument("--semantic", action="store_true", help="also embed the corpus (slow on 2 cores)")
    ap.add_argument("--prepare-only", action="store_true")
    ap.add_argument("--only", default="", help="comma-separated targets (feed,api,search,paper)")
    args = ap.parse_args()
    if not ARXIV.exists() or not HF.exists():
        raise SystemExit(f"needs {ARXIV} and {HF} (../shared/data)")
    if shutil.which("wrk") is None and not args.prepare_only:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    args.home.mkdir(parents=True, exist_ok=True)
    prepare(args.home, args.semantic)
    if args.prepare_only:
        return

    queries = []
    for qf in QUERIES:
        if qf.exists():
            queries += [v["search_query"] for v in json.loads(qf.read_text()).values()]
    from urllib.parse import urlencode

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PAPERFEED_HOME": str(args.home), "PAPERFEED_PIPELINE": "0", "PAPERFEED_BASE_URL": base}
    server, _ = serve(
        env, "--workers", str(args.workers), "--no-pipeline", port=port, ready="/api/v1/stats", timeout=60
    )
    try:
        with urllib.request.urlopen(base + "/api/daily_papers?limit=1") as r:
            paper_id = json.loads(r.read())[0]["paper"]["id"]
        targets = {
            "feed": ["/"],
            "api": ["/api/daily_papers"],
            "search": ["/papers/search?" + urlencode({"q": q}) for q in queries] or ["/papers/search?q=attention"],
            "paper": [f"/papers/{paper_id}"],
        }
        wanted = [t for t in (args.only.split(",") if args.only else targets) if t]
        results = {}
        if "search" in wanted:
            # Uncached search latency: every query once, one at a time (this also warms the cache,
            # so the wrk run below measures a popular-query mix served from it).
            cold = sorted(timed_get(base + p) for p in targets["search"])
            results["search_cold"] = {
                "requests": float(len(cold)),
                "p50_ms": cold[len(cold) // 2],
                "p90_ms": cold[int(len(cold) * 0.9)],
                "p99_ms": cold[min(len(cold) - 1, int(len(cold) * 0.99))],
            }
            # Each request lands on either worker: a few more passes put every answer in both caches.
            for _ in range(args.warm_passes):
                for p in targets["search"]:
                    timed_get(base + p)
            print(
                f"search, uncached, sequential: p50 {results['search_cold']['p50_ms']:.1f} ms   "
                f"p90 {results['search_cold']['p90_ms']:.1f} ms   p99 {results['search_cold']['p99_ms']:.1f} ms   "
                f"({len(cold)} distinct queries)",
                flush=True,
            )
        # Search right after the uncached pass, while its answers are in the workers' caches.
        wanted.sort(key=lambda t: t != "search")
        with tempfile.TemporaryDirectory() as tmp:
            for name in wanted:
                warm = 1 if name == "search" else len(targets[name])
                r = run_wrk(base, name, targets[name], args, Path(tmp), warm)
                results[name] = r
                print(
                    f"{name:7s} {r['rps']:8.0f} req/s   p50 {r['p50_ms']:7.1f} ms   p90 {r['p90_ms']:7.1f} ms   "
                    f"p99 {r['p99_ms']:7.1f} ms   errors {r['errors']:.0f}   ({r['requests']:.0f} requests)",
                    flush=True,
                )
        RESULTS.mkdir(parents=True, exist_ok=True)
        meta = {
            "connections": args.connections,
            "duration_s": args.duration,
            "workers": args.workers,
            "threads": args.threads,
            "cpus": os.cpu_count(),
            "search_queries": len(queries),
        }
        (RESULTS / "web.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    finally:
        stop_server(server)


if __name__ == "__main__":
    main()
