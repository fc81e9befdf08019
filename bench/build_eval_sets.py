"""Write the query files of the known-item and judged evaluation sets into ``data/eval/`` (run once).

    python bench/build_eval_sets.py [--shared ../shared/data] [--out data/eval]

Deterministic (fixed seeds in ``paperfeed.search.eval_sets``): re-running it rewrites identical files,
which ``tests/test_eval_sets.py`` checks. The judged set's grades are NOT written here: they come from the
pool (``bench/pool_judged.py``) and the blind assessor (see ``data/eval/judged/README.md``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from paperfeed.search.eval_sets import build_known_item, draw_judged, draw_judged_corpus, set_dir


def write_qrels(path: Path, qrels: dict[str, dict[str, int]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["query-id\tcorpus-id\tscore"]
    lines += [f"{q}\t{d}\t{g}" for q, docs in qrels.items() for d, g in docs.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_jsonl(path: Path, rows: list[dict[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=Path("../shared/data"))
    ap.add_argument("--out", type=Path, default=Path("data/eval"))
    args = ap.parse_args()

    queries, qrels, corpus_ids = build_known_item(args.shared)
    folder = set_dir(args.out, "known-item")
    write_jsonl(folder / "queries.jsonl", queries)
    for split, q in qrels.items():
        write_qrels(folder / "qrels" / f"{split}.tsv", q)
    (folder / "corpus_ids.txt").write_text("\n".join(corpus_ids) + "\n", encoding="utf-8")
    print(f"known-item: {len(queries)} queries, corpus {len(corpus_ids)} papers -> {folder}")

    judged = draw_judged(args.shared)
    write_jsonl(set_dir(args.out, "judged") / "queries.jsonl", judged)
    corpus = draw_judged_corpus(args.shared)
    (set_dir(args.out, "judged") / "corpus_ids.txt").write_text("\n".join(corpus) + "\n", encoding="utf-8")
    print(f"judged: {len(judged)} queries, corpus {len(corpus)} papers -> {set_dir(args.out, 'judged')}")


if __name__ == "__main__":
    main()
