"""CPU per uncached hybrid search page, and throughput of never-seen queries, this checkout side by
side with a baseline checkout of the code, on the same home.

    # a baseline: the code at the commit to compare with, exported next to this one
    mkdir -p /tmp/base && git archive 770f01d | tar -x -C /tmp/base
    python bench/bench_search_cpu.py --home /tmp/scpu80k --baseline /tmp/base            # CPU per page
    python bench/bench_search_cpu.py --home /tmp/scpu80k --baseline /tmp/base --throughput
    # when the baseline's migrations are older than the home's: a copy of the home for it
    python bench/bench_search_cpu.py --home /tmp/scpu80k --baseline /tmp/base --baseline-home /tmp/scpu80k-base

**CPU per page** (default): for each round and each checkout (alternating which goes first), a
fresh process imports that checkout's ``paperfeed`` (``PYTHONPATH``), builds and starts the app as
a ``paperfeed serve`` worker does (``create_app_from_env``, then its start-up hooks) and calls
it in-process (ASGI, no network, the real middleware, thread pool and templates) for distinct
queries it has never seen (the 400 ``paper_search_queries``, then LitSearch), one ``GET
/papers/search?q=...`` (hybrid, the default) at a time, after 30 warm-up pages of other queries.
Both the page cache and the query-embedding cache miss on every page. It prints the process
CPU time (``getrusage``: every thread, the encoder's included) per page, which stays steady
on a loaded machine where wall time does not, the part of it spent in garbage collections, and
the wall p50/p95. Afterwards the child reads
each page's JSON twin (from its cache, the same answer) to compare the top 10 of both checkouts.

**Throughput** (``--throughput``): ``paperfeed serve --workers 2`` of each checkout in turn,
warmed with 40 other queries, then ``wrk -t2 -c50`` for ``--duration`` seconds over distinct
queries (paper_search_queries, LitSearch, SciFact claims, then paper titles of the home; each
asked once; the script says so if the run got through all of them and started over). Prints
requests/s, p50/p90/p99 and the server's CPU per request (its worker processes' CPU time from
``/proc``). Needs wrk (Debian: ``apt-get install wrk``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bench_util import free_port, serve, stop_server  # sibling modules: python puts bench/ on sys.path
from bench_web import parse_wrk

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
WARMUP = 30
TOP = 10
Side = tuple[str, Path, Path]  # label, the checkout's src folder, its home

LUA = """
-- Each of wrk's threads walks its own share of the paths (one distinct query per request).
local n = 0
function setup(thread)
  thread:set("tid", n)
  n = n + 1
