"""``paperfeed eval-recs``: the offline evaluation of the "for you" ranker against the peers'
methods (issue 14's protocol; :mod:`paperfeed.recs.protocol` and :mod:`paperfeed.recs.evaluate`).

Reads the listing file and the Hugging Face daily-papers dump from the shared data folder and
the paper vectors from a home's database (``--home``; the rankers that need vectors are left
out, with a message, when it has none, and the number of papers without a vector is printed).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import orjson
import typer
from rich.table import Table

from paperfeed.cli.common import console, fail, out
from paperfeed.config import Settings
from paperfeed.recs import evaluate as ev
from paperfeed.recs import protocol
from paperfeed.store import embeddings as emb_store
from paperfeed.store.db import Database


def _vectors(home: Path, corpus: protocol.Corpus) -> tuple[np.ndarray | None, int]:
    """Vectors aligned with the corpus rows (zero rows where missing) and how many are missing."""
    db_file = home / "paperfeed.db"
    if not db_file.is_file():
        raise fail(f"{home} holds no paperfeed.db (--home must be a paperfeed home with embeddings)")
    db = Database(Settings(home=home).db_url)
    try:
        rows = emb_store.load_vectors(db, None)
    finally:
        db.dispose()
    if not len(rows):
        return None, len(corpus)
    where = {pid: i for i, pid in enumerate(rows.paper_ids)}
    mat = np.zeros((len(corpus), rows.matrix.shape[1]), dtype=np.float32)
    missing = 0
    for r, pid in enumerate(corpus.ids):
        i = where.get(pid)
        if i is None:
            missing += 1
        else:
            mat[r] = rows.matrix[i]
    return mat, missing


def eval_recs(
    shared: Path = typer.Option(Path("../shared/data"), "--shared", help="The shared data folder."),
    listings: Path | None = typer.Option(
        None, "--listings", help="Default: SHARED/arxiv_daily/arxiv_cs_listings.jsonl.gz"
    ),
    hf: Path | None = typer.Option(
        None, "--hf", help="Default: SHARED/hf_daily_papers/hf_daily_papers_by_day.jsonl.gz"
    ),
    home: Path | None = typer.Option(None, "--home", help="A paperfeed home whose database holds the paper vectors."),
    users: int = typer.Option(600, "--users", min=1, help="Users sampled (fixed seed)."),
    seed: int = typer.Option(14, "--seed", help="Sampling, tie-breaking and bootstrap seed."),
    ranker: list[str] = typer.Option([], "--ranker", help=f"Repeatable; default all: {', '.join(ev.RANKERS)}."),
    rounds: int = typer.Option(1000, "--rounds", min=100, help="Bootstrap resamples."),
    allow_missing: bool = typer.Option(
        False, "--allow-missing-vectors", help="Run even if some papers have no vector (zeros)."
    ),
    json_: bool = typer.Option(False, "--json", help="End with one JSON line of all figures."),
) -> None:
    """Recall@10, MRR and nDCG@10 with bootstrap 95% intervals of the "for you" ranker and the
    peers' rankers on authors' next papers (issue 14's protocol)."""
    listings = listings or shared / "arxiv_daily" / "arxiv_cs_listings.jsonl.gz"
    hf = hf or shared / "hf_daily_papers" / "hf_daily_papers_by_day.jsonl.gz"
    names = list(dict.fromkeys(ranker)) or list(ev.RANKERS)
    bad = [n for n in names if n not in ev.RANKERS]
    if bad:
        raise fail(f"unknown ranker(s) {bad}; choose from {', '.join(ev.RANKERS)}")
    if not listings.is_file():
        raise fail(f"no listing file at {listings} (pass --shared or --listings)")
    t0 = time.perf_counter()
    try:
        corpus = protocol.read_listings(listings)
    except ValueError as exc:
        raise fail(str(exc)) from None
    corpus.upvotes = protocol.read_hf_upvotes([hf]) if hf.is_file() else {}
    if not hf.is_file():
        console.print(f"warning: no Hugging Face dump at {hf}: popularity is random", markup=False)

    emb = None
    need = [n for n in names if n in ev.NEEDS_VECTORS]
    if need:
        if home is None:
            console.print(f"no --home: left out {', '.join(need)} (they need paper vectors)", markup=False)
            names = [n for n in names if n not in ev.NEEDS_VECTORS]
        else:
            emb, missing = _vectors(home, corpus)
            if emb is None:
                raise fail(f"{home}: the embeddings table is empty; run `paperfeed index` there first")
            if missing:
                msg = f"{missing:,} of {len(corpus):,} papers have no vector in {home}"
                if not allow_missing:
                    raise fail(msg + " (finish `paperfeed index` there, or pass --allow-missing-vectors)")
                console.print(f"warning: {msg}; they count as zero vectors", markup=False)
    if not names:
        raise fail("no ranker left to run")

    queries = protocol.build_queries(corpus, users, seed)
    n_users = len({q.user for q in queries})
    ctx = ev.Context(corpus, emb, seed)
    ctx.user_rows = {u: set(r) for u, r in protocol.user_papers(corpus).items() if u in {q.user for q in queries}}
    console.print(f"{n_users} users, {len(queries)} test papers, seed {seed}; preparing features…", markup=False)
    ctx.prepare(names)

    def progress(name: str, n: int) -> None:
        if n % 100 == 0 or n == len(queries):
            console.print(f"  {name}: {n}/{len(queries)}", markup=False)

    results = ev.run(queries, ctx, names, rounds=rounds, progress=progress)
    total = time.perf_counter() - t0

    table = Table(
        title=f"eval-recs: {n_users} users, {len(queries)} test papers, seed {seed}, 95% bootstrap ({rounds})"
    )
    for col in ("ranker", "Recall@10", "MRR", "nDCG@10", "s"):
        table.add_column(col)
    for r in results:
        table.add_row(
            r.name,
            *(f"{i.mean:.3f} [{i.low:.3f}, {i.high:.3f}]" for i in (r.recall, r.mrr, r.ndcg)),
            f"{r.seconds:.0f}",
        )
    out.print(table)
    ours = next((r for r in results if r.name == "paperfeed"), None)
    if ours is not None:
        for r in results:
            if r.name.startswith("paperfeed"):
                continue
            beats = ours.ndcg.low > r.ndcg.high
            out.print(
                f"paperfeed vs {r.name}: nDCG@10 {ours.ndcg.mean:.3f} vs {r.ndcg.mean:.3f}, "
                f"{'beats it (intervals do not overlap)' if beats else 'NOT separated (intervals overlap or lower)'}"
            )
    out.print(f"total {total:.0f} s")
    if json_:
        print(
            orjson.dumps(
                {
                    "users": n_users,
                    "queries": len(queries),
                    "seed": seed,
                    "rounds": rounds,
                    "seconds": round(total, 1),
                    "results": [
                        {
                            "ranker": r.name,
                            "seconds": round(r.seconds, 1),
                            **{
                                k: {"mean": i.mean, "low": i.low, "high": i.high}
                                for k, i in (("recall@10", r.recall), ("mrr", r.mrr), ("ndcg@10", r.ndcg))
                            },
                        }
                        for r in results
                    ],
                }
            ).decode()
        )


def register(app: typer.Typer) -> None:
    app.command("eval-recs")(eval_recs)
