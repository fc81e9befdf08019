"""Benchmark: what trends cost (issue 15).

1. Timeline above a search (``--home``: an installation with a lexical index, e.g. the 80,317-paper
   home of bench/README.md). For each of the 400 ``paper_search_queries``: the search exactly as the
   page runs it (``SearchService.search``, ``--mode``, limit 20), then the timeline exactly as the
   page adds it (``web.trends.search_timeline``: one tantivy aggregation + bar/facet links). The
   figure is the timeline's own time, i.e. what it adds to the search; the search's is printed next
   to it.
2. The trends page (``--home`` or ``--index-home``): ``web.trends.trends_data`` for 4 queries at a
   time (random groups of the 400, fixed seed), volume per week/month over the whole corpus, plus
   the attention measure (needs the database's daily feed). ``--index-home`` points the counter at
   a lexical index built elsewhere (bench_lexical.py's 1M set: ``python bench/bench_trends.py
   --build-1m /tmp/trends-bench``), while the database (for attention) stays ``--home``'s.

Each timed call runs in this one process, after a warm-up pass; wall and CPU (this thread) p50/p95.
Run with ``taskset -c 0,1`` on a bigger machine to hold it to 2 cores.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

from bench_util import pct  # a sibling module: python puts bench/ on sys.path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from starlette.datastructures import QueryParams  # noqa: E402

from paperfeed.config import Settings  # noqa: E402
from paperfeed.search.hybrid import SearchService  # noqa: E402
from paperfeed.search.lexical import LexicalIndex  # noqa: E402
from paperfeed.store.db import open_database  # noqa: E402
from paperfeed.web import params, trends  # noqa: E402
from paperfeed.web.cache import DataVersion, ResponseCache  # noqa: E402
from paperfeed.web.context import AppState  # noqa: E402

QUERIES = REPO.parent / "shared" / "data" / "paper_search_queries"


def load_queries() -> list[str]:
    out: list[str] = []
    for path in sorted(QUERIES.glob("*.json")):
        out.extend(v["search_query"] for v in json.loads(path.read_text()).values())
    return out


def line(name: str, wall: list[float], cpu: list[float]) -> str:
    return (
        f"{name:34s} n={len(wall)} wall p50={pct(wall, 50):6.1f} p95={pct(wall, 95):6.1f} ms | "
        f"cpu p50={pct(cpu, 50):6.1f} p95={pct(cpu, 95):6.1f} ms"
    )


def timed(fn: Any) -> tuple[Any, float, float]:
    t0, c0 = time.perf_counter(), time.thread_time()
    out = fn()
    return out, (time.perf_counter() - t0) * 1000, (time.thread_time() - c0) * 1000


def app_state(home: Path, index_home: Path | None) -> AppState:
    settings = Settings(home=home)
    db = open_database(settings)
    service = SearchService(settings, db)
    if index_home is not None:
        service.lexical = LexicalIndex(Settings(home=index_home))
    state = AppState(settings=settings, db=db, version=DataVersion(db), cache=ResponseCache(ttl=0))
    state._search = service
    return state


def bench_timeline(state: AppState, queries: list[str], mode: str, with_search: bool = True) -> None:
    service = state.search()
    assert service is not None, state.search_unavailable  # app_state built it
    sps = [params.search_params({"q": q, "mode": mode}) for q in queries]
    for sp in sps:  # warm-up
        if with_search:
            service.search(sp.to_request())
        trends.search_timeline(state, sp)
    s_wall, s_cpu, t_wall, t_cpu = [], [], [], []
    for sp in sps:
        if with_search:
            _r, w, c = timed(lambda sp=sp: service.search(sp.to_request()))
            s_wall.append(w)
            s_cpu.append(c)
        _t, w, c = timed(lambda sp=sp: trends.search_timeline(state, sp))
        t_wall.append(w)
        t_cpu.append(c)
    if not with_search:  # --index-home: the database does not hold the index's papers
        print(line("timeline (search not timed)", t_wall, t_cpu))
        return
    print(line(f"search ({mode})", s_wall, s_cpu))
    print(line("timeline added to it", t_wall, t_cpu))
    total = [a + b for a, b in zip(s_wall, t_wall, strict=True)]
    print(f"{'search + timeline':34s} wall p95={pct(total, 95):6.1f} ms")


def bench_trends(state: AppState, queries: list[str], groups: int, measure: str) -> None:
    rnd = random.Random(15)
    sets = [[q[: params.MAX_QUERY_CHARS] for q in rnd.sample(queries, 4)] for _ in range(groups)]
    tps = [trends.trend_params(QueryParams([("q", q) for q in s] + [("measure", measure)])) for s in sets]
    for tp in tps[:20]:  # warm-up (corpus totals get cached, as in a serving process)
        trends.trends_data(state, tp)
    wall, cpu = [], []
    units = set()
    for tp in tps:
        data, w, c = timed(lambda tp=tp: trends.trends_data(state, tp))
        units.add(f"{data['unit']} x{len(data['buckets'])}")
        wall.append(w)
        cpu.append(c)
    print(line(f"trends page, 4 queries, {measure}", wall, cpu) + f" ({', '.join(sorted(units))})")


def build_1m(out: Path) -> None:
    sys.path.insert(0, str(REPO / "bench"))
    import bench_lexical

    bench_lexical.build("1m", out, True, 512)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", type=Path, help="installation (database + indexes)")
    ap.add_argument("--index-home", type=Path, help="count with the lexical index of this home instead")
    ap.add_argument("--mode", default="keyword", choices=("keyword", "hybrid", "semantic"))
    ap.add_argument("--groups", type=int, default=200, help="4-query groups to time on the trends page")
    ap.add_argument("--skip-timeline", action="store_true")
    ap.add_argument("--build-1m", type=Path, metavar="DIR", help="build bench_lexical's 1M lexical index in DIR/1m")
    args = ap.parse_args()
    if args.build_1m:
        build_1m(args.build_1m)
        return
    if args.home is None:
        ap.error("--home is required")
    state = app_state(args.home, args.index_home)
    tc = trends.counter(state)
    assert tc is not None
    print(f"documents: {tc.lexical.count():,}; span {tc.span()}")
    queries = load_queries()
    if not args.skip_timeline:
        bench_timeline(state, queries, args.mode, with_search=args.index_home is None)
    bench_trends(state, queries, args.groups, "volume")
    bench_trends(state, queries, args.groups, "attention")


if __name__ == "__main__":
    main()
