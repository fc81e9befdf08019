"""Import benchmark: the 74,728-paper arXiv listing file into an empty SQLite database, then again.

Prints papers/s and peak RSS of the first import (in this process, ``ru_maxrss``), and the time and
change count of the re-import (must be 0 changes). Targets: >= 2,500 papers/s, peak RSS <= 300 MB,
re-import <= 15 s. Falls back to the bundled sample when ../shared/data is absent.

    python bench/bench_import.py [--file PATH] [--batch-size 2000] [--hf PATH]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

from paperfeed.ingest.arxiv_file import import_arxiv_file
from paperfeed.ingest.hf_daily import import_hf_daily
from paperfeed.store.db import Database

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
DEFAULT_FILE = SHARED / "arxiv_daily" / "arxiv_cs_listings.jsonl.gz"
DEFAULT_HF = SHARED / "hf_daily_papers" / "hf_daily_papers_by_day.jsonl.gz"
SAMPLE = REPO / "data" / "sample" / "arxiv_cs_listings.sample.jsonl.gz"


def _rss_mb() -> float:
    # ru_maxrss is KiB on Linux (bytes on macOS).
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024


def _cpu() -> float:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--file", type=Path, default=DEFAULT_FILE if DEFAULT_FILE.exists() else SAMPLE)
    ap.add_argument("--hf", type=Path, default=DEFAULT_HF if DEFAULT_HF.exists() else None)
    ap.add_argument("--batch-size", type=int, default=2000)
    args = ap.parse_args()
    ok = True
    with tempfile.TemporaryDirectory(prefix="paperfeed-bench-") as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'bench.db'}")
        db.migrate()
        print(f"file: {args.file} ({args.file.stat().st_size / 1e6:.1f} MB)  batch size: {args.batch_size}")

        t, c = time.perf_counter(), _cpu()
        first = import_arxiv_file(db, args.file, batch_size=args.batch_size, progress=False)
        secs, cpu = time.perf_counter() - t, _cpu() - c
        rate, rss = first.read / secs, _rss_mb()
        print(f"import:    {first.summary()}")
        print(
            f"  -> {first.read:,} papers in {secs:.1f} s wall ({cpu:.1f} s CPU) = {rate:,.0f} papers/s; "
            f"peak RSS {rss:.0f} MB"
        )

        t, c = time.perf_counter(), _cpu()
        again = import_arxiv_file(db, args.file, batch_size=args.batch_size, progress=False)
        re_secs, re_cpu = time.perf_counter() - t, _cpu() - c
        print(f"re-import: {again.summary()}")
        print(f"  -> {re_secs:.1f} s wall ({re_cpu:.1f} s CPU), {again.changed} changes")

        if args.hf:
            t = time.perf_counter()
            hf = import_hf_daily(db, args.hf, batch_size=args.batch_size, progress=False)
            print(f"hf-daily:  {hf.summary()}  ({time.perf_counter() - t:.1f} s)")
        print(f"peak RSS (whole run): {_rss_mb():.0f} MB")
        db.dispose()

    checks = {
        "import >= 2,500 papers/s": rate >= 2500,
        "peak RSS <= 300 MB": rss <= 300,
        "re-import <= 15 s": re_secs <= 15,
        "re-import changes nothing": again.changed == 0,
        "nothing rejected": first.rejected == 0,
    }
    for name, passed in checks.items():
        print(f"  [{'ok' if passed else 'MISSED'}] {name}")
        ok = ok and passed
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
