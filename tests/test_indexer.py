"""``paperfeed index`` end to end with the real encoder: incremental embedding, resume after
SIGKILL, interrupted --rebuild, HNSW corruption recovery, CLI summary and lock."""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import orjson
import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from paperfeed.cli import app
from paperfeed.config import Settings
from paperfeed.search import vectors as vx
from paperfeed.search.indexer import IndexerBusy, run_index
from paperfeed.search.vectors import VectorIndex
from paperfeed.store import embeddings as store
from paperfeed.store.db import Database
from paperfeed.store.schema import embeddings, papers

from .factories import add_papers, make_paper

encoder_mod = pytest.importorskip("paperfeed.search.encoder", reason="the encoder module is not in this checkout")

TOPICS = [
    ("Protein structure prediction with deep learning", "We predict 3D protein folding from amino acid sequences."),
    ("Diffusion models for video generation", "A latent video diffusion model generates temporally coherent clips."),
    ("Graph neural networks for molecules", "Message passing networks predict molecular properties."),
    ("Speech recognition in noisy environments", "Robust acoustic models transcribe speech with background noise."),
    ("Reinforcement learning for robot grasping", "A robot arm learns to grasp objects from camera images."),
    ("Retrieval-augmented language models", "Large language models retrieve documents to answer questions."),
    ("Federated learning with differential privacy", "Clients train a shared model without sharing raw data."),
    ("Image segmentation of medical scans", "A U-Net segments tumours in MRI scans."),
]


def topical_papers(n: int) -> list[dict]:
    out = []
    for i in range(n):
        title, abstract = TOPICS[i % len(TOPICS)]
        out.append(make_paper(title=f"{title} ({i})", abstract=f"{abstract} Variant {i} studies setting {i * 7 % 13}."))
    return out


