"""Turn the judged set's grades into BEIR qrels (``data/eval/judged/qrels/{tune,test}.tsv``).

    python bench/judged_qrels.py [--data data/eval/judged]

Joins ``grades.tsv`` (item, grade) with every ``pool_rN_key.tsv`` (item -> query, paper) and splits by the
``split`` of each query in ``queries.jsonl``. Refuses to write when a pooled item is ungraded or a grade
names an unknown item.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("data/eval/judged"))
    args = ap.parse_args()
    keys: dict[str, tuple[str, str]] = {}
    for key_file in sorted(args.data.glob("pool_r*_key.tsv")):
        with key_file.open(encoding="utf-8") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                keys[row["item"]] = (row["query_id"], row["paper_id"])
    grades: dict[str, int] = {}
    with (args.data / "grades.tsv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            grades[row["item"]] = int(row["grade"])
    unknown = sorted(set(grades) - set(keys))
    ungraded = sorted(set(keys) - set(grades))
    if unknown or ungraded:
        sys.exit(f"unknown items {unknown[:5]} ({len(unknown)}), ungraded items {ungraded[:5]} ({len(ungraded)})")
    split_of = {}
    for line in (args.data / "queries.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            q = json.loads(line)
            split_of[q["_id"]] = q["split"]
    out: dict[str, list[str]] = {"tune": [], "test": []}
    for item, (qid, pid) in sorted(keys.items(), key=lambda kv: (kv[1][0], kv[1][1])):
        out[split_of[qid]].append(f"{qid}\t{pid}\t{grades[item]}")
    (args.data / "qrels").mkdir(exist_ok=True)
    for split, lines in out.items():
        path = args.data / "qrels" / f"{split}.tsv"
        path.write_text("query-id\tcorpus-id\tscore\n" + "\n".join(lines) + "\n", encoding="utf-8")
        print(f"{path}: {len(lines)} judgements")


if __name__ == "__main__":
    main()
