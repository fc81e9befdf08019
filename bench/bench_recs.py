"""Cost of the "for you" ranker (paperfeed.recs) on a real home with ~80k papers and their vectors,
through the code the product runs: the page data of /for-you (``for_you_view``), a save through
the library (``collections.add_paper``) followed by that page, and the digest's personal
sections (``PersonalSections.prepare`` / ``apply``, what ``digest send`` calls per subscriber).

The home's database is copied to a scratch folder first (the bench adds users, libraries and
their stored models; the home itself is never written) and migrated there.

* **page**: a user with a ``--library``-paper library (saved through the library's store). The
  first page of a process (paper features and the background loaded, the model fitted and
  stored), the first page of *another* process (a fresh ranker: the model read from the
  ``user_models`` table), then ``--repeats`` pages (p50/p95).
* **refit after a save**: ``--repeats`` times, one more paper saved through
  ``collections.add_paper``, then the page: its model no longer matches the signals, so it is
  refitted and stored. Reported: the refit (``Ranker.model_for``) and the whole page after it.
* **digest**: ``--users`` accounts that asked for a for-you digest section, each with its own
  saved papers (``--digest-library`` papers; the libraries cycle over ``--distinct`` coherent
  ones) and its stored model (fitted once per distinct library and stored for every user that
  has it: the same signals give the same fingerprint, so this is what refit-on-save would have
  left). Then a *fresh process* (spawned) runs ``PersonalSections.prepare`` and ``apply`` for
  every user on the newest listing day's digest, exactly as ``digest send`` does per
  subscriber, and reports wall and CPU time.

Libraries are coherent: the papers nearest (by embedding) to a random seed paper among a sample
of older papers, so each looks like one researcher's reading.

    PYTHONPATH=src python bench/bench_recs.py --home /work/homes/cs80k [--users 10000]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import shutil
import statistics
import tempfile
import time
from collections.abc import Hashable
from datetime import datetime, timedelta
from pathlib import Path
from unittest.mock import patch

import numpy as np
from sqlalchemy import func, select

from bench_util import pct  # a sibling module: python puts bench/ on sys.path
from paperfeed.community.core import Community, User
from paperfeed.config import Settings
from paperfeed.digest.periods import daily_period
from paperfeed.digest.personal_sections import PersonalSections
from paperfeed.library import collections
from paperfeed.personal.follows import follows_of
from paperfeed.personal.for_you import for_you_view, ranker_for, user_signals
from paperfeed.personal.settings import settings_of
from paperfeed.recs.model import UserModel
from paperfeed.recs.ranker import Ranker, UserSignals
from paperfeed.store import community_store, library_store, personal_store, user_model_store
from paperfeed.store import recs_queries as q
from paperfeed.store.db import Database
from paperfeed.store.schema import embeddings, papers, user_models, users

T0 = datetime(2026, 1, 1)


class Clock:
    """Wall and CPU (this process, all threads) time of a block: on a shared, loaded machine the
    CPU time is the better guide to what a quiet one would show."""

    def __enter__(self) -> Clock:
        self.w, self.c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *_: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.w, time.process_time() - self.c


def ms(values: list[float]) -> str:
    return f"p50 {statistics.median(values) * 1000:.0f} ms, p95 {pct(values, 95) * 1000:.0f} ms"


def both(clocks: list[Clock]) -> str:
    return f"wall {ms([c.wall for c in clocks])}; CPU {ms([c.cpu for c in clocks])}"


def libraries(ranker: Ranker, db: Database, n_libs: int, size: int, seed: int) -> list[list[str]]:
    """``n_libs`` coherent libraries of ``size`` papers from a sample of older papers."""
    with db.read() as conn:
        pool = q.background_ids(conn, size=20_000, window_days=400, seed=seed)
    ranker._load(pool)
    pool = [p for p in pool if p in ranker._vectors]
    mat = np.stack([ranker._vectors[p] for p in pool])
    rng = np.random.default_rng(seed)
    out = []
    for s in rng.choice(len(pool), size=n_libs, replace=False):
        near = np.argsort(-(mat @ mat[s]))[:size]
        out.append([pool[int(i)] for i in near])
    return out


def add_reader(db: Database, name: str, lib: list[str], when: datetime, *, digest: bool = False) -> int:
    """An account with ``lib`` in its Saved collection (saved at ``when``) and, with ``digest``,
    a for-you section in its digest."""
    with db.write() as conn:
        uid = community_store.create_user(conn, name, f"{name}@example.org", None, "user", when)
        col = library_store.create_collection(conn, uid, "Saved", "saved", when, is_default=True)
        library_store.add_items(conn, col, [(p, None) for p in lib], when)
        if digest:
            personal_store.put_settings(conn, uid, {"digest_for_you": True}, when)
    return uid


def scratch_home(home: Path) -> Path:
    """A copy of the home's database in a temporary folder (the bench writes users and models)."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-recs-"))
    shutil.copy2(home / "paperfeed.db", tmp / "paperfeed.db")
    return tmp


