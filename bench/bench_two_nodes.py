"""Two nodes on one PostgreSQL (issue 13): how soon a paper written anywhere is searchable on the
other node, and vote throughput with the load split across both nodes.

    python bench/bench_two_nodes.py [--papers 20] [--seconds 15] [--concurrency 50] [--users 200]
                                    [--database-url postgresql://...]

Two ``paperfeed serve`` processes (the pipeline on, each its own ``PAPERFEED_HOME``, the database
URL and secret key shared) run as subprocesses; without ``--database-url`` a throwaway PostgreSQL
is started (tests/pgserver.py). **Index lag**: this process commits one new paper at a time to the
database (like an import or another node would) and polls node B's search API with the paper's
title until the paper is among the hits; the lag is the time from the commit to the first answer
that has it (the pipeline's leader embeds it, node B's indexes catch up). **Votes**: upvote/unvote
through the JSON API for ``--seconds``, half of the clients on each node; at the end the vote rows
must equal ``papers.upvotes`` for every paper.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

import httpx
from sqlalchemy import func, select

from bench_community import setup, vote_load  # sibling scripts: python puts bench/ on sys.path
from bench_util import pct, serve, stop_server
from paperfeed.config import Settings
from paperfeed.records import PaperRecord
from paperfeed.search.encoder import get_encoder
from paperfeed.store.db import Database, utcnow
from paperfeed.store.papers import upsert_arxiv
from paperfeed.store.schema import papers, votes

REPO = Path(__file__).resolve().parents[1]

# Distinct subjects, so that each new paper's title finds that paper first.
SUBJECTS = [
    "quokka locomotion", "axolotl limb regeneration", "pangolin scale armour", "narwhal tusk sensing",
    "tardigrade desiccation", "cuttlefish camouflage", "platypus electroreception", "okapi foraging",
    "kakapo lek mating", "blobfish pressure adaptation", "mantis shrimp vision", "sloth metabolism",
    "capybara thermoregulation", "gecko adhesion", "bat echolocation", "octopus arm control",
    "hummingbird hovering", "lyrebird vocal mimicry", "jellyfish propulsion", "termite mound ventilation",
    "penguin huddling", "salmon homing", "firefly synchrony", "beaver dam hydrology",
]  # fmt: skip


def start_node(home: Path, database_url: str, secret: str, model: Path) -> tuple[subprocess.Popen[bytes], str]:
    (home / "models").mkdir(parents=True, exist_ok=True)
    os.link(model, home / "models" / model.name)  # the encoder file, built once for both nodes
    env = {**os.environ, "PAPERFEED_HOME": str(home), "PAPERFEED_DATABASE_URL": database_url,
           "PAPERFEED_SECRET_KEY": secret, "PAPERFEED_HARVEST_SETS": "", "PAPERFEED_PIPELINE": "1",
           "PAPERFEED_FORWARDED_ALLOW_IPS": "127.0.0.1"}  # fmt: skip
    return serve(env, timeout=120)


def index_lag(db: Database, search_url: str, n: int) -> list[float]:
    """Seconds from committing each new paper to node B's search finding it."""
    lags = []
    with httpx.Client(timeout=120) as client:
        for i in range(n):
            subject = SUBJECTS[i % len(SUBJECTS)]
            pid = f"2612.{90000 + i:05d}"
            rec = PaperRecord(id=pid, title=f"On {subject}", abstract=f"A study of {subject} in the wild.",
                              authors=["B. Encher"], categories="q-bio.PE", published=date.today())  # fmt: skip
            with db.write() as conn:
                upsert_arxiv(conn, [rec], utcnow())
            t0 = time.monotonic()
            while pid not in client.get(search_url, params={"q": f"on {subject}", "limit": 5}).text:
                if time.monotonic() - t0 > 120:
                    raise SystemExit(f"{pid} not searchable on node B after 120 s")
                time.sleep(0.05)
            lags.append(time.monotonic() - t0)
            print(f"  paper {i + 1}/{n}: searchable on node B after {lags[-1]:.2f} s", flush=True)
            time.sleep(0.5)
    return lags


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--papers", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--users", type=int, default=200)
    ap.add_argument("--database-url", default=None)
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a kill still stops the nodes and the database
    pg = None
    url = args.database_url
    if url is None:
        sys.path.insert(0, str(REPO))  # tests/pgserver.py: a throwaway PostgreSQL, as the tests use
        from tests.pgserver import PgServer

        pg = PgServer()
        pg.start()
        url = pg.create_database("bench_two_nodes")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="pf-bench-two-nodes-") as tmp:
            settings = Settings(home=Path(tmp) / "setup", secret_key="bench-two-nodes", database_url=url)
            print(f"setting up {args.users} users with API tokens ...", flush=True)
            tokens, paper_ids = setup(settings, args.users)
            model = Path(get_encoder(Settings(home=Path(tmp) / "model", secret_key="x")).path)
            nodes = []
            for name in ("a", "b"):
                proc, node_url = start_node(Path(tmp) / name, url, settings.secret_key, model)
                procs.append(proc)
                nodes.append(node_url)
            db = Database(url)
            print(f"index lag: {args.papers} papers committed one by one, searched on node B", flush=True)
            index_lag(db, f"{nodes[1]}/api/papers/search", 2)  # warm-up: the encoder loads on first use
            lags = index_lag(db, f"{nodes[1]}/api/papers/search", args.papers)
            print(f"votes: {args.seconds:.0f} s, {args.concurrency} clients split across both nodes", flush=True)
            results: list[dict] = []
            half = args.concurrency // 2
            runs = [
                threading.Thread(target=lambda u=u, t=t: results.append(vote_load(u, t, paper_ids, args.seconds, half)))
                for u, t in ((nodes[0], tokens[0::2]), (nodes[1], tokens[1::2]))
            ]
            for r in runs:
                r.start()
            for r in runs:
                r.join()
            with db.read() as conn:
                per_paper = select(votes.c.paper_id, func.count()).group_by(votes.c.paper_id)
                rows: dict[str, int] = dict(conn.execute(per_paper).all())
                column = dict(conn.execute(select(papers.c.id, papers.c.upvotes)).all())
            db.dispose()
    finally:
        for proc in procs:
            stop_server(proc)
        if pg is not None:
            pg.stop()
    consistent = all(column[p] == rows.get(p, 0) for p in column)
    requests = sum(r["requests"] for r in results)
    wall = max(r["wall"] for r in results)
    lat = [x * 1000 for r in results for x in r["latencies"]]
    errors = [e for r in results for e in r["errors"]]
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f} ({os.cpu_count()} CPUs)")
    print(f"index lag across nodes (commit -> found by node B's search), {len(lags)} papers: "
          f"p50 {pct(lags, 50):.2f} s  p95 {pct(lags, 95):.2f} s  max {max(lags):.2f} s")  # fmt: skip
    print(f"votes across two nodes: {requests} in {wall:.1f} s = {requests / wall:.0f} req/s; latency ms p50 "
          f"{pct(lat, 50):.1f}  p99 {pct(lat, 99):.1f}; errors {len(errors)}")  # fmt: skip
    print(f"papers.upvotes == vote rows for all {len(column)} papers: {consistent}")
    if not consistent or errors:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
