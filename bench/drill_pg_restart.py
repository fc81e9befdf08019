"""Fault drill: PostgreSQL restarted under load (50 connections) behind `paperfeed serve`.

Starts a throwaway PostgreSQL (tests/pgserver.py), seeds papers, daily entries and one user with
an API token per connection, starts `paperfeed serve --workers 2`, and runs 50 client threads
(httpx, one user each; wrk is not installed here) for --before seconds, then stops PostgreSQL
(`pg_ctl stop -m fast`, or --mode immediate for a crash), keeps it down for --outage seconds,
starts it again and keeps the load on for --after seconds. Each thread loops over reads (feed
page, /api/daily_papers, a paper page) and writes (an upvote on a paper it has not voted for, now
and then a comment or a digest sign-up through the site's form). Every answer is recorded.

Reports: answers during the outage by status (all should be 503 with Retry-After), their latency
(fail-fast: no hangs), transport errors (resets, timeouts: should be 0), the recovery time (from
PostgreSQL accepting connections again to the first success, and to the last failure), and
acknowledged writes lost (2xx answers whose vote/comment/sign-up is not in the database after: 0).

    python bench/drill_pg_restart.py                     # 50 connections, 8 s + 6 s outage + 12 s
    python bench/drill_pg_restart.py --mode immediate    # a crash instead of a clean stop
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import httpx

from bench_util import pct, serve, stop_server  # a sibling module: python puts bench/ on sys.path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO))

from sqlalchemy import select  # noqa: E402
from tests import factories as f  # noqa: E402
from tests.pgserver import PgServer  # noqa: E402

from paperfeed.community import accounts  # noqa: E402
from paperfeed.community.core import Community, User, user_row_by_name  # noqa: E402
from paperfeed.config import Settings  # noqa: E402
from paperfeed.store.db import Database  # noqa: E402
from paperfeed.store.schema import comments, subscriptions, users, votes  # noqa: E402

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Answer:
    t0: float
    t1: float
    kind: str
    status: int  # 0: transport error
    retry_after: str | None
    ack: tuple[str, str] | None = None  # (what, key) of an acknowledged write


@dataclass
class Log:
    answers: list[Answer] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, a: Answer) -> None:
        with self.lock:
            self.answers.append(a)


def seed(db: Database, settings: Settings, n_users: int, n_papers: int) -> tuple[list[tuple[str, int, str]], list[str]]:
    ids = [f.add_paper(db)["id"] for _ in range(n_papers)]
    for pid in ids[:30]:
        f.add_daily(db, pid, date(2025, 1, 15))
    c = Community(settings=settings, db=db)
    people = []
    for i in range(n_users):
        name = f"drill{i:03d}"
        uid = f.add_user(db, name)
        token, _ = accounts.create_api_token(c, User.from_row(user_row_by_name(c, name)), "drill")
        people.append((token, uid, f"10.7.{i // 250}.{i % 250 + 1}"))
    return people, ids


def start_server(settings: Settings, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    """``paperfeed serve`` in its own process group (so every worker goes when it is stopped),
    waiting as long as a loaded machine needs for it to answer."""
    env = {**os.environ, "PAPERFEED_HOME": str(settings.home), "PAPERFEED_SECRET_KEY": settings.secret_key,
           "PAPERFEED_DATABASE_URL": settings.database_url or "",
           "PAPERFEED_FORWARDED_ALLOW_IPS": "127.0.0.1"}  # fmt: skip
    return serve(env, "--workers", str(workers), "--no-pipeline", timeout=300)


def worker(url: str, person: tuple[str, int, str], papers: list[str], stop: float, log: Log, seed_: int) -> None:
    token, uid, ip = person
    rng = random.Random(seed_)
    todo = papers[:]
    rng.shuffle(todo)
    n = 0
    with httpx.Client(base_url=url, timeout=30, headers={"X-Forwarded-For": ip}) as client:
        csrf = ""
        while not csrf and time.monotonic() < stop:  # the form's CSRF token (retried: the machine may be slow)
            try:
                found = CSRF_RE.search(client.get("/digest/subscribe").text)
                csrf = found.group(1) if found else ""
            except httpx.HTTPError:
                time.sleep(0.5)
        api = {"Authorization": f"Bearer {token}"}
        while time.monotonic() < stop:
            n += 1
            roll = rng.random()
            ack = None
            t0 = time.monotonic()
            try:
                if roll < 0.2:
                    kind, r = "feed", client.get("/")
                elif roll < 0.4:
                    kind, r = "json", client.get("/api/daily_papers")
                elif roll < 0.55:
                    kind, r = "paper", client.get(f"/papers/{rng.choice(papers)}")
                elif roll < 0.95 and todo:
                    pid = todo.pop()
                    kind, r = "vote", client.post(f"/api/papers/{pid}/upvote", headers=api)
                    ack = ("vote", f"{uid}:{pid}") if r.status_code == 200 else None
                    if r.status_code != 200:
                        todo.insert(0, pid)  # try it again later
                elif roll < 0.975:
                    body = f"drill comment {uid}-{n}"
                    kind, r = "comment", client.post(f"/api/papers/{rng.choice(papers)}/comments",
                                                     json={"comment": body}, headers=api)  # fmt: skip
                    ack = ("comment", body) if r.status_code == 201 else None
                else:
                    email = f"drill{uid}-{n}@example.org"
                    form = {"email": email, "frequency": "daily", "csrf_token": csrf}
                    kind, r = "subscribe", client.post("/digest/subscribe", data=form)
                    ack = ("subscribe", email) if r.status_code == 200 else None
                log.add(Answer(t0, time.monotonic(), kind, r.status_code, r.headers.get("retry-after"), ack))
            except httpx.HTTPError as exc:
                log.add(Answer(t0, time.monotonic(), f"error {type(exc).__name__}", 0, None))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--before", type=float, default=8.0)
    ap.add_argument("--outage", type=float, default=6.0)
    ap.add_argument("--after", type=float, default=12.0)
    ap.add_argument("--mode", choices=["fast", "immediate"], default="fast")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "drill_pg_restart.json")
    args = ap.parse_args()

    pg = PgServer()
    if not pg.available:
        raise SystemExit("PostgreSQL binaries are not installed (scripts/system-deps.sh)")
    pg.start()
    proc = None
    try:
        url = pg.create_database("drill")
        tmp = Path(tempfile.mkdtemp(prefix="pf-drill-"))
        settings = Settings(home=tmp / "home", secret_key="drill-secret", database_url=url)
        db = Database(url)
        db.migrate()
        people, papers = seed(db, settings, args.connections, 400)
        db.dispose()
        proc, base = start_server(settings, args.workers)
        log = Log()
        start = time.monotonic()
        stop = start + args.before + args.outage + args.after
        threads = [threading.Thread(target=worker, args=(base, p, papers, stop, log, i)) for i, p in enumerate(people)]
        for t in threads:
            t.start()
        time.sleep(max(0.0, start + args.before - time.monotonic()))
        t_down = time.monotonic()
        pg.pause(args.mode)
        t_stopped = time.monotonic()
        time.sleep(args.outage)
        pg.resume()
        t_back = time.monotonic()
        for t in threads:
            t.join()

        answers = sorted(log.answers, key=lambda a: a.t0)
        failed = [a for a in answers if a.status not in (200, 201, 429)]
        before = [a for a in answers if a.t1 < t_down]
        during = [a for a in answers if t_stopped <= a.t0 < t_back]
        down_failures = [a for a in during if a.status not in (200, 201)]
        first_ok = next((a.t1 for a in answers if a.t0 >= t_back and a.status in (200, 201)), None)
        last_fail = max((a.t1 for a in failed if a.t0 >= t_back), default=None)
        by_status: dict[str, int] = {}
        for a in during:
            by_status[str(a.status)] = by_status.get(str(a.status), 0) + 1

        # Acknowledged writes: every one must be in the database now.
        acked = [a.ack for a in answers if a.ack is not None]
        db = Database(url)
        with db.read() as conn:
            voted = {f"{u}:{p}" for u, p in conn.execute(select(votes.c.user_id, votes.c.paper_id))}
            bodies = set(conn.execute(select(comments.c.body)).scalars())
            emails = set(conn.execute(select(subscriptions.c.email)).scalars())
            assert conn.execute(select(users.c.id)).first() is not None
        db.dispose()
        present = {"vote": voted, "comment": bodies, "subscribe": emails}
        lost = [f"{what} {key}" for what, key in acked if key not in present[what]]
        result = {
            "connections": args.connections,
            "workers": args.workers,
            "mode": args.mode,
            "requests": len(answers),
            "stop_took_s": round(t_stopped - t_down, 3),
            "outage_s": round(t_back - t_stopped, 3),
            "answers_during_outage": by_status,
            "outage_answers_not_503": sum(1 for a in down_failures if a.status != 503),
            "outage_503_without_retry_after": sum(1 for a in down_failures if a.status == 503 and not a.retry_after),
            "outage_latency_p50_ms": round(pct([a.t1 - a.t0 for a in down_failures], 50, empty=0.0) * 1000, 1),
            "outage_latency_p99_ms": round(pct([a.t1 - a.t0 for a in down_failures], 99, empty=0.0) * 1000, 1),
            "outage_latency_max_ms": round(max((a.t1 - a.t0 for a in down_failures), default=0) * 1000, 1),
            "before_latency_p50_ms": round(pct([a.t1 - a.t0 for a in before], 50, empty=0.0) * 1000, 1),
            "before_latency_p99_ms": round(pct([a.t1 - a.t0 for a in before], 99, empty=0.0) * 1000, 1),
            "transport_errors": sum(1 for a in answers if a.status == 0),
            "transport_errors_before_during_after": [
                sum(1 for a in answers if a.status == 0 and a.t0 < t_down),
                sum(1 for a in answers if a.status == 0 and t_down <= a.t0 < t_back),
                sum(1 for a in answers if a.status == 0 and a.t0 >= t_back),
            ],
            "load_average": os.getloadavg()[0],
            "failures_before_outage": sorted({f"{a.kind} {a.status}" for a in failed if a.t1 < t_down}),
            "rate_limited_429": sum(1 for a in answers if a.status == 429),
            "recovery_first_success_s": round(first_ok - t_back, 3) if first_ok is not None else None,
            "recovery_last_failure_s": round(last_fail - t_back, 3) if last_fail is not None else 0.0,
            "acknowledged_writes": {k: sum(1 for w, _ in acked if w == k) for k in present},
            "acknowledged_writes_lost": len(lost),
            "lost_examples": lost[:5],
        }
        print(json.dumps(result, indent=2))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        ok = (
            result["outage_answers_not_503"] == 0
            and result["outage_503_without_retry_after"] == 0
            and result["transport_errors"] == 0
            and not lost
            and not result["failures_before_outage"]
            and result["recovery_last_failure_s"] <= 5.0
        )
        print("drill passed" if ok else "drill FAILED")
        if not ok:
            raise SystemExit(1)
    finally:
        if proc is not None:
            stop_server(proc)
        pg.stop()


if __name__ == "__main__":
    main()