def digest_worker(home: str, user_ids: list[int], out: mp.Queue) -> None:
    """A fresh process: the personal sections of every user's digest of the newest listing day."""
    settings = Settings.from_env(home=Path(home))
    db = Database(settings.db_url)
    with db.read() as conn:
        newest = q.newest_listed(conn)
        rows = conn.execute(select(users.c.id, users.c.email).where(users.c.id.in_(user_ids))).all()
    assert newest is not None
    period = daily_period(newest + timedelta(days=1), weekdays_only=False)
    sections = PersonalSections(settings, db)
    subs = [{"email": r.email, "subscription_id": -r.id} for r in rows]
    picked = 0
    with Clock() as c:
        sections.prepare([s["email"] for s in subs])
        first = time.perf_counter()
        for n, sub in enumerate(subs):
            got = sections.apply(sub, period, [])
            picked += sum(len(s.ids) for s in got if s.key == "for_you")
            if n == 0:
                first = time.perf_counter() - first
    out.put((len(subs), c.wall, c.cpu, first, picked, len(sections._rows(period))))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--home", type=Path, required=True)
    ap.add_argument("--library", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--digest-library", type=int, default=50)
    ap.add_argument("--distinct", type=int, default=100, help="distinct digest libraries (one fit each)")
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()

    home = scratch_home(a.home)
    try:
        run(a, home)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def run(a: argparse.Namespace, home: Path) -> None:
    settings = Settings.from_env(home=home)
    db = Database(settings.db_url)
    db.migrate()
    with db.read() as conn:
        n_papers = conn.scalar(select(func.count()).select_from(papers))
        n_vec = conn.scalar(select(func.count()).select_from(embeddings))
    print(f"home {a.home} (copied to {home}): {n_papers:,} papers, {n_vec:,} vectors")
    c = Community(settings=settings, db=db)
    helper = Ranker(db, persist=False)  # only picks the libraries
    lib = libraries(helper, db, 1, a.library + a.repeats, a.seed)[0]
    base, extra = lib[: a.library], lib[a.library :]
    uid = add_reader(db, "bench-reader", base, T0)
    with db.read() as conn:
        reader = User.from_row(community_store.get_user(conn, uid) or {})

    # -- the page ---------------------------------------------------------------------------
    with Clock() as first:
        view = for_you_view(c, reader)
    print(f"for-you page, {a.library}-paper library: {view['total']:,} candidates (7 listing days + picks)")
    print(f"  first page of a process (features loaded, model fitted and stored): wall {first.wall * 1000:.0f} ms")
    print("  top 3:", [(p["id"], p["relevance"], p["why"][0][:50]) for p in view["papers"][:3]])
    with Clock() as other:
        for_you_view(c, reader, ranker=Ranker(db))
    print(f"  first page of another process (features loaded, model read from the database): "
          f"wall {other.wall * 1000:.0f} ms")  # fmt: skip
    pages: list[Clock] = []
    for _ in range(a.repeats):
        with Clock() as t:
            for_you_view(c, reader)
        pages.append(t)
    print(f"  page, model cached: {both(pages)}")

    # -- refit after one new save -----------------------------------------------------------
    ranker = ranker_for(db)  # the process's ranker, the one the pages use
    real_model_for = ranker.model_for
    refits: list[Clock] = []

    def timed_model_for(key: Hashable, signals: UserSignals) -> UserModel | None:
        with Clock() as t:
            model = real_model_for(key, signals)
        refits.append(t)
        return model

    after: list[Clock] = []
    with patch.object(ranker, "model_for", timed_model_for):  # on this one ranker, until the block ends
        for p in extra:
            collections.add_paper(c, reader, p)  # the save, as the Save button does it
            with Clock() as t:
                for_you_view(c, reader)  # the next page: the signals changed, so the model is refitted
            after.append(t)
    print(f"refit after one new save ({a.library}+ positives; Ranker.model_for: fit and store): {both(refits)}")
    print(f"  the whole page after a new save (refit, store, rank, cards): {both(after)}")

    # -- digest -----------------------------------------------------------------------------
    libs = libraries(helper, db, a.distinct, a.digest_library, a.seed + 1)
    with Clock() as setup:
        ids: list[int] = []
        for u in range(a.users):
            k = u % len(libs)
            ids.append(add_reader(db, f"digest{u}", libs[k], T0 + timedelta(days=k), digest=True))
        fitted = Ranker(db)
        blobs: dict[int, user_model_store.StoredModel] = {}
        for u, user_id in enumerate(ids):
            k = u % len(libs)
            if k not in blobs:
                with db.read() as conn:
                    row = community_store.get_user(conn, user_id)
                user = User.from_row(row or {})
                fitted.model_for(user_id, user_signals(c, user, settings_of(c, user_id), follows_of(c, user)))
                with db.read() as conn:
                    stored = user_model_store.get_model(conn, user_id)
                assert stored is not None
                blobs[k] = stored
            else:
                s = blobs[k]
                with db.write() as conn:
                    user_model_store.put_model(conn, user_id, s.fingerprint, s.background_day, s.model, s.fitted_at)
    with db.read() as conn:
        size = conn.scalar(select(func.avg(func.length(user_models.c.model))))
    print(f"digest setup: {a.users:,} users, {len(libs)} distinct {a.digest_library}-paper libraries fitted and "
          f"stored: wall {setup.wall:.0f} s; stored models {float(size or 0) / 1024:.0f} KB each")  # fmt: skip
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()
    proc = ctx.Process(target=digest_worker, args=(str(home), ids, out))
    proc.start()
    n, wall, cpu, first_s, picked, cands = out.get()
    proc.join()
    print(
        f"digest personal sections, one fresh process: {n:,} users x {cands:,} candidates (the newest listing day "
        f"+ picks), stored models: wall {wall:.1f} s, CPU {cpu:.1f} s ({cpu / n * 1000:.1f} ms CPU a user; "
        f"first user {first_s:.1f} s); {picked:,} for-you papers picked"
    )


if __name__ == "__main__":
    main()
