"""The "for you" ranker (paperfeed.recs) and ``paperfeed eval-recs``: the evaluation protocol,
the metrics on hand-checked cases, the ranker on a real slice (data/sample), and the CLI."""

from __future__ import annotations

import gzip
import math
import re
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import orjson
import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from paperfeed.cli import app
from paperfeed.config import Settings
from paperfeed.ingest.arxiv_file import import_arxiv_file
from paperfeed.ingest.hf_daily import import_hf_daily
from paperfeed.recs import evaluate as ev
from paperfeed.recs import metrics, protocol
from paperfeed.recs.ranker import MODEL_MAX_AGE_DAYS, Ranker, Signal, UserSignals, Weights
from paperfeed.store import user_model_store
from paperfeed.store.db import Database
from paperfeed.store.schema import user_models

from . import factories
from .conftest import SAMPLE

LISTINGS = SAMPLE / "arxiv_cs_listings.sample.jsonl.gz"
HF = SAMPLE / "hf_daily_papers.sample.jsonl.gz"


# -- protocol -----------------------------------------------------------------------------------
def _write_listing(path: Path, rows: list[tuple[str, str, list[str], str]]) -> Path:
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        for pid, day, authors, cats in rows:
            rec = {
                "id": pid,
                "title": f"Paper {pid}",
                "abstract": f"About {pid}.",
                "authors": ", ".join(authors),
                "authors_list": authors,
                "categories": cats,
                "update_date": day,
            }
            fh.write(orjson.dumps(rec).decode() + "\n")
    return path


def test_protocol_split_candidates_and_relevance(tmp_path: Path) -> None:
    # Ann has 7 papers: 5 library, the last two (same day d3, with one more of hers listed that
    # day *before* them in file order, which is then library) are the tests.
    rows = [
        ("a1", "2026-01-01", ["Ann"], "cs.CL"),
        ("a2", "2026-01-01", ["Ann", "Bo"], "cs.CL"),
        ("x1", "2026-01-01", ["Cy"], "cs.CV"),
        ("a3", "2026-01-02", ["Ann"], "cs.CL"),
        ("a4", "2026-01-02", ["Ann"], "cs.LG"),
        ("x2", "2026-01-03", ["Cy"], "cs.CV"),
        ("a5", "2026-01-03", ["Ann"], "cs.CL"),
        ("a6", "2026-01-03", ["Ann"], "cs.CL"),
        ("x3", "2026-01-03", ["Bo"], "cs.AI"),
        ("a7", "2026-01-04", ["Ann"], "cs.CL"),
        ("x4", "2026-01-04", ["Cy"], "cs.CV"),
    ]
    corpus = protocol.read_listings(_write_listing(tmp_path / "l.jsonl.gz", rows))
    users = protocol.eligible_users(corpus)
    assert set(users) == {"Ann"}  # Bo (2) and Cy (4) have fewer than 6 papers
    qs = protocol.queries_for("Ann", users["Ann"], corpus, corpus.day_rows())
    ids = corpus.ids
    assert [ids[q.test_row] for q in qs] == ["a6", "a7"]
    for q in qs:
        assert [ids[r] for r in q.library] == ["a1", "a2", "a3", "a4", "a5"]
    # a5 is library and listed on the test day: out of the candidates and the relevant set.
    assert sorted(ids[r] for r in qs[0].candidates) == ["a6", "x2", "x3"]
    assert {ids[r] for r in qs[0].relevant} == {"a6"}
    assert sorted(ids[r] for r in qs[1].candidates) == ["a7", "x4"]
    assert {ids[r] for r in qs[1].relevant} == {"a7"}


def test_user_with_41_papers_is_not_a_user(tmp_path: Path) -> None:
    rows = [(f"p{i}", "2026-01-01", ["Prolific"], "cs.CL") for i in range(41)]
    rows += [(f"q{i}", "2026-01-01", ["Six"], "cs.CL") for i in range(6)]
    corpus = protocol.read_listings(_write_listing(tmp_path / "l.jsonl.gz", rows))
    assert set(protocol.eligible_users(corpus)) == {"Six"}


