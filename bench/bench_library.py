"""Library import and export cost at the size of a real instance.

Builds a SQLite database of N papers (default 80,000: synthetic rows, titles unique), then times:

* an import of a 2,000-entry BibTeX file (the per-import cap) where every entry must be matched by
  **title** (no arXiv id, no DOI): the worst case, one streamed pass over every title;
* the same file with arXiv ids (the common case: Zotero and Google Scholar exports carry them);
* exporting the resulting 2,000-paper collection as BibTeX, RIS and CSL-JSON.

    PYTHONPATH=src python bench/bench_library.py [--papers 80000] [--entries 2000]
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from datetime import date, datetime
from pathlib import Path

from sqlalchemy import insert

from paperfeed.community import accounts
from paperfeed.community.core import Community
from paperfeed.community.passwords import PasswordParams
from paperfeed.community.ratelimit import Limits
from paperfeed.config import Settings
from paperfeed.library import collections as lib
from paperfeed.library import formats, importer
from paperfeed.store.db import Database
from paperfeed.store.schema import papers

WORDS = "sparse dense attention graph diffusion model learning neural robust efficient transformer causal".split()


def fill(db: Database, n: int) -> list[tuple[str, str]]:
    now = datetime(2026, 1, 1)
    out = []
    batch = []
    for i in range(n):
        pid = f"{2000 + i // 90_000:04d}.{i % 90_000:05d}"
        title = f"{WORDS[i % 12].title()} {WORDS[(i // 12) % 12]} for {WORDS[(i // 144) % 12]} number {i}"
        out.append((pid, title))
        batch.append({"id": pid, "title": title, "abstract": "x", "authors": ["Ada Lovelace", f"Author {i}"],
                      "categories": "cs.LG", "primary_category": "cs.LG", "published": date(2025, 1, 1),
                      "content_hash": hashlib.sha256(title.encode()).hexdigest(), "created_at": now,
                      "modified_at": now})  # fmt: skip
        if len(batch) == 5_000:
            with db.write() as conn:
                conn.execute(insert(papers), batch)
            batch = []
    if batch:
        with db.write() as conn:
            conn.execute(insert(papers), batch)
    return out


def bib(rows: list[tuple[str, str]], *, with_ids: bool) -> str:
    parts = []
    for i, (pid, title) in enumerate(rows):
        extra = f",\n  eprint = {{{pid}}},\n  archivePrefix = {{arXiv}}" if with_ids else ""
        parts.append(f"@article{{key{i},\n  title = {{{{{title}}}}},\n  author = {{Lovelace, Ada}}{extra}\n}}\n")
    return "\n".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--papers", type=int, default=80_000)
    ap.add_argument("--entries", type=int, default=2_000)
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bench-library-"))
    settings = Settings(home=home, secret_key="bench", harvest_delay=0.0, oai_url="http://127.0.0.1:9/oai")
    db = Database(settings.db_url)
    db.migrate()
    t = time.perf_counter()
    rows = fill(db, args.papers)
    print(f"filled {args.papers:,} papers in {time.perf_counter() - t:.1f} s")
    fast = PasswordParams(time_cost=1, memory_cost=1024, parallelism=1)
    c = Community(settings=settings, db=db, password_params=fast, limits=Limits(import_user=None, import_ip=None))
    user = accounts.create_account(c, "bench", "bench@example.org", "bench password 1")
    step = max(1, len(rows) // args.entries)
    chosen = rows[::step][: args.entries]
    for with_ids in (False, True):
        text = bib(chosen, with_ids=with_ids)
        t, cpu = time.perf_counter(), time.process_time()
        report = importer.run_import(c, user, text.encode(), new_name=f"bench {with_ids}")
        took, took_cpu = time.perf_counter() - t, time.process_time() - cpu
        kind = "arXiv ids" if with_ids else "titles only"
        print(f"import {len(chosen):,} entries ({kind}, {len(text) / 1e6:.2f} MB): {took:.2f} s wall, "
              f"{took_cpu:.2f} s CPU, {report.count('added'):,} added")  # fmt: skip
    col = lib.owned(c, user, "bench-true")
    for fmt in formats.FORMATS:
        t, cpu = time.perf_counter(), time.process_time()
        body = formats.export(importer.export_papers(c, col, with_notes=True), fmt)
        print(f"export {col.items:,} papers as {fmt}: {time.perf_counter() - t:.2f} s wall, "
              f"{time.process_time() - cpu:.2f} s CPU, {len(body) / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
