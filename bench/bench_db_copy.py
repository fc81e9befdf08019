"""`paperfeed db copy` on real data: the 74,728 arXiv cs listings, SQLite -> PostgreSQL -> SQLite.

Prepares (once) a SQLite home in --home with the real importer (../shared/data), starts a
throwaway PostgreSQL (tests/pgserver.py), and times the two copies as the CLI runs them (a
subprocess each, so the figures include start-up, migrations, the copy and the verification
pass that reads both sides again). Prints rows, wall and CPU seconds of the copying process per
direction (PostgreSQL's own CPU is not included) and writes bench/results/db_copy.json.

    python bench/bench_db_copy.py --home /tmp/pf-copy-home
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.pgserver import PgServer  # noqa: E402

ARXIV = REPO.parent / "shared" / "data" / "arxiv_daily" / "arxiv_cs_listings.jsonl.gz"
CLI = [sys.executable, "-c", "from paperfeed.cli import main; main()"]


def run(args: list[str], env: dict[str, str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    done = subprocess.run([*CLI, *args], env={**os.environ, **env}, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{args} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return wall, done.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", type=Path, default=Path(tempfile.gettempdir()) / "pf-copy-home")
    ap.add_argument("--batch-size", type=int, default=1000)
    args = ap.parse_args()
    source = args.home / "paperfeed.db"
    if not source.exists():
        print(f"importing {ARXIV.name} into {args.home} ...")
        run(["import", "arxiv", str(ARXIV), "-q"], {"PAPERFEED_HOME": str(args.home)})
    pg = PgServer()
    pg.start()
    results: dict[str, object] = {}
    try:
        url = pg.create_database("copybench")
        back = args.home.parent / (args.home.name + "-back.db")
        back.unlink(missing_ok=True)
        for name, src, dst in (("sqlite -> postgresql", str(source), url), ("postgresql -> sqlite", url, str(back))):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            wall, out = run(["db", "copy", "--from", src, "--to", dst, "-q", "--batch-size", str(args.batch_size)], {})
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            copied = re.search(r"copied ([\d,]+) rows", out)
            if copied is None:
                raise SystemExit(f"`paperfeed db copy` did not say how many rows it copied:\n{out}")
            rows = int(copied.group(1).replace(",", ""))
            results[name] = {"rows": rows, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
                             "rows_per_cpu_s": round(rows / cpu)}  # fmt: skip
            print(f"{name}: {rows:,} rows in {wall:.1f} s wall, {cpu:.1f} s CPU ({rows / cpu:,.0f} rows/CPU s)")
    finally:
        pg.stop()
    results["load_average"] = os.getloadavg()[0]
    out_file = REPO / "bench" / "results" / "db_copy.json"
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