def test_sample_of_users_is_fixed_by_the_seed() -> None:
    pool = [f"u{i}" for i in range(100)]
    assert protocol.sample_users(pool, 10, 3) == protocol.sample_users(reversed(pool), 10, 3)
    assert protocol.sample_users(pool, 10, 3) != protocol.sample_users(pool, 10, 4)


def test_dev_sample_excludes_the_evaluation_sample(tmp_path: Path) -> None:
    rows = [(f"{u}-{i}", f"2026-01-{1 + i:02d}", [f"user{u}"], "cs.CL") for u in range(30) for i in range(6)]
    corpus = protocol.read_listings(_write_listing(tmp_path / "l.jsonl.gz", rows))
    held = {q.user for q in protocol.build_queries(corpus, 10, 14)}
    dev = {q.user for q in protocol.build_queries(corpus, 20, 7, exclude=(14, 10))}
    assert len(held) == 10 and len(dev) == 20
    assert not held & dev


def test_a_larger_evaluation_sample_keeps_the_smaller_one_and_never_takes_a_tuning_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [(f"{u}-{i}", f"2026-01-{1 + i:02d}", [f"user{u}"], "cs.CL") for u in range(60) for i in range(6)]
    corpus = protocol.read_listings(_write_listing(tmp_path / "l.jsonl.gz", rows))
    monkeypatch.setattr(protocol, "EVAL_USERS", 10)
    monkeypatch.setattr(protocol, "TUNING_USERS", 20)
    small = protocol.build_queries(corpus, 10, protocol.EVAL_SEED)
    large = protocol.build_queries(corpus, 10, protocol.EVAL_SEED, more=(25, 15))
    assert large[: len(small)] == small  # same queries at the same indices: earlier results still hold
    added = {q.user for q in large[len(small) :]}
    tuning = protocol.tuning_users(protocol.eligible_users(corpus))
    dev = {q.user for q in protocol.build_queries(corpus, 20, protocol.TUNING_SEED, exclude=(protocol.EVAL_SEED, 10))}
    assert tuning == dev and len(tuning) == 20
    assert len(added) == 25 and not added & tuning and not added & {q.user for q in small}
    # Asking for more than there are: every remaining user, still none of the tuning sample.
    everyone = protocol.build_queries(corpus, 10, protocol.EVAL_SEED, more=(1000, 15))
    assert {q.user for q in everyone} == set(protocol.eligible_users(corpus)) - tuning


