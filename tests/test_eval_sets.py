"""The evaluation sets kept in data/eval: well-formed, split without leakage, and exactly what the
builders make from ../shared/data (those checks skip cleanly without it); plus `paperfeed eval --set`
input errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from paperfeed.cli import app
from paperfeed.search.eval_sets import (
    build_known_item,
    draw_judged,
    draw_judged_corpus,
    known_item_corpus,
    load_split,
)
from paperfeed.search.evaluate import judged_at_k, precision_at_k

from .conftest import REPO, SHARED, shared_path

DATA = REPO / "data" / "eval"


def rows(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_known_item_files_split_by_paper() -> None:
    queries = rows(DATA / "known_item" / "queries.jsonl")
    corpus = set((DATA / "known_item" / "corpus_ids.txt").read_text().split())
    assert len(queries) == 800 and len(corpus) == 3000
    tune = load_split("known-item", "tune", DATA, SHARED)
    test = load_split("known-item", "test", DATA, SHARED)
    assert len(tune.queries) == len(test.queries) == 400
    tune_papers = {d for docs in tune.qrels.values() for d in docs}
    test_papers = {d for docs in test.qrels.values() for d in docs}
    assert not tune_papers & test_papers  # a paper's two queries never straddle the halves
    assert tune_papers | test_papers <= corpus
    for q in queries:
        split = tune if q["split"] == "tune" else test
        assert split.qrels[q["_id"]] == {q["target"]: 1} and split.queries[q["_id"]] == q["text"]


def test_judged_files_are_consistent() -> None:
    queries = rows(DATA / "judged" / "queries.jsonl")
    assert len(queries) == 60 and len({q["_id"] for q in queries}) == 60
    tune = load_split("judged", "tune", DATA, SHARED)
    test = load_split("judged", "test", DATA, SHARED)
    assert not tune.queries.keys() & test.queries.keys()
    assert tune.cutoff == test.cutoff == 5
    grades: dict[tuple[str, str], int] = {}
    keys: dict[str, tuple[str, str]] = {}
    for key_file in sorted((DATA / "judged").glob("pool_r*_key.tsv")):
        with key_file.open(encoding="utf-8") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                keys[row["item"]] = (row["query_id"], row["paper_id"])
    with (DATA / "judged" / "grades.tsv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            assert row["grade"] in {"0", "1", "2"}
            grades[keys[row["item"]]] = int(row["grade"])
    assert len(grades) == len(keys)  # every pooled pair was graded, once
    for split in (tune, test):
        for qid, docs in split.qrels.items():
            for pid, g in docs.items():
                assert grades[(qid, pid)] == g


def test_split_errors_are_clear() -> None:
    with pytest.raises(ValueError, match="unknown evaluation set"):
        load_split("nope", "test", DATA, SHARED)
    with pytest.raises(ValueError, match="unknown split"):
        load_split("judged", "train", DATA, SHARED)


def test_precision_and_judged_share() -> None:
    qrels = {"q": {"a": 2, "b": 1, "c": 0}}
    run = {"q": ["a", "x", "b", "c", "y"]}
    assert precision_at_k(run, qrels, 5, 2) == pytest.approx(0.2)
    assert precision_at_k(run, qrels, 5, 1) == pytest.approx(0.4)
    assert judged_at_k(run, qrels, 5) == pytest.approx(0.6)


@pytest.mark.slow
def test_known_item_set_rebuilds_identically_from_shared() -> None:
    shared = shared_path("hf_daily_papers").parent
    queries, qrels, corpus_ids = build_known_item(shared)
    assert queries == rows(DATA / "known_item" / "queries.jsonl")
    assert corpus_ids == (DATA / "known_item" / "corpus_ids.txt").read_text().split()
    assert qrels["test"] == load_split("known-item", "test", DATA, shared).qrels
    corpus = known_item_corpus(shared, corpus_ids)
    assert all(doc["title"] and len(doc["text"]) >= 200 for doc in corpus.values())


@pytest.mark.slow
def test_judged_queries_and_corpus_rebuild_identically_from_shared() -> None:
    shared = shared_path("paper_search_queries").parent
    assert draw_judged(shared) == rows(DATA / "judged" / "queries.jsonl")
    assert draw_judged_corpus(shared) == (DATA / "judged" / "corpus_ids.txt").read_text().split()


def test_cli_eval_set_input_errors() -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["eval", "--set", "nope"])
    assert res.exit_code == 2 and "unknown set(s) ['nope']" in res.output
    res = runner.invoke(app, ["eval", "--set", "judged", "--split", "train"])
    assert res.exit_code == 2 and "--split must be tune, test or both" in res.output
    res = runner.invoke(app, ["eval", "--set", "judged", "--mode", "fancy"])
    assert res.exit_code == 2 and "unknown mode(s) ['fancy']" in res.output
    res = runner.invoke(app, ["eval"])
    assert res.exit_code == 2 and "give a BEIR folder or --set" in res.output
