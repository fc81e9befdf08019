"""The evaluation sets kept in the repository (``data/eval/``) and how their corpora are rebuilt.

Used by ``paperfeed eval --set NAME`` and the fusion-fitting script. Three kinds of queries, each with
a *tune* half (the only one any parameter is fitted on) and a *test* half (reported):

* ``scifact`` - BEIR SciFact from ``../shared/data/scifact`` (tune = its train split, test = its test split).
* ``known-item`` - a Hugging Face daily paper's own ``ai_keywords`` (joined) or ``ai_summary`` as the
  query, that paper as the only relevant document, over a corpus of those papers plus arXiv listing
  papers as distractors. Queries, splits and corpus ids are files in the repo; the corpus text is
  rebuilt from ``../shared/data`` (:func:`known_item_corpus`).
* ``judged`` - realistic queries from ``../shared/data/paper_search_queries`` over the 80,317 shared
  papers, graded 0/1/2 by a blind assessor on the pooled top 10 of each mode (see ``data/eval/judged/README.md``).

Nothing here touches an index: it only reads and writes files.
"""

from __future__ import annotations

import gzip
import json
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paperfeed.search.evaluate import load_qrels

SETS = ("scifact", "known-item", "judged")
SPLITS = ("tune", "test")
KNOWN_ITEM_SEED = 16
JUDGED_SEED = 16
_WS = re.compile(r"\s+")

HF_FILE = ("hf_daily_papers", "hf_daily_papers_by_day.jsonl.gz")
LISTING_FILE = ("arxiv_daily", "arxiv_cs_listings.jsonl.gz")
QUERY_FILES = (
    ("paper_search_queries", "computer_science_ai_search_queries.json"),
    ("paper_search_queries", "computer_science_non_ai_search_queries.json"),
)


@dataclass(frozen=True)
class EvalQueries:
    """One split of one set: query texts and graded judgements (``{qid: {doc_id: grade}}``)."""

    name: str
    split: str
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    cutoff: int  # the headline nDCG cut-off: 10, or 5 for the judged set


def _ws(text: str | None) -> str:
    return _WS.sub(" ", text or "").strip()


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def set_dir(data_dir: Path, name: str) -> Path:
    return data_dir / name.replace("-", "_")