# -- metrics ------------------------------------------------------------------------------------
def test_metrics_on_a_hand_checked_case() -> None:
    ranked = [5, 1, 7, 9]
    rel = {1, 7}
    assert metrics.recall_at(ranked, rel) == 1.0
    assert metrics.recall_at(ranked, rel, k=2) == 0.5
    assert metrics.reciprocal_rank(ranked, rel) == 0.5
    expected = (1 / math.log2(3) + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    assert metrics.ndcg_at(ranked, rel) == pytest.approx(expected)
    assert metrics.ndcg_at([1, 7, 5], rel) == pytest.approx(1.0)
    # Relevant paper at rank 11: outside the cut for recall and nDCG, inside MRR.
    late = list(range(100, 110)) + [1]
    assert (metrics.recall_at(late, {1}), metrics.ndcg_at(late, {1})) == (0.0, 0.0)
    assert metrics.reciprocal_rank(late, {1}) == pytest.approx(1 / 11)


def test_bootstrap_interval() -> None:
    const = metrics.bootstrap([0.25] * 50, rounds=200)
    assert (const.mean, const.low, const.high) == (0.25, 0.25, 0.25)
    half = metrics.bootstrap([0.0, 1.0] * 200, rounds=500, seed=1)
    assert half.mean == 0.5
    # The standard error of a 400-sample mean of a fair coin is 0.025: the 95% interval is about ±0.049.
    assert 0.43 < half.low < 0.47 and 0.53 < half.high < 0.57
    assert not metrics.Interval(0.3, 0.28, 0.32).overlaps(metrics.Interval(0.4, 0.35, 0.45))
    assert metrics.Interval(0.3, 0.28, 0.36).overlaps(metrics.Interval(0.4, 0.35, 0.45))


# -- the ranker on a real slice -----------------------------------------------------------------
@pytest.fixture(scope="module")
def sample_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    home = tmp_path_factory.mktemp("recs-home")
    database = Database(Settings(home=home).db_url)
    database.migrate()
    import_arxiv_file(database, LISTINGS, progress=False)
    import_hf_daily(database, HF, progress=False)
    yield database
    database.dispose()


@pytest.fixture(scope="module")
def ranker(sample_db: Database) -> Ranker:
    """One ranker for the module: its paper-feature cache is what a serving process keeps."""
    return Ranker(sample_db)


SPEECH = re.compile(r"\b(speech|spoken|speaker|asr|voice|audio)\b", re.IGNORECASE)


def _speech_library(db: Database, ranker: Ranker, n: int = 25) -> list[str]:
    """Real papers about speech, listed before the candidates' week."""
    ids = ranker.candidates(days=30, picks=False)
    ranker._load(ids)
    lib = [
        i
        for i in ids
        if SPEECH.search(ranker._facts[i].title)
        and ranker._facts[i].listed is not None
        and ranker._facts[i].listed < date(2026, 6, 22)
    ]
    return sorted(lib)[:n]


def _is_speech(ranker: Ranker, pid: str) -> bool:
    f = ranker._facts[pid]
    return bool(SPEECH.search(f.title) or len(SPEECH.findall(f.abstract)) >= 2)


def test_own_topic_ranks_above_unrelated_papers(sample_db: Database, ranker: Ranker) -> None:
    lib = _speech_library(sample_db, ranker)
    signals = UserSignals(saves=tuple(Signal(i) for i in lib), weights=Weights(popularity=0.0, recency=0.0))
    cands = ranker.candidates()
    ranked = ranker.rank(signals, cands)
    assert ranked and not {r.paper_id for r in ranked} & set(lib)  # the library itself is never offered
    base = sum(_is_speech(ranker, r.paper_id) for r in ranked) / len(ranked)
    top = sum(_is_speech(ranker, r.paper_id) for r in ranked[:20]) / 20
    assert base < 0.1 and top >= 0.6, (base, top)
    # Relevance is a percentile against random recent papers: the top is near 1, the tail low.
    assert ranked[0].relevance > 0.95 and np.median([r.relevance for r in ranked]) < 0.8
    # Reasons name real library papers, with their real titles.
    lib_reasons = [why for r in ranked[:10] for why in r.reasons if why.kind == "library"]
    assert lib_reasons
    for why in lib_reasons:
        assert why.paper_id in lib and why.title == ranker._facts[why.paper_id].title
        assert why.title in why.text


def test_not_interested_lowers_similar_papers(sample_db: Database, ranker: Ranker) -> None:
    lib = _speech_library(sample_db, ranker)
    weights = Weights(popularity=0.0, recency=0.0)
    before = ranker.rank(UserSignals(saves=tuple(Signal(i) for i in lib), weights=weights))
    disliked = before[0].paper_id
    # The candidate most like the dismissed one (by text), among the top 30.
    feats = ranker._features([r.paper_id for r in before[1:30]], ranker._background().space)
    target = ranker._features([disliked], ranker._background().space)
    twin = feats.ids[int(np.argmax((feats.text @ target.text.T).toarray().ravel()))]
    after = ranker.rank(
        UserSignals(saves=tuple(Signal(i) for i in lib), not_interested=(Signal(disliked),), weights=weights)
    )
    pos_before = [r.paper_id for r in before].index(twin)
    pos_after = [r.paper_id for r in after].index(twin)
    assert disliked not in {r.paper_id for r in after}
    assert pos_after > pos_before, (pos_before, pos_after)


def test_filters_and_cold_start(sample_db: Database, ranker: Ranker) -> None:
    cands = ranker.candidates()
    ranker._load(cands)
    hidden = cands[0]
    signals = UserSignals(
        hidden=frozenset({hidden}),
        followed_categories=frozenset({"cs.RO"}),
        excluded_categories=frozenset({"cs.CV"}),
        excluded_words=("diffusion",),
    )
    ranked = ranker.rank(signals, cands)
    got = {r.paper_id for r in ranked}
    assert hidden not in got
    for r in ranked:
        f = ranker._facts[r.paper_id]
        assert "cs.CV" not in f.categories
        assert not re.search(r"\bdiffusion\b", f.title + " " + f.abstract, re.IGNORECASE)
    # No library yet: followed categories first, each saying so.
    first = ranked[0]
    assert "cs.RO" in ranker._facts[first.paper_id].categories
    assert any(w.kind == "category" and "cs.RO" in w.text for w in first.reasons)


# -- the CLI ------------------------------------------------------------------------------------
def test_eval_recs_cli_on_the_sample(tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(
        app,
        [
            "eval-recs",
            "--listings", str(LISTINGS),
            "--hf", str(HF),
            "--users", "4",
            "--rounds", "100",
            "--ranker", "popularity",
            "--ranker", "category",
            "--ranker", "arxiv-sanity-lite",
            "--json",
        ],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    data = orjson.loads(res.stdout.strip().splitlines()[-1])
    assert data["users"] == 4 and data["queries"] == 8 and data["seed"] == 14
    assert [r["ranker"] for r in data["results"]] == ["popularity", "category", "arxiv-sanity-lite"]
    for r in data["results"]:
        nd = r["ndcg@10"]
        assert 0.0 <= nd["low"] <= nd["mean"] <= nd["high"] <= 1.0
    # Vector rankers without a home with vectors: a clear error, not a traceback.
    empty = tmp_path / "home"
    db = Database(Settings(home=empty).db_url)
    db.migrate()
    db.dispose()
    res = runner.invoke(
        app, ["eval-recs", "--listings", str(LISTINGS), "--hf", str(HF), "--users", "2", "--home", str(empty)]
    )
    assert res.exit_code == 2 and "embeddings table is empty" in res.output


def test_eval_recs_resumes_from_its_out_file(tmp_path: Path) -> None:
    """An interrupted run picks up where it stopped: pairs already in --out are not run again, and
    the table covers the whole file."""
    out = tmp_path / "results.jsonl"
    base = ["eval-recs", "--listings", str(LISTINGS), "--hf", str(HF), "--users", "4", "--seed", "14"]
    base += ["--rounds", "100", "--json"]
    runner = CliRunner()
    first = runner.invoke(app, [*base, "--ranker", "category", "--out", str(out)])
    assert first.exit_code == 0, first.output
    lines = out.read_text().splitlines()
    assert len(lines) == 8
    # Lose the last three results, as a run killed midway would; add a second ranker.
    out.write_text("\n".join(lines[:5]) + "\n")
    again = runner.invoke(app, [*base, "--ranker", "category", "--ranker", "popularity", "--out", str(out)])
    assert again.exit_code == 0, again.output
    assert "resuming: 5 results" in again.output
    done = [orjson.loads(x) for x in out.read_text().splitlines()]
    pairs = [(d["query"], d["ranker"]) for d in done]
    assert len(pairs) == len(set(pairs)) == 16  # 3 category results re-run, 8 popularity ones, none twice
    data = orjson.loads(again.stdout.strip().splitlines()[-1])
    assert data["queries"] == 8 and [r["ranker"] for r in data["results"]] == ["popularity", "category"]
    assert data["results"][1] == orjson.loads(first.stdout.strip().splitlines()[-1])["results"][0] | {
        "seconds": data["results"][1]["seconds"]
    }
    # The file names each line's test paper: another sample's run (or table) refuses it.
    other = [a if a != "14" else "15" for a in base]
    for extra in (["--ranker", "category", "--out", str(out)], ["--summarize", str(out)]):
        wrong = runner.invoke(app, [*other, *extra])
        assert wrong.exit_code == 2 and "another sample" in wrong.output, wrong.output
    assert len(out.read_text().splitlines()) == 16  # nothing appended
    # A line whose query index is not one of this sample's (hand-edited, another tool's) is refused too.
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": -1, "ranker": "category", "recall": 1, "mrr": 1, "ndcg": 1, "seconds": 0}\n')
    wrong = runner.invoke(app, [*base, "--summarize", str(bad)])
    assert wrong.exit_code == 2 and "query -1 is not in this sample" in wrong.output, wrong.output


def test_eval_recs_bad_result_files_get_a_clear_error(tmp_path: Path) -> None:
    """A listing or Hugging Face file that is not what it says, a --summarize file that is not
    there, an --out that is a folder or in a missing folder: exit 2 with the path named, not a
    traceback."""
    base = ["eval-recs", "--listings", str(LISTINGS), "--hf", str(HF), "--users", "2", "--ranker", "category"]
    runner = CliRunner()
    (tmp_path / "listing.jsonl.gz").write_bytes(b"not gzip")
    (tmp_path / "hf.jsonl.gz").write_bytes(b"not gzip")
    (tmp_path / "hf.json").write_text("[1, 2")
    for extra, says in (
        (["--listings", str(tmp_path / "listing.jsonl.gz")], "listing.jsonl.gz"),
        (["--hf", str(tmp_path / "hf.jsonl.gz")], "hf.jsonl.gz"),
        (["--hf", str(tmp_path / "hf.json")], "hf.json"),
        (["--summarize", str(tmp_path / "missing.jsonl")], "missing.jsonl"),
        (["--out", str(tmp_path)], "is a folder"),
        (["--out", str(tmp_path / "no" / "such" / "r.jsonl")], "no folder"),
    ):
        res = runner.invoke(app, [*base, *extra])
        assert res.exit_code == 2 and says in res.output, res.output
        assert isinstance(res.exception, SystemExit)  # a clean exit, not an uncaught error


def test_rankers_never_see_author_names(tmp_path: Path) -> None:
    """Renaming every author (keeping who wrote what) changes no ranking: names are not features."""
    corpus = protocol.read_listings(LISTINGS)
    queries = protocol.build_queries(corpus, 3, 14)
    renamed = protocol.read_listings(LISTINGS)
    renamed.authors = [[f"author-{hash(a) % 10**9}" for a in names] for names in renamed.authors]
    orders = []
    for c in (corpus, renamed):
        ctx = ev.Context(c, np.zeros((len(c), 4), dtype=np.float32), 14)
        names = ("category", "arxiv-sanity-lite", "paperfeed")
        ctx.prepare(names)
        orders.append(
            [ev.RANK_FUNCS[n](q, ctx, np.random.default_rng(i)) for i, q in enumerate(queries) for n in names]
        )
    assert orders[0] == orders[1]


def test_model_cache_refits_only_when_signals_change(sample_db: Database, ranker: Ranker) -> None:
    lib = _speech_library(sample_db, ranker, n=8)
    signals = UserSignals(saves=tuple(Signal(i) for i in lib[:7]))
    first = ranker.model_for(1, signals)
    assert first is not None and ranker.model_for(1, signals) is first  # unchanged: the cached model
    saved_one_more = UserSignals(saves=tuple(Signal(i) for i in lib))
    second = ranker.model_for(1, saved_one_more)
    assert second is not first and second is not None and set(second.pos.ids) == set(lib)
    assert ranker.model_for(2, UserSignals()) is None  # nothing learned yet: cold start
    # rank() with the user's key uses the cached model: the same order as with the model passed in.
    by_key = ranker.rank(saved_one_more, user_key=1, limit=10)
    by_model = ranker.rank(saved_one_more, model=second, limit=10)
    assert [r.paper_id for r in by_key] == [r.paper_id for r in by_model]


def test_reasons_only_where_asked_and_the_same_later(sample_db: Database, ranker: Ranker) -> None:
    lib = _speech_library(sample_db, ranker, n=10)
    signals = UserSignals(saves=tuple(Signal(i) for i in lib))
    model = ranker.model_for(3, signals)
    full = ranker.rank(signals, model=model, limit=20)
    lean = ranker.rank(signals, model=model, limit=20, explain=3)
    assert [r.paper_id for r in lean] == [r.paper_id for r in full]
    assert all(r.reasons for r in full) and all(r.reasons for r in lean[:3]) and not any(r.reasons for r in lean[3:])
    assert [r.reasons for r in ranker.explain(signals, model, lean[3:])] == [r.reasons for r in full[3:]]
    from_list = ranker.explain(signals, model, lean[3:], candidates=ranker.candidates())  # the list's cached rows
    assert [r.reasons for r in from_list] == [r.reasons for r in full[3:]]


def test_models_persist_for_every_process_and_refit_when_signals_change(
    sample_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    def small(db: Database) -> Ranker:  # another process; a small background keeps the test quick
        return Ranker(db, background_size=300)

    uid = factories.add_user(sample_db, "model-owner")
    lib = _speech_library(sample_db, small(sample_db), n=9)
    signals = UserSignals(saves=tuple(Signal(i) for i in lib[:8]))
    first = small(sample_db)
    fitted = first.model_for(uid, signals)
    with sample_db.read() as conn:
        row = user_model_store.get_model(conn, uid)
    assert fitted is not None and row is not None

    def no_fit(_: UserSignals) -> None:
        raise AssertionError("refitted although a stored model fits")

    other = small(sample_db)  # another process: no cache, the stored model
    monkeypatch.setattr(other, "fit", no_fit)
    loaded = other.model_for(uid, signals)
    assert loaded is not None and loaded.pos.ids == fitted.pos.ids
    a, b = first.rank(signals, model=fitted, limit=20), other.rank(signals, model=loaded, limit=20)
    assert [(r.paper_id, r.score, r.reasons) for r in a] == [(r.paper_id, r.score, r.reasons) for r in b]
    monkeypatch.undo()

    def stored_fingerprint() -> str:
        with sample_db.read() as conn:
            stored = user_model_store.get_model(conn, uid)
        assert stored is not None
        return stored.fingerprint

    # A new save, then a "not interested": each refits (in any process) and replaces the row.
    seen = {stored_fingerprint()}
    for changed in (
        UserSignals(saves=tuple(Signal(i) for i in lib)),
        UserSignals(saves=tuple(Signal(i) for i in lib), not_interested=(Signal(a[0].paper_id),)),
    ):
        model = small(sample_db).model_for(uid, changed)
        assert model is not None and set(model.pos.ids) == set(p.paper_id for p in changed.positives())
        assert (model.neg is not None) == bool(changed.not_interested)
        seen.add(stored_fingerprint())
    assert len(seen) == 3
    # A model fitted against a background older than MODEL_MAX_AGE_DAYS is refitted too.
    newest = small(sample_db)._background().newest
    assert newest is not None
    with sample_db.write() as conn:
        conn.execute(
            update(user_models).values(background_day=newest - timedelta(days=MODEL_MAX_AGE_DAYS + 1))
        )
    stale = small(sample_db)
    refits: list[int] = []
    real_fit = stale.fit
    monkeypatch.setattr(stale, "fit", lambda s: refits.append(1) or real_fit(s))
    assert stale.model_for(uid, changed) is not None and refits == [1]
    # Only real users' models are stored.
    small(sample_db).model_for(10_000, signals)
    with sample_db.read() as conn:
        assert user_model_store.get_model(conn, 10_000) is None
