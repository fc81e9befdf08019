"""Index lag: how long after a paper is committed by another process a running ``paperfeed serve``
finds it by search (issue 13: p95 <= 10 s, through the page cache).

    python bench/bench_index_lag.py [--corpus data/sample | ../shared/data/arxiv_daily]
                                    [--writes 40] [--gap 0.5] [--workers 2] [--bulk 2000]
                                    [--database-url postgresql://...] [--home DIR]

Builds a throwaway home (the corpus imported, the keyword index built as `paperfeed index` leaves
it), starts ``paperfeed serve`` as a subprocess (its own interpreter, like production), then
``--writes`` times: asks the server for a word nobody has written yet (so an empty answer is
cached), commits one paper holding that word from this process (as an import, a harvest or
another node would), and polls ``/papers/search.json`` every 20 ms. Two figures per write:
*first* - the first answer that has the paper; *everywhere* - the start of 8 answers in a row that
all have it (requests land on any worker, so this is when every worker's index and page cache
serve it). ``--bulk N`` then commits N papers in one transaction and times the last one's arrival.
Vectors are not part of this lag: they come from whoever embeds (the pipeline leader).
``--home DIR`` reuses (or keeps, when new) a prepared home instead of a throwaway one.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

import httpx

from bench_util import pct, serve, stop_server  # a sibling module: python puts bench/ on sys.path
from paperfeed.config import Settings
from paperfeed.records import PaperRecord
from paperfeed.search.lexical import LexicalIndex
from paperfeed.store.db import Database, utcnow
from paperfeed.store.papers import upsert_arxiv

ROOT = Path(__file__).resolve().parents[1]
IN_A_ROW = 8
POLL_S = 0.02
GIVE_UP_S = 60.0


def setup(settings: Settings, corpus: Path) -> int:
    from paperfeed.ingest.arxiv_file import import_arxiv_file
    from paperfeed.ingest.hf_daily import import_hf_daily

    db = Database(settings.db_url)
    db.migrate()
    files = sorted(p for p in corpus.rglob("*") if p.is_file() and ".json" in p.name)
    t0 = time.perf_counter()
    for p in files:
        if "hf" in p.name.lower() or "hf" in p.parent.name.lower():
            import_hf_daily(db, p, progress=False)
        else:
            import_arxiv_file(db, p, progress=False)
    n = LexicalIndex(settings).update(db, progress=False)
    print(f"home ready: {n:,} papers indexed in {time.perf_counter() - t0:.1f} s", flush=True)
    db.dispose()
    return n


def _paper(word: str, i: int) -> PaperRecord:
    return PaperRecord(id=f"2712.{90000 + i:05d}", title=f"Routing {word} airships with learned policies",
                       abstract=f"We study {word} in depth.", authors=["B. Enchmark"], categories="cs.LG",
                       published=date.today(), listed=date.today())  # fmt: skip


def _has(client: httpx.Client, word: str) -> bool:
    r = client.get("/papers/search.json", params={"q": word, "mode": "keyword"})
    r.raise_for_status()
    return int(r.json()["total"]) > 0


def measure(client: httpx.Client, db: Database, writes: int, gap: float) -> tuple[list[float], list[float]]:
    first: list[float] = []
    everywhere: list[float] = []
    for i in range(writes):
        word = "zq" + secrets.token_hex(4)
        for _ in range(IN_A_ROW):  # cached empty in the workers it reaches
            assert not _has(client, word)
        with db.write() as conn:
            upsert_arxiv(conn, [_paper(word, i)], utcnow())
        t0 = time.monotonic()
        seen: float | None = None
        row_start: float | None = None
        row = 0
        while True:
            now = time.monotonic()
            if now - t0 > GIVE_UP_S:
                raise SystemExit(f"write {i}: not searchable after {GIVE_UP_S:.0f} s")
            if _has(client, word):
                seen = seen if seen is not None else now - t0
                row_start = row_start if row_start is not None else now - t0
                row += 1
                if row >= IN_A_ROW:
                    break
            else:
                row, row_start = 0, None
            time.sleep(POLL_S)
        assert seen is not None and row_start is not None
        first.append(seen)
        everywhere.append(row_start)
        print(f"  write {i + 1:3d}: first {seen:5.2f} s, everywhere {row_start:5.2f} s", flush=True)
        time.sleep(gap)
    return first, everywhere


def bulk(client: httpx.Client, db: Database, n: int) -> float:
    word = "zb" + secrets.token_hex(4)
    recs = [
        PaperRecord(id=f"2712.{i:05d}", title=f"Bulk paper {i} on graphs", abstract="Bulk abstract.",
                    authors=["B. Ulk"], categories="cs.LG", published=date.today(), listed=date.today())
        for i in range(n - 1)
    ] + [_paper(word, 9999)]  # fmt: skip
    with db.write() as conn:
        upsert_arxiv(conn, recs, utcnow())
    t0 = time.monotonic()
    while not _has(client, word):
        if time.monotonic() - t0 > GIVE_UP_S * 5:
            raise SystemExit("bulk: not searchable in time")
        time.sleep(POLL_S)
    return time.monotonic() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, default=ROOT / "data" / "sample")
    ap.add_argument("--writes", type=int, default=40)
    ap.add_argument("--gap", type=float, default=0.5, help="seconds between writes")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--bulk", type=int, default=2000, help="papers in the one-transaction bulk write (0: skip)")
    ap.add_argument("--database-url", default=None)
    ap.add_argument("--home", type=Path, default=None, help="a prepared home to reuse (set up when empty)")
    args = ap.parse_args()

    home = args.home or Path(tempfile.mkdtemp(prefix="paperfeed-lag-"))
    env = {**os.environ, "PAPERFEED_HOME": str(home), "PAPERFEED_SECRET_KEY": "bench"}
    if args.database_url:
        env["PAPERFEED_DATABASE_URL"] = args.database_url
    settings = Settings(home=home, database_url=args.database_url, secret_key="bench")
    if not (home / "index" / "lexical" / "state.json").exists():
        setup(settings, args.corpus)
    server, url = serve(env, "--workers", str(args.workers), "--no-pipeline")
    db = Database(settings.db_url)
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            print(f"serving on {url} with {args.workers} worker(s); {args.writes} writes", flush=True)
            first, everywhere = measure(client, db, args.writes, args.gap)
            for name, values in (("first answer", first), ("every worker", everywhere)):
                print(f"{name:>13}: p50 {statistics.median(values):.2f} s  p95 {pct(values, 95):.2f} s  "
                      f"max {max(values):.2f} s  (n={len(values)})")  # fmt: skip
            if args.bulk:
                print(f"bulk: {args.bulk:,} papers in one transaction, the last searchable after "
                      f"{bulk(client, db, args.bulk):.2f} s")  # fmt: skip
    finally:
        db.dispose()
        stop_server(server)


if __name__ == "__main__":
    main()
