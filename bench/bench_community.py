"""Community benchmark: upvote/unvote throughput and latency through a real ``paperfeed serve``,
the cost the session/CSRF middleware adds to a cached page, and the argon2id cost of a sign-in.

    python bench/bench_community.py [--seconds 15] [--concurrency 50] [--users 200] [--workers 1]
                                    [--database-url postgresql://...]

The server runs as a subprocess (its own interpreter, like production); the load generator is a
thread pool of httpx clients in this process. Every simulated user sends ``X-Forwarded-For`` with
its own address (uvicorn trusts it from 127.0.0.1), so per-address limits apply per user as they
would behind a proxy; no request may be refused. At the end the vote rows are counted and compared
with ``papers.upvotes``: the benchmark fails if they differ.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

import httpx
from sqlalchemy import func, select

from bench_util import pct, serve, stop_server  # a sibling module: python puts bench/ on sys.path
from paperfeed.community import accounts
from paperfeed.community.core import Community
from paperfeed.community.passwords import PasswordParams, Passwords
from paperfeed.config import Settings
from paperfeed.records import PaperRecord
from paperfeed.store import community_store
from paperfeed.store.db import Database, utcnow
from paperfeed.store.papers import upsert_arxiv
from paperfeed.store.schema import daily_entries, papers, votes
from paperfeed.web.security import CommunityMiddleware, Session

N_PAPERS = 30


def setup(settings: Settings, n_users: int) -> tuple[list[str], list[str]]:
    db = Database(settings.db_url)
    db.migrate()
    today = date.today()
    recs = [
        PaperRecord(id=f"2611.{i:05d}", title=f"Benchmark paper {i}", abstract="An abstract.", authors=["A. Author"],
                    categories="cs.LG", published=today)
        for i in range(N_PAPERS)
    ]  # fmt: skip
    cheap = Passwords(PasswordParams(time_cost=1, memory_cost=1024, parallelism=1)).hash("bench password")
    c = Community(settings=settings, db=db, password_params=PasswordParams(1, 1024, 1))
    tokens = []
    with db.write() as conn:
        upsert_arxiv(conn, recs, utcnow())
        for r in recs:
            conn.execute(daily_entries.insert().values(paper_id=r.id, feed_date=today, submitter="bench",
                                                       submitted_at=utcnow(), source="local"))  # fmt: skip
        ids = [community_store.create_user(conn, f"bench{i:04d}", None, cheap, "user", utcnow())
               for i in range(n_users)]  # fmt: skip
    for uid in ids:
        user = accounts.load_user(c, uid)
        tokens.append(accounts.create_api_token(c, user, "bench")[0])
    db.dispose()
    return tokens, [r.id for r in recs]


def start_server(
    settings: Settings, workers: int, extra_env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """``paperfeed serve`` of this home on a free loopback port, once it answers (also used by
    bench_account_mail.py)."""
    env = {**os.environ, "PAPERFEED_HOME": str(settings.home), "PAPERFEED_SECRET_KEY": settings.secret_key,
           "PAPERFEED_PIPELINE": "0", **(extra_env or {})}  # fmt: skip
    if settings.database_url:
        env["PAPERFEED_DATABASE_URL"] = settings.database_url
    return serve(env, "--workers", str(workers), "--no-pipeline", ready="/signin", timeout=60)


def vote_load(url: str, tokens: list[str], paper_ids: list[str], seconds: float, concurrency: int) -> dict:
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    per_thread = [tokens[i::concurrency] for i in range(concurrency)]
    address = {t: f"10.9.{i // 250}.{i % 250 + 1}" for i, t in enumerate(tokens)}  # one client address per user

    def worker(mine: list[str]) -> None:
        rng = random.Random(len(mine))
        state: dict[tuple[str, str], bool] = {}
        local: list[float] = []
        with httpx.Client(base_url=url, timeout=30) as client:
            while time.monotonic() < deadline:
                token = rng.choice(mine)
                pid = rng.choice(paper_ids)
                up = not state.get((token, pid), False)
                t0 = time.perf_counter()
                headers = {"Authorization": f"Bearer {token}", "X-Forwarded-For": address[token]}
                r = client.request("POST" if up else "DELETE", f"/api/papers/{pid}/upvote", headers=headers)
                local.append(time.perf_counter() - t0)
                if r.status_code != 200:
                    with lock:
                        errors.append(f"{r.status_code} {r.text[:100]}")
                else:
                    state[(token, pid)] = up
        with lock:
            latencies.extend(local)

    threads = [threading.Thread(target=worker, args=(m,)) for m in per_thread if m]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return {"requests": len(latencies), "wall": wall, "latencies": latencies, "errors": errors}


def page_cost(url: str, n: int = 300) -> tuple[float, float]:
    """p50 of GET / (cached page, one visitor with a cookie): with the CSRF tokens added to its forms."""
    with httpx.Client(base_url=url, timeout=30) as client:
        client.get("/")
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            r = client.get("/")
            times.append(time.perf_counter() - t0)
            assert r.status_code == 200
        body = r.content
    mw = CommunityMiddleware.__new__(CommunityMiddleware)
    session = Session(csrf="x" * 43)
    t0 = time.perf_counter()
    for _ in range(2000):
        mw._add_tokens(body, session)
    inject = (time.perf_counter() - t0) / 2000
    return statistics.median(times), inject


def argon2_cost() -> float:
    hasher = Passwords()
    t0 = time.perf_counter()
    for _ in range(3):
        hasher.hash("a password of ordinary length")
    return (time.perf_counter() - t0) / 3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--users", type=int, default=200)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--database-url", default=None, help="PostgreSQL URL (default: SQLite in a temp dir)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="pf-bench-community-") as tmp:
        settings = Settings(home=Path(tmp), secret_key="bench-secret", database_url=args.database_url)
        print(f"setting up {args.users} users with API tokens and {N_PAPERS} papers ...", flush=True)
        tokens, paper_ids = setup(settings, args.users)
        proc, url = start_server(settings, args.workers)
        try:
            print(f"voting for {args.seconds:.0f} s with {args.concurrency} concurrent clients ...", flush=True)
            res = vote_load(url, tokens, paper_ids, args.seconds, args.concurrency)
            page_p50, inject = page_cost(url)
        finally:
            stop_server(proc)
        db = Database(settings.db_url)
        with db.read() as conn:
            per_paper = select(votes.c.paper_id, func.count()).group_by(votes.c.paper_id)
            rows: dict[str, int] = dict(conn.execute(per_paper).all())
            column = dict(conn.execute(select(papers.c.id, papers.c.upvotes)).all())
        db.dispose()
        consistent = all(column[p] == rows.get(p, 0) for p in column)
        lat = [x * 1000 for x in res["latencies"]]
        backend = "PostgreSQL" if args.database_url else "SQLite (WAL, file)"
        print(f"\nbackend: {backend}, server workers: {args.workers}, clients: {args.concurrency}")
        print(f"vote requests: {res['requests']} in {res['wall']:.1f} s = {res['requests'] / res['wall']:.0f} req/s")
        print(f"latency ms: p50 {pct(lat, 50):.1f}  p95 {pct(lat, 95):.1f}  p99 {pct(lat, 99):.1f}  "
              f"max {max(lat) if lat else 0:.1f}")  # fmt: skip
        print(f"errors: {len(res['errors'])}")
        for err in sorted(set(res["errors"]))[:5]:
            print(f"  {err}")
        print(f"papers.upvotes == vote rows for all {len(column)} papers: {consistent} "
              f"({sum(rows.values())} votes standing)")  # fmt: skip
        print(f"GET / (cached, with CSRF tokens added): p50 {page_p50 * 1000:.2f} ms; "
              f"token injection alone {inject * 1e6:.0f} us/page")  # fmt: skip
        print(f"argon2id hash, default parameters (t=2, m=19 MiB, p=1): {argon2_cost() * 1000:.0f} ms")
        if not consistent or res["errors"]:
            raise SystemExit(1)


if __name__ == "__main__":
    main()
