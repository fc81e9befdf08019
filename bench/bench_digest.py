"""Benchmark: compose and send one daily digest to 10,000 confirmed subscribers.

Sets up a temporary database: the last week of real arXiv cs listings from
``../shared/data/arxiv_daily`` (synthetic papers when that file is absent), a daily feed of 40
papers a day, a keyword index, and subscribers with mixed topics (half none, a quarter
categories, a quarter saved searches). Then times ``send_due`` - planning, topic searches,
composing, rendering, SMTP to a local aiosmtpd sink running in a separate process, and the
ledger commits - and prints messages per second and the peak RSS of the sending process.

    python bench/bench_digest.py [--subscribers 10000] [--db-url postgresql://...]

Target (issue #6): 10,000 subscribers in <= 60 s on 2 cores.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from bench_util import free_port  # a sibling module: python puts bench/ on sys.path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
LISTINGS = SHARED / "arxiv_daily" / "arxiv_cs_listings.jsonl.gz"
QUERIES = SHARED / "paper_search_queries" / "computer_science_ai_search_queries.json"

if TYPE_CHECKING:  # for annotations only: main() imports paperfeed after setting HF_HUB_OFFLINE
    from paperfeed.records import PaperRecord
    from paperfeed.store.db import Database

SINK = """
import sys, time
from aiosmtpd.controller import Controller
class H:
    n = 0
    async def handle_DATA(self, server, session, envelope):
        H.n += 1
        return "250 OK"
c = Controller(H(), hostname="127.0.0.1", port=int(sys.argv[1]))
c.start()
print("ready", flush=True)
sys.stdin.read()  # until the benchmark closes our stdin
c.stop()
print(H.n, round(time.process_time(), 2), flush=True)
"""

FALLBACK_QUERIES = [
    "graph neural networks",
    "diffusion models for video generation",
    "large language model reasoning",
    "vision transformer segmentation",
    "retrieval augmented generation",
    "reinforcement learning from human feedback",
    "speech recognition low resource",
    "3d reconstruction neural radiance fields",
    "federated learning privacy",
    "code generation benchmark",
]
CATEGORY_SETS = [("cs.CV",), ("cs.CL",), ("cs.LG",), ("cs.AI",), ("cs.CL", "cs.LG"), ("cs.CV", "cs.AI"), ("cs.IR",),
                 ("cs.RO",)]  # fmt: skip


def load_papers(db: Database, days: int) -> tuple[list[PaperRecord], date]:
    """Real listings of the last ``days`` listing days (or synthetic ones), upserted with the
    importer's store function. Returns (records, last listing day)."""
    from paperfeed.ingest.arxiv_file import parse_listing
    from paperfeed.records import PaperRecord
    from paperfeed.store.papers import upsert_arxiv

    records: list[PaperRecord] = []
    if LISTINGS.exists():
        lines = []
        with gzip.open(LISTINGS, "rt", encoding="utf-8") as fh:
            for line in fh:
                lines.append(line)
                if len(lines) > 6000:
                    lines = lines[-4000:]
        parsed = [parse_listing(json.loads(line)) for line in lines]
        last = max(r.listed for r in parsed if r.listed)
        records = [r for r in parsed if r.listed and r.listed > last - timedelta(days=days)]
    else:
        last = date(2026, 6, 30)
        words = "graph neural network diffusion model language reasoning vision transformer retrieval".split()
        rng = random.Random(1)
        for i in range(2500):
            title = " ".join(rng.sample(words, 5)).capitalize()
            records.append(
                PaperRecord(
                    id=f"2606.{i:05d}",
                    title=title,
                    abstract=f"{title}. " * 8,
                    authors=["A. Author", "B. Author"],
                    categories=" ".join(rng.choice(CATEGORY_SETS)),
                    listed=last - timedelta(days=i % days),
                    published=last - timedelta(days=i % days + 1),
                )
            )
    with db.write() as conn:
        for i in range(0, len(records), 1000):
            upsert_arxiv(conn, records[i : i + 1000])
    return records, last


def add_feed(db: Database, records: list[PaperRecord], per_day: int) -> None:
    from dataclasses import replace

    from paperfeed.records import HFEntry
    from paperfeed.store.papers import upsert_hf

    rng = random.Random(2)
    by_day: dict[date, list[PaperRecord]] = {}
    for r in records:
        assert r.listed is not None  # load_papers keeps listed papers only
        by_day.setdefault(r.listed, []).append(r)
    entries = []
    for day, recs in by_day.items():
        for r in rng.sample(recs, min(per_day, len(recs))):
            entries.append(
                HFEntry(
                    paper=replace(r, imported_upvotes=rng.randint(0, 120)),
                    feed_date=day,
                    submitter="bench",
                    submitted_at=datetime.combine(day, datetime.min.time()) + timedelta(hours=9),
                )
            )
    with db.write() as conn:
        upsert_hf(conn, entries)