end
function init(args)
  paths = {{}}
  for line in io.lines("{paths}") do paths[#paths + 1] = line end
  i = tid
end
request = function()
  local p = paths[(i % #paths) + 1]
  i = i + {threads}
  return wrk.format("GET", p)
end
"""


# -- queries ------------------------------------------------------------------------------------


def paper_search_queries() -> list[str]:
    out: list[str] = []
    for path in sorted((SHARED / "paper_search_queries").glob("*.json")):
        out.extend(v["search_query"] for v in json.loads(path.read_text()).values())
    return out


def jsonl_texts(path: Path) -> list[str]:
    return [json.loads(line)["text"] for line in path.read_text().splitlines() if line.strip()]


def distinct(queries: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for q in queries:
        key = " ".join(q.split())[:500]
        if key and key not in seen:
            seen.add(key)
            out.append(key)
    return out


def page_queries() -> tuple[list[str], list[str]]:
    """(warm-up queries, measured queries) for the in-process CPU run."""
    lit = jsonl_texts(SHARED / "litsearch" / "queries.jsonl")
    return distinct(lit[:WARMUP]), distinct(paper_search_queries() + lit[WARMUP:])


def titles(home: Path, n: int, seed: int = 13) -> list[str]:
    with sqlite3.connect(f"file:{home / 'paperfeed.db'}?mode=ro", uri=True) as c:
        rows = [r[0] for r in c.execute("select title from papers")]
    random.Random(seed).shuffle(rows)
    return rows[:n]


# -- the in-process child -------------------------------------------------------------------------


def child(home: Path, pages: int, top_out: Path | None) -> None:
    """Runs inside the checkout under test (PYTHONPATH): prints one JSON line of figures."""
    import logging

    from starlette.types import Message

    from paperfeed.web.app import create_app_from_env

    logging.disable(logging.INFO)
    os.environ.update(PAPERFEED_HOME=str(home), PAPERFEED_SECRET_KEY="bench", PAPERFEED_PIPELINE="0")
    app = create_app_from_env()  # as each `paperfeed serve` worker builds it; started below

    async def get(path: str, accept: bytes = b"text/html") -> tuple[int, bytes]:
        route, _, query = path.partition("?")
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
            "scheme": "http", "path": route, "raw_path": route.encode(), "query_string": query.encode(),
            "root_path": "", "headers": [(b"host", b"127.0.0.1:8000"), (b"accept", accept)],
            "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000), "state": {},
        }  # fmt: skip
        status, body = 0, []

        async def receive() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                body.append(message.get("body", b""))

        await app(scope, receive, send)
        return status, b"".join(body)

    def cpu_s() -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    async def run() -> dict[str, Any]:
        async with app.router.lifespan_context(app):  # the start-up hooks, as under uvicorn
            return await pages_run()

    async def pages_run() -> dict[str, Any]:
        warm, measured = page_queries()
        for q in warm:
            await get("/papers/search?" + urlencode({"q": q}))
        measured = measured[:pages]
        wall: list[float] = []
        load0 = os.getloadavg()[0]
        gc_s = [0.0, 0.0]  # thread CPU inside garbage collections; when the current one started

        def on_gc(phase: str, _info: dict[str, int]) -> None:
            if phase == "start":
                gc_s[1] = time.thread_time()
            else:
                gc_s[0] += time.thread_time() - gc_s[1]

        gc.callbacks.append(on_gc)
        c0 = cpu_s()
        for q in measured:
            w0 = time.perf_counter()
            status, _ = await get("/papers/search?" + urlencode({"q": q}))
            wall.append((time.perf_counter() - w0) * 1000)
            if status != 200:
                raise SystemExit(f"{status} for {q!r}")
        cpu = cpu_s() - c0
        gc.callbacks.remove(on_gc)
        wall.sort()
        top: dict[str, list[str]] = {}
        if top_out is not None:
            for q in measured:
                _, body = await get("/papers/search?" + urlencode({"q": q}), b"application/json")
                top[q] = [h["id"] for h in json.loads(body)["hits"][:TOP]]
            top_out.write_text(json.dumps(top))
        return {
            "pages": len(measured),
            "cpu_ms": cpu / len(measured) * 1000,
            "gc_ms": gc_s[0] / len(measured) * 1000,
            "wall_p50": wall[len(wall) // 2],
            "wall_p95": wall[int(len(wall) * 0.95)],
            "load": (load0 + os.getloadavg()[0]) / 2,
        }

    print(json.dumps(asyncio.run(run())), flush=True)


def run_child(src: Path, home: Path, pages: int, top_out: Path | None) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(src), "PAPERFEED_PIPELINE": "0", "PAPERFEED_SCHEDULER": "0"}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "--home", str(home), "--pages", str(pages)]
    if top_out is not None:
        cmd += ["--top-out", str(top_out)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"child for {src} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare_top(a: dict[str, list[str]], b: dict[str, list[str]]) -> str:
    same = sum(a[q] == b.get(q) for q in a)
    same_set = sum(set(a[q]) == set(b.get(q) or []) for q in a)
    overlap = sum(len(set(a[q]) & set(b.get(q) or [])) for q in a) / max(1, sum(len(v) for v in a.values()))
    return (
        f"top {TOP} identical (ids and order) for {same}/{len(a)} queries, same set for {same_set}/{len(a)}, "
        f"overlap {overlap:.1%}"
    )


def cpu_rounds(args: argparse.Namespace, sides: list[Side]) -> None:
    results: dict[str, list[dict[str, Any]]] = {label: [] for label, _, _ in sides}
    with tempfile.TemporaryDirectory() as tmp:
        tops: dict[str, Path] = {}
        for r in range(args.rounds):
            order = sides if r % 2 == 0 else sides[::-1]
            for label, src, home in order:
                top_out = Path(tmp) / f"{label}.json" if r == 0 else None
                res = run_child(src, home, args.pages, top_out)
                if top_out is not None:
                    tops[label] = top_out
                results[label].append(res)
                print(
                    f"round {r + 1} {label:9s} CPU {res['cpu_ms']:6.2f} ms/page (in GC {res['gc_ms']:4.2f})   "
                    f"wall p50 {res['wall_p50']:6.1f} p95 {res['wall_p95']:6.1f} ms   "
                    f"({res['pages']} pages, load {res['load']:.1f})",
                    flush=True,
                )
        for label, _, _ in sides:
            cpus = sorted(x["cpu_ms"] for x in results[label])
            median = cpus[len(cpus) // 2]
            print(f"{label:9s} CPU per uncached hybrid search page: median {median:.2f} ms over {len(cpus)} runs")
        if len(tops) == 2:
            (a_label, _, _), (b_label, _, _) = sides
            a = json.loads(tops[a_label].read_text())
            b = json.loads(tops[b_label].read_text())
            print(f"{b_label} vs {a_label}: {compare_top(a, b)}")


# -- throughput under wrk --------------------------------------------------------------------------


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            kids = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        todo.extend(int(k) for k in kids)
    return out


def _cpu_of(pids: list[int]) -> float:
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _get(url: str) -> None:
    with urllib.request.urlopen(url, timeout=60) as r:
        r.read()


def throughput(side: Side, args: argparse.Namespace, pool: list[str], warm: list[str]) -> None:
    label, src, home = side
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "PYTHONPATH": str(src),
        "PAPERFEED_HOME": str(home),
        "PAPERFEED_SCHEDULER": "0",
        "PAPERFEED_PIPELINE": "0",
        "PAPERFEED_BASE_URL": base,
        "PAPERFEED_SECRET_KEY": "bench",
    }
    # --no-scheduler and PAPERFEED_SCHEDULER: the older names, which the baseline checkouts (before
    # the pipeline) understand too.
    server, _ = serve(env, "--workers", str(args.workers), "--no-scheduler", port=port, ready="/api/v1/stats")
    try:
        # Warm both workers (encoder, indexes) with queries that are not in the measured pool. On a
        # loaded machine uvicorn may restart a worker that misses its 5 s health check while it
        # loads: retry until every warm-up query was answered.
        from concurrent.futures import ThreadPoolExecutor

        def warm_one(q: str) -> None:
            for _ in range(30):
                try:
                    return _get(base + "/papers/search?" + urlencode({"q": q}))
                except OSError:
                    time.sleep(2)
            raise SystemExit(f"{label}: warm-up query failed 30 times")

        warm_one(warm[0])
        with ThreadPoolExecutor(4) as ex:
            list(ex.map(warm_one, warm[1:]))
        with tempfile.TemporaryDirectory() as tmp:
            paths = Path(tmp) / "paths"
            paths.write_text("".join(f"/papers/search?{urlencode({'q': q})}\n" for q in pool))
            script = Path(tmp) / "distinct.lua"
            script.write_text(LUA.format(paths=paths, threads=args.threads))
            pids = _descendants(server.pid)
            load0 = os.getloadavg()[0]
            cpu0 = _cpu_of(pids)
            wrk = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s", "--latency",
                   "--timeout", "10s", "-s", str(script), base + "/"]  # fmt: skip
            text = subprocess.run(wrk, capture_output=True, text=True, check=True).stdout
            cpu = _cpu_of(pids) - cpu0
            load = (load0 + os.getloadavg()[0]) / 2
        r = parse_wrk(text)
        wrapped = " (ran out of distinct queries: some were asked twice)" if r["requests"] > len(pool) else ""
        print(
            f"{label:9s} {r['rps']:7.1f} distinct queries/s   p50 {r['p50_ms']:7.1f}   p90 {r['p90_ms']:7.1f}   "
            f"p99 {r['p99_ms']:7.1f} ms   errors {r['errors']:.0f}   "
            f"server CPU {cpu / max(1, r['requests']) * 1000:5.2f} "
            f"ms/request   ({r['requests']:.0f} requests, {args.workers} workers, {args.connections} connections, "
            f"load {load:.1f}){wrapped}",
            flush=True,
        )
    finally:
        stop_server(server)


def throughput_rounds(args: argparse.Namespace, sides: list[Side]) -> None:
    warm_titles = titles(args.home, 40 + 30_000)
    warm, more = warm_titles[:40], warm_titles[40:]
    pool = distinct(
        paper_search_queries()
        + jsonl_texts(SHARED / "litsearch" / "queries.jsonl")
        + jsonl_texts(SHARED / "scifact" / "queries.jsonl")
        + more
    )
    for r in range(args.rounds):
        for side in sides if r % 2 == 0 else sides[::-1]:
            throughput(side, args, pool, warm)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", type=Path, required=True)
    ap.add_argument("--baseline", type=Path, help="a checkout (or export) of the code to compare with")
    ap.add_argument("--baseline-home", type=Path, help="the baseline's copy of --home (an older schema revision)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--pages", type=int, default=400, help="measured pages per run (CPU mode)")
    ap.add_argument("--throughput", action="store_true", help="paperfeed serve under wrk instead")
    ap.add_argument("--duration", type=int, default=20)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--top-out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.home, args.pages, args.top_out)
        return
    sides = [("baseline", args.baseline / "src", args.baseline_home or args.home)] if args.baseline else []
    sides.append(("this", REPO / "src", args.home))
    if args.throughput:
        throughput_rounds(args, sides)
    else:
        cpu_rounds(args, sides)


if __name__ == "__main__":
    main()
