"""Pool the judged set's candidates for blind grading (``data/eval/judged/``).

    python bench/pool_judged.py --home /tmp/fusion80k --round 1 [--depth 10] [--mode keyword --mode ...]

For every query in ``data/eval/judged/queries.jsonl`` it runs each mode over the 80,317 shared papers
(a home built with ``paperfeed import arxiv``, ``paperfeed import hf-daily``, ``paperfeed index``), takes
the top ``--depth`` of each, drops (query, paper) pairs an earlier round already pooled, and writes:

* ``pool_rN.jsonl`` - what the assessor sees: one line per pair with a random item id, the query text,
  the paper's title and abstract. Queries appear in shuffled order, pairs shuffled within a query, and
  nothing says which mode found a paper or at what rank.
* ``pool_rN_key.tsv`` - item id -> query id, paper id, and the modes/ranks that retrieved it. The
  assessor does not open it; ``bench/judged_qrels.py`` joins it with the grades.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
from dataclasses import replace
from pathlib import Path

from paperfeed.config import Settings
from paperfeed.search.hybrid import MODES, SearchRequest, SearchService
from paperfeed.store.db import Database
from paperfeed.store.rows import PaperRow


def pooled_before(folder: Path, upto: int) -> set[tuple[str, str]]:
    seen: set[tuple[str, str]] = set()
    for r in range(1, upto):
        key = folder / f"pool_r{r}_key.tsv"
        with key.open(encoding="utf-8") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                seen.add((row["query_id"], row["paper_id"]))
    return seen


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", type=Path, required=True)
    ap.add_argument("--data", type=Path, default=Path("data/eval/judged"))
    ap.add_argument("--round", type=int, default=1)
    ap.add_argument("--depth", type=int, default=10)
    ap.add_argument("--mode", action="append", default=None)
    args = ap.parse_args()
    modes = args.mode or list(MODES)

    settings = replace(Settings(home=args.home), secret_key="eval")
    db = Database(settings.db_url)
    service = SearchService(settings, db)
    queries = [json.loads(line) for line in (args.data / "queries.jsonl").read_text().splitlines() if line.strip()]
    seen = pooled_before(args.data, args.round)
    rng = random.Random(1000 + args.round)

    found: dict[tuple[str, str], list[str]] = {}
    papers: dict[str, PaperRow] = {}
    for q in queries:
        for mode in modes:
            res = service.search(SearchRequest(q=q["text"], mode=mode, limit=args.depth))
            for rank, hit in enumerate(res.hits, 1):
                pair = (q["_id"], hit.paper["id"])
                if pair in seen:
                    continue
                found.setdefault(pair, []).append(f"{mode}#{rank}")
                papers[hit.paper["id"]] = hit.paper

    by_query: dict[str, list[str]] = {}
    for qid, pid in found:
        by_query.setdefault(qid, []).append(pid)
    order = [q for q in queries if q["_id"] in by_query]
    rng.shuffle(order)
    pool_lines, key_rows = [], []
    n = 0
    for q in order:
        pids = sorted(by_query[q["_id"]])
        rng.shuffle(pids)
        for pid in pids:
            n += 1
            item = f"r{args.round}-{n:05d}"
            p = papers[pid]
            pool_lines.append(
                json.dumps(
                    {"item": item, "query": q["text"], "title": p["title"], "abstract": p.get("abstract") or ""},
                    ensure_ascii=False,
                )
            )
            key_rows.append((item, q["_id"], pid, " ".join(found[(q["_id"], pid)])))
    (args.data / f"pool_r{args.round}.jsonl").write_text("\n".join(pool_lines) + "\n", encoding="utf-8")
    with (args.data / f"pool_r{args.round}_key.tsv").open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, delimiter="\t", lineterminator="\n")
        w.writerow(["item", "query_id", "paper_id", "retrieved_by"])
        w.writerows(key_rows)
    print(f"round {args.round}: {len(pool_lines)} new pairs over {len(order)} queries")
    db.dispose()


if __name__ == "__main__":
    main()