def add_subscribers(db: Database, n: int) -> int:
    from paperfeed.digest import subscriptions as subs

    queries = FALLBACK_QUERIES
    if QUERIES.exists():
        data = json.loads(QUERIES.read_text())
        queries = [v["search_query"][:300] for v in itertools.islice(data.values(), 40)]
    rng = random.Random(3)
    zones = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo", "Asia/Kolkata"]
    items = []
    for i in range(n):
        kind = rng.random()
        cats: tuple[str, ...] = ()
        q = ""
        if kind >= 0.5:
            if kind < 0.75:
                cats = rng.choice(CATEGORY_SETS)
            else:
                q = rng.choice(queries)
                if kind > 0.9:
                    cats = rng.choice(CATEGORY_SETS)
        prefs = subs.parse_prefs(
            query=q, categories=list(cats), timezone=rng.choice(zones), send_hour=rng.randint(0, 23)
        )
        items.append((f"reader{i:05d}@example.org", prefs))
    return subs.bulk_activate(db, items, now=datetime(2020, 1, 1))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--subscribers", type=int, default=10_000)
    ap.add_argument("--days", type=int, default=7, help="listing days of papers to load")
    ap.add_argument("--feed-per-day", type=int, default=40)
    ap.add_argument("--db-url", default=None, help="default: SQLite file in a temporary directory")
    ap.add_argument("--connections", type=int, default=None, help="parallel SMTP connections (default: SendOptions)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from paperfeed.config import Settings
    from paperfeed.digest.send import SendOptions, send_due
    from paperfeed.search.lexical import LexicalIndex
    from paperfeed.store import digest_store
    from paperfeed.store.db import Database

    tmp = Path(tempfile.mkdtemp(prefix="pf-bench-digest-"))
    port = free_port()
    sink = subprocess.Popen(
        [sys.executable, "-c", SINK, str(port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert sink.stdout is not None and sink.stdout.readline().strip() == "ready"
    settings = Settings(home=tmp, database_url=args.db_url, secret_key="bench", smtp_url=f"smtp://127.0.0.1:{port}")
    db = Database(settings.db_url)
    db.migrate()

    t = time.perf_counter()
    records, last = load_papers(db, args.days)
    add_feed(db, records, args.feed_per_day)
    LexicalIndex(settings).update(db, progress=False)
    n_subs = add_subscribers(db, args.subscribers)
    send_day = last + timedelta(days=1)
    while send_day.weekday() >= 5:
        send_day += timedelta(days=1)
    print(f"setup: {len(records)} papers, {n_subs} subscribers, send day {send_day} ({time.perf_counter() - t:.1f} s)")

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0, c0 = time.perf_counter(), time.process_time()
    options = SendOptions() if args.connections is None else SendOptions(connections=args.connections)
    report = send_due(settings, db, day=send_day, options=options)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    assert sink.stdin is not None
    sink.stdin.close()
    received_text, sink_cpu = (sink.stdout.readline().split() + ["0", "0"])[:2]
    received = int(received_text)
    sink.wait(timeout=30)
    with db.read() as conn:
        ledger = digest_store.delivery_status_counts(conn)
    db.dispose()

    print(f"report: {report.summary()}")
    print(f"ledger: {ledger}  sink received: {received}")
    print(f"SMTP connections: {options.connections}")
    print(f"compose+send: {elapsed:.1f} s for {n_subs} subscribers ({report.sent} mails, {report.empty} empty)")
    per_sub = 1000 * cpu / max(n_subs, 1)
    print(f"throughput: {report.sent / elapsed:.0f} msgs/s (sender CPU {cpu:.1f} s, {per_sub:.2f} ms per subscriber)")
    print(f"sink CPU (aiosmtpd, separate process): {float(sink_cpu):.1f} s")
    print(f"peak RSS: {peak_kib / 1024:.0f} MiB (before sending: {rss_before / 1024:.0f} MiB)")
    if not args.keep:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    ok = received == report.sent and report.sent + report.empty == n_subs
    print("OK" if ok else "MISMATCH between the ledger and the sink")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