@pytest.fixture(scope="module")
def encoder(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    home = tmp_path_factory.mktemp("enc-home")
    return encoder_mod.get_encoder(Settings(home=home, secret_key="x"))


def share_model(encoder, home: Path) -> None:  # type: ignore[no-untyped-def]
    """Give a CLI run's home the already built encoder file (building it again takes ~10 s)."""
    (home / "models").mkdir(parents=True, exist_ok=True)
    target = home / "models" / encoder.path.name
    if not target.exists():
        os.link(encoder.path, target)


def vectors_by_paper(db: Database) -> dict[str, tuple[int, bytes, object]]:
    with db.read() as conn:
        cols = (embeddings.c.paper_id, embeddings.c.id, embeddings.c.vector, embeddings.c.created_at)
        rows = conn.execute(select(*cols))
        return {r.paper_id: (r.id, bytes(r.vector), r.created_at) for r in rows}


def test_second_run_embeds_nothing_and_one_change_reembeds_one(db: Database, settings: Settings, encoder) -> None:
    rows = add_papers(db, topical_papers(24))
    first = run_index(settings, db, batch_size=10, progress=False, encoder=encoder)
    assert (first.embedded, first.unchanged) == (24, 0)
    assert first.ann.startswith("not needed")
    before = vectors_by_paper(db)
    assert len(before) == 24

    second = run_index(settings, db, batch_size=10, progress=False, encoder=encoder)
    assert (second.embedded, second.unchanged) == (0, 24)
    assert vectors_by_paper(db) == before  # not even rewritten

    target = rows[5]["id"]
    abstract = "A completely different abstract about galaxy formation and dark matter halos."
    with db.write() as conn:
        conn.execute(
            update(papers)
            .where(papers.c.id == target)
            .values(abstract=abstract, content_hash=hashlib.sha256(abstract.encode()).hexdigest())
        )
    third = run_index(settings, db, batch_size=10, progress=False, encoder=encoder)
    assert (third.embedded, third.unchanged) == (1, 23)
    after = vectors_by_paper(db)
    assert {pid for pid in after if after[pid] != before[pid]} == {target}
    assert after[target][0] == before[target][0]  # same integer key
    vi = VectorIndex(settings, db, model=encoder.model_name)
    assert vi.search(encoder.encode_query("dark matter halos in galaxies"), 1)[0][0] == target


def test_semantic_search_over_indexed_papers(db: Database, settings: Settings, encoder) -> None:
    rows = add_papers(db, topical_papers(16))
    run_index(settings, db, progress=False, encoder=encoder)
    vi = VectorIndex(settings, db)  # model found on its own
    assert vi.model == encoder.model_name
    top = vi.search(encoder.encode_query("protein folding"), 2)
    assert all("Protein" in next(r["title"] for r in rows if r["id"] == pid) for pid, _ in top)


def test_hnsw_above_threshold_and_corruption(
    db: Database, settings: Settings, encoder, caplog: pytest.LogCaptureFixture
) -> None:
    s = replace(settings, ann_threshold=20)
    rows = add_papers(db, topical_papers(48))
    report = run_index(s, db, batch_size=16, progress=False, encoder=encoder)
    assert report.ann.startswith("built: 48")
    vi = VectorIndex(s, db, model=encoder.model_name)
    assert vi.mode == "hnsw" and len(vi) == 48
    q = encoder.encode_query("robot arm grasping objects")
    expected = vi.search(q, 5)

    man = vx.IndexFiles(s.index_dir / "vectors").manifest()
    (s.index_dir / "vectors" / man["index_file"]).write_bytes(os.urandom(5000))  # garbage
    with caplog.at_level(logging.WARNING):
        vi2 = VectorIndex(s, db, model=encoder.model_name)
        got = vi2.search(q, 5)  # answers while rebuilding
    assert "rebuilding" in caplog.text
    assert [p for p, _ in got] == [p for p, _ in expected]
    assert vi2.wait_for_rebuild(60) and vi2.mode == "hnsw"
    assert [p for p, _ in vi2.search(q, 5)] == [p for p, _ in expected]
    assert {r["id"] for r in rows} >= {p for p, _ in expected}

    # The indexer notices too, and a second run leaves the file alone.
    (s.index_dir / "vectors" / vx.IndexFiles(s.index_dir / "vectors").manifest()["index_file"]).write_bytes(b"x")
    assert run_index(s, db, progress=False, encoder=encoder).ann.startswith("built")
    assert run_index(s, db, progress=False, encoder=encoder).ann.startswith("up to date")


class _Interrupting:
    """The real encoder, interrupted (like Ctrl-C) on its n-th call."""

    def __init__(self, inner, fail_on: int) -> None:  # type: ignore[no-untyped-def]
        self.inner, self.fail_on, self.calls = inner, fail_on, 0
        self.model_name = inner.model_name

    def encode(self, texts, batch_size=32):  # type: ignore[no-untyped-def]
        self.calls += 1
        if self.calls == self.fail_on:
            raise KeyboardInterrupt
        return self.inner.encode(texts, batch_size=batch_size)


def test_interrupted_rebuild_is_resumed(db: Database, settings: Settings, encoder) -> None:
    add_papers(db, topical_papers(20))
    run_index(settings, db, batch_size=5, progress=False, encoder=encoder)
    with pytest.raises(KeyboardInterrupt):
        run_index(settings, db, rebuild=True, batch_size=5, progress=False, encoder=_Interrupting(encoder, 3))
    assert store.rebuild_mark(db) is not None
    report = run_index(settings, db, batch_size=5, progress=False, encoder=encoder)
    assert report.resumed_rebuild and report.embedded == 10  # two batches were done before the interrupt
    assert store.rebuild_mark(db) is None
    assert run_index(settings, db, rebuild=True, batch_size=5, progress=False, encoder=encoder).embedded == 20


def test_cli_summary_json_and_lock(settings: Settings, db: Database, encoder, monkeypatch: pytest.MonkeyPatch) -> None:
    add_papers(db, topical_papers(6))
    share_model(encoder, settings.home)
    monkeypatch.setenv("PAPERFEED_HOME", str(settings.home))
    runner = CliRunner()
    res = runner.invoke(app, ["index", "--quiet"])
    assert res.exit_code == 0, res.output
    assert res.output.strip() == ""  # nothing on success
    res = runner.invoke(app, ["index", "--json", "--quiet"])
    assert res.exit_code == 0, res.output
    data = orjson.loads(res.stdout)  # JSON only: no progress bars
    assert data["embedded"] == 0 and data["unchanged"] == 6
    add_papers(db, topical_papers(2))
    res = runner.invoke(app, ["index"])
    assert res.exit_code == 0, res.output
    assert "embedded 2 papers, skipped 6 unchanged" in res.stdout
    settings.index_dir.mkdir(parents=True, exist_ok=True)
    with open(settings.index_dir / "indexer.lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        res = runner.invoke(app, ["index"])
        assert res.exit_code == 2 and "another `paperfeed index` is running" in res.output
        with pytest.raises(IndexerBusy):
            run_index(settings, db, progress=False)


def _cli(home: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PAPERFEED_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", "from paperfeed.cli import app; app(prog_name='paperfeed')", "index", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_matches_clean_run(tmp_path: Path, encoder) -> None:
    n, batch = 160, 8
    homes = {name: tmp_path / name for name in ("killed", "clean")}
    dbs = {}
    papers_rows = topical_papers(n)
    for name, home in homes.items():
        s = Settings(home=home, secret_key="x")
        dbs[name] = Database(s.db_url)
        dbs[name].migrate()
        add_papers(dbs[name], [dict(r) for r in papers_rows])
        share_model(encoder, home)

    proc = _cli(homes["killed"], "--batch-size", str(batch), "--quiet")
    deadline = time.time() + 120
    done = 0
    while time.time() < deadline and proc.poll() is None:
        done = store.count_vectors(dbs["killed"])
        if done >= batch:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = store.count_vectors(dbs["killed"])
    assert batch <= done < n, f"kill did not land mid-run ({done} of {n} embedded)"
    assert done % batch == 0  # whole batches only

    for name in ("killed", "clean"):
        proc = _cli(homes[name], "--batch-size", str(batch))
        output = proc.communicate(timeout=300)[0].decode()
        assert proc.returncode == 0, output
        if name == "killed":
            assert f"embedded {n - done:,} papers" in output
    killed, clean = vectors_by_paper(dbs["killed"]), vectors_by_paper(dbs["clean"])
    assert len(killed) == len(clean) == n  # exactly one vector per paper (paper_id is unique)
    for pid, (_, blob, _) in clean.items():
        a = np.frombuffer(killed[pid][1], dtype=np.float32)
        b = np.frombuffer(blob, dtype=np.float32)
        assert float(a @ b) > 0.9999, pid
    for d in dbs.values():
        d.dispose()


@pytest.mark.slow
def test_hnsw_recall_on_real_abstracts(db: Database, settings: Settings, encoder) -> None:
    """Real arXiv abstracts and real search queries: HNSW top-10 vs exact top-10."""
    import gzip
    import json

    from .conftest import shared_path

    listings = shared_path("arxiv_daily", "arxiv_cs_listings.jsonl.gz")
    queries_file = shared_path("paper_search_queries", "computer_science_ai_search_queries.json")
    with gzip.open(listings, "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for _, line in zip(range(1500), fh, strict=False)]
    add_papers(db, [make_paper(id=r["id"], title=r["title"], abstract=r["abstract"]) for r in rows])
    s = replace(settings, ann_threshold=500)
    assert run_index(s, db, progress=False, encoder=encoder).ann.startswith("built: 1,500")
    vi = VectorIndex(s, db, model=encoder.model_name)
    assert vi.mode == "hnsw"
    exact = store.load_vectors(db, encoder.model_name)
    texts = [v["search_query"] for v in orjson.loads(queries_file.read_bytes()).values()]
    recalls = []
    for text in texts:
        q = encoder.encode_query(text)
        truth = {exact.paper_ids[i] for i in np.argsort(-(exact.matrix @ q))[:10]}
        recalls.append(len(truth & {p for p, _ in vi.search(q, 10)}) / 10)
    assert np.mean(recalls) >= 0.98
