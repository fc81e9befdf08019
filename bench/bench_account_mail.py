"""Account-mail timing: does the answer to a reset request or a sign-up take longer when the
address belongs to an account? (issue 10, item 5: known 10-15 ms vs unknown 6 ms before.)

    python bench/bench_account_mail.py [--rounds 100]

Creates 2 x rounds accounts with confirmed addresses in a fresh SQLite database, starts
``paperfeed serve`` (a subprocess, mail to the outbox directory), then alternates requests for a
registered and an unregistered address (in a shuffled order) through the real forms (session cookie + CSRF token, one
``X-Forwarded-For`` address per request so per-client limits do not interfere) and times each
POST until its response arrives. Works on code before and after the change (it only uses HTTP
and ``community_store.create_user``), so both can be measured on the same machine.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from bench_community import start_server  # a sibling script: python puts bench/ on sys.path
from bench_util import pct, stop_server
from paperfeed.community.passwords import PasswordParams, Passwords
from paperfeed.config import Settings
from paperfeed.store import community_store
from paperfeed.store.db import Database, utcnow

TOKEN_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def setup(settings: Settings, n: int) -> None:
    db = Database(settings.db_url)
    db.migrate()
    cheap = Passwords(PasswordParams(time_cost=1, memory_cost=1024, parallelism=1)).hash("bench password")
    with db.write() as conn:
        for i in range(n):
            community_store.create_user(conn, f"known{i:04d}", f"known{i:04d}@example.org", cheap, "user", utcnow())
    db.dispose()


def timed_post(url: str, page: str, data: dict[str, str], ip: str) -> tuple[float, int]:
    headers = {"X-Forwarded-For": ip}
    with httpx.Client(base_url=url, timeout=30, headers=headers) as client:
        token = TOKEN_RE.search(client.get(page).text)
        assert token is not None, page
        t0 = time.perf_counter()
        r = client.post(page, data={"csrf_token": token.group(1), **data})
        return time.perf_counter() - t0, r.status_code


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=100)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(home=Path(tmp), secret_key="bench-secret")
        setup(settings, 2 * args.rounds)
        proc, url = start_server(settings, 1, {"PAPERFEED_FORWARDED_ALLOW_IPS": "127.0.0.1"})
        try:
            times: dict[str, list[float]] = {k: [] for k in ("reset known", "reset unknown", "signup taken",
                                                              "signup fresh")}  # fmt: skip
            statuses: dict[str, set[int]] = {k: set() for k in times}
            rng = random.Random(7)
            pw = {"password": "a bench password", "password2": "a bench password"}
            for i in range(args.rounds):
                ip = f"10.{i // 250}.{i % 250}"
                taken, fresh = f"known{i + args.rounds:04d}@example.org", f"fresh{i:04d}@example.org"
                requests = [
                    ("reset known", "/reset", {"email": f"known{i:04d}@example.org"}),
                    ("reset unknown", "/reset", {"email": f"nobody{i:04d}@example.org"}),
                    ("signup taken", "/signup", {"username": f"taken{i:04d}", "email": taken, **pw}),
                    ("signup fresh", "/signup", {"username": f"fresh{i:04d}", "email": fresh, **pw}),
                ]
                rng.shuffle(requests)  # no kind always follows another one's after-response work
                for key, page, data in requests:
                    seconds, status = timed_post(url, page, data, f"{ip}.{len(times[key]) % 250 + 1}")
                    times[key].append(seconds)
                    statuses[key].add(status)
            print(f"{'request':<14} {'median':>9} {'p90':>9}  statuses")
            for key, values in times.items():
                p90 = pct(values, 90)
                median = statistics.median(values) * 1000
                print(f"{key:<14} {median:7.2f} ms {p90 * 1000:7.2f} ms  {sorted(statuses[key])}")
        finally:
            stop_server(proc)


if __name__ == "__main__":
    main()