def load_split(name: str, split: str, data_dir: Path, shared: Path) -> EvalQueries:
    """Queries and judgements of ``split`` (``tune`` or ``test``) of set ``name``."""
    if name not in SETS:
        raise ValueError(f"unknown evaluation set {name!r}; choose from {', '.join(SETS)}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
    if name == "scifact":
        folder = shared / "scifact"
        qrels = load_qrels(folder / "qrels" / ("train.tsv" if split == "tune" else "test.tsv"))
        texts = {str(q["_id"]): q.get("text") or "" for q in _jsonl(folder / "queries.jsonl")}
        return EvalQueries(name, split, {q: texts[q] for q in qrels if q in texts}, qrels, 10)
    folder = set_dir(data_dir, name)
    qrels = load_qrels(folder / "qrels" / f"{split}.tsv")
    texts = {str(q["_id"]): q["text"] for q in _jsonl(folder / "queries.jsonl")}
    missing = [q for q in qrels if q not in texts]
    if missing:
        raise ValueError(f"{folder}: qrels name queries missing from queries.jsonl: {missing[:5]}")
    return EvalQueries(name, split, {q: texts[q] for q in qrels}, qrels, 5 if name == "judged" else 10)


# -- known-item set ---------------------------------------------------------------------------------


def hf_papers(shared: Path) -> dict[str, dict[str, Any]]:
    """HF daily papers by arXiv id (the last entry of an id wins), with title, abstract, AI fields."""
    out: dict[str, dict[str, Any]] = {}
    for day in _jsonl(shared.joinpath(*HF_FILE)):
        for entry in day.get("papers") or []:
            paper = entry.get("paper") or {}
            pid = str(paper.get("id") or "")
            if not pid:
                continue
            out[pid] = {
                "title": _ws(paper.get("title") or entry.get("title")),
                "abstract": _ws(paper.get("summary") or entry.get("summary")),
                "ai_keywords": [k for k in (paper.get("ai_keywords") or []) if isinstance(k, str) and k.strip()],
                "ai_summary": _ws(paper.get("ai_summary")),
            }
    return out


def listing_papers(shared: Path) -> dict[str, dict[str, str]]:
    """arXiv listing papers by id: title and abstract, whitespace collapsed."""
    return {
        str(r["id"]): {"title": _ws(r.get("title")), "abstract": _ws(r.get("abstract"))}
        for r in _jsonl(shared.joinpath(*LISTING_FILE))
    }


def build_known_item(
    shared: Path, *, targets: int = 400, corpus_size: int = 3_000, seed: int = KNOWN_ITEM_SEED
) -> tuple[list[dict[str, str]], dict[str, dict[str, dict[str, int]]], list[str]]:
    """Draw the known-item set: ``(queries, {split: qrels}, corpus_ids)``.

    ``targets`` HF papers with both AI fields and a real abstract are drawn with ``seed``; each gives two
    queries (keywords joined with ", ", and the one-line summary). Papers, not queries, are split in
    halves, so a paper's two queries are never on both sides. The remaining corpus slots are listing
    papers that are not targets, drawn with the same generator.
    """
    rng = random.Random(seed)
    hf = hf_papers(shared)
    eligible = sorted(
        pid
        for pid, p in hf.items()
        if p["ai_keywords"] and p["ai_summary"] and len(p["abstract"]) >= 200 and p["title"]
    )
    chosen = rng.sample(eligible, targets)
    half = set(chosen[: targets // 2])
    queries: list[dict[str, str]] = []
    qrels: dict[str, dict[str, dict[str, int]]] = {s: {} for s in SPLITS}
    for pid in chosen:
        split = "tune" if pid in half else "test"
        for kind, text in (("keywords", ", ".join(hf[pid]["ai_keywords"])), ("summary", hf[pid]["ai_summary"])):
            qid = f"{pid}:{kind}"
            queries.append({"_id": qid, "text": text, "kind": kind, "target": pid, "split": split})
            qrels[split][qid] = {pid: 1}
    listing = listing_papers(shared)
    others = sorted(pid for pid, p in listing.items() if pid not in set(chosen) and len(p["abstract"]) >= 200)
    distractors = rng.sample(others, corpus_size - targets)
    return queries, qrels, sorted([*chosen, *distractors])


def known_item_corpus(shared: Path, ids: list[str]) -> dict[str, dict[str, str]]:
    """The corpus text for ``ids``: HF text for HF papers (the targets), listing text for the rest."""
    hf = hf_papers(shared)
    listing = listing_papers(shared)
    corpus: dict[str, dict[str, str]] = {}
    for pid in ids:
        src = hf.get(pid) or listing.get(pid)
        if src is None:
            raise ValueError(f"paper {pid} is in neither shared file")
        corpus[pid] = {"title": src["title"], "text": src["abstract"]}
    return corpus


def write_beir_corpus(path: Path, corpus: dict[str, dict[str, str]]) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        for pid, doc in corpus.items():
            fh.write(json.dumps({"_id": pid, "title": doc["title"], "text": doc["text"]}, ensure_ascii=False) + "\n")


def materialize_known_item(data_dir: Path, shared: Path, out: Path) -> Path:
    """Write a BEIR folder for the known-item set under ``out`` (corpus rebuilt from ``shared``)."""
    folder = set_dir(data_dir, "known-item")
    out.mkdir(parents=True, exist_ok=True)
    corpus_path = out / "corpus.jsonl.gz"
    if not corpus_path.exists():
        ids = [line.strip() for line in (folder / "corpus_ids.txt").read_text().splitlines() if line.strip()]
        tmp = out / "corpus.jsonl.gz.part"
        write_beir_corpus(tmp, known_item_corpus(shared, ids))
        tmp.replace(corpus_path)
    (out / "qrels").mkdir(exist_ok=True)
    for split in SPLITS:
        (out / "qrels" / f"{split}.tsv").write_bytes((folder / "qrels" / f"{split}.tsv").read_bytes())
    (out / "queries.jsonl").write_bytes((folder / "queries.jsonl").read_bytes())
    return out


# -- judged set -------------------------------------------------------------------------------------


def search_queries(shared: Path) -> list[dict[str, str]]:
    """The 400 realistic queries, each with an id ``ai:query_N`` / ``nonai:query_N`` and its length class."""
    out = []
    for (folder, fname), prefix in zip(QUERY_FILES, ("ai", "nonai"), strict=True):
        data = json.loads(shared.joinpath(folder, fname).read_text(encoding="utf-8"))
        for key, item in data.items():
            out.append(
                {
                    "_id": f"{prefix}:{key}",
                    "text": _ws(item["search_query"]),
                    "length": item["settings"]["length"],
                    "query_type": item["settings"]["query_type"],
                }
            )
    return out


def draw_judged(shared: Path, *, per_cell: int = 10, seed: int = JUDGED_SEED) -> list[dict[str, str]]:
    """``per_cell`` queries per (topic ai/non-ai x length class) cell, half of each cell tune, half test."""
    rng = random.Random(seed)
    cells: dict[tuple[str, str], list[dict[str, str]]] = {}
    for q in search_queries(shared):
        cells.setdefault((q["_id"].split(":")[0], q["length"]), []).append(q)
    chosen: list[dict[str, str]] = []
    for key in sorted(cells):
        picked = rng.sample(sorted(cells[key], key=lambda q: q["_id"]), per_cell)
        for i, q in enumerate(picked):
            chosen.append({**q, "split": "tune" if i < per_cell // 2 else "test"})
    return chosen


def draw_judged_corpus(shared: Path, *, size: int = 10_000, seed: int = JUDGED_SEED) -> list[str]:
    """The judged set's corpus: every HF daily paper plus listing papers drawn with ``seed`` up to ``size``.

    A documented 10k subset of the 80,317 shared papers: embedding all of them took longer than the shared
    2-core machine could give (see ``data/eval/README.md``)."""
    hf = set(hf_papers(shared))
    listing_only = sorted(set(listing_papers(shared)) - hf)
    rng = random.Random(seed)
    return sorted(hf | set(rng.sample(listing_only, max(0, size - len(hf)))))


def write_corpus_inputs(shared: Path, ids: list[str], out: Path) -> tuple[Path, Path]:
    """Import files for a subset home: the listing lines of ``ids`` and the HF days (entries of ``ids``)."""
    wanted = set(ids)
    out.mkdir(parents=True, exist_ok=True)
    listing = out / "listing_subset.jsonl.gz"
    with (
        gzip.open(shared.joinpath(*LISTING_FILE), "rt", encoding="utf-8") as src,
        gzip.open(listing, "wt", encoding="utf-8") as dst,
    ):
        for line in src:
            if line.strip() and str(json.loads(line)["id"]) in wanted:
                dst.write(line)
    hf = out / "hf_subset.jsonl.gz"
    with gzip.open(hf, "wt", encoding="utf-8") as dst:
        for day in _jsonl(shared.joinpath(*HF_FILE)):
            papers = [e for e in day.get("papers") or [] if str((e.get("paper") or {}).get("id") or "") in wanted]
            dst.write(json.dumps({**day, "papers": papers}, ensure_ascii=False) + "\n")
    return listing, hf
