"""Build the bundled demo sample ``data/sample/`` from the shared real data (run by hand, rarely).

Takes the most recent arXiv listing days of ``arxiv_cs_listings.jsonl.gz`` (as many whole days as
fit in ``--max-papers``), every older listed paper that has a Hugging Face daily entry in that span,
and the HF daily days of the span. Lines are copied unchanged; the gzip output is byte-reproducible
(mtime 0). Standard library only.

    python scripts/make_sample.py [--shared ../shared/data] [--out data/sample] [--max-papers 5000]
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LISTINGS = "arxiv_daily/arxiv_cs_listings.jsonl.gz"
HF = "hf_daily_papers/hf_daily_papers_by_day.jsonl.gz"
OUT_LISTINGS = "arxiv_cs_listings.sample.jsonl.gz"
OUT_HF = "hf_daily_papers.sample.jsonl.gz"


def _write_gz(path: Path, lines: list[bytes]) -> None:
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
        for line in lines:
            gz.write(line if line.endswith(b"\n") else line + b"\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=REPO / "data" / "sample")
    ap.add_argument("--max-papers", type=int, default=5000, help="most recent listing papers to take (whole days)")
    args = ap.parse_args()

    listing_lines = gzip.open(args.shared / LISTINGS).read().splitlines(keepends=True)
    first_listed = [json.loads(line)["listing_dates"][0] for line in listing_lines]
    per_day = collections.Counter(first_listed)
    end = max(per_day)
    # Walk back from the last listing day while whole days still fit.
    start, total = end, 0
    for day in sorted(per_day, reverse=True):
        if total + per_day[day] > args.max_papers:
            break
        start, total = day, total + per_day[day]

    hf_lines = gzip.open(args.shared / HF).read().splitlines(keepends=True)
    hf_days = [line for line in hf_lines if start <= json.loads(line)["date"] <= end]
    hf_ids = {e["paper"]["id"] for line in hf_days for e in json.loads(line)["papers"]}

    keep = []
    older = 0
    for line, listed in zip(listing_lines, first_listed, strict=True):
        if start <= listed <= end:
            keep.append(line)
        elif json.loads(line)["id"] in hf_ids:
            keep.append(line)  # listed before the span, featured on HF inside it
            older += 1

    args.out.mkdir(parents=True, exist_ok=True)
    _write_gz(args.out / OUT_LISTINGS, keep)
    _write_gz(args.out / OUT_HF, hf_days)
    listed_ids = {json.loads(line)["id"] for line in keep}
    entries = sum(len(json.loads(line)["papers"]) for line in hf_days)
    print(f"span {start} .. {end}")
    print(f"{OUT_LISTINGS}: {len(keep)} papers ({total} listed in the span + {older} older ones featured on HF)")
    hf_only = len(hf_ids - listed_ids)
    print(f"{OUT_HF}: {len(hf_days)} days, {entries} entries, {len(hf_ids)} papers ({hf_only} not in the listings)")
    print(f"papers after importing both: {len(listed_ids | hf_ids)}")
    for name in (OUT_LISTINGS, OUT_HF):
        print(f"{name}: {(args.out / name).stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
