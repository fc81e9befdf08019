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


def _read_results(paths: list[Path]) -> list[ev.QueryResult]:
    out = []
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise fail(f"{path}: cannot read it ({getattr(exc, 'strerror', None) or exc})") from None
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                d = orjson.loads(line)
                out.append(
                    ev.QueryResult(
                        int(d["query"]),
                        str(d["ranker"]),
                        d["recall"],
                        d["mrr"],
                        d["ndcg"],
                        d["seconds"],
                        str(d.get("paper", "")),
                    )
                )
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise fail(f"{path}:{n}: not a result line ({exc})") from None
    return out


def _check_sample(
    results: list[ev.QueryResult], queries: list[protocol.Query], corpus: protocol.Corpus, source: str
) -> None:
    """Results read back must be this sample's: each line names its test paper (older lines do not)."""
    for r in results:
        if not 0 <= r.query < len(queries):
            raise fail(f"{source}: query {r.query} is not in this sample of {len(queries)} test papers")
        now = corpus.ids[queries[r.query].test_row]
        if r.paper and r.paper != now:
            raise fail(f"{source}: results of another sample (query {r.query} was test paper {r.paper}, now {now})")


def _report(
    results: list[ev.QueryResult], *, users: int, planned: int, seed: int, rounds: int, total: float, json_: bool
) -> None:
    summary, done = ev.summarize(results, rounds=rounds, seed=seed)
    title = (
        f"eval-recs: {users} users sampled (seed {seed}), {done} of {planned} test papers scored by every ranker, "
        f"95% bootstrap intervals ({rounds} resamples)"
    )
    table = Table(title=title)
    for col in ("ranker", "Recall@10", "MRR", "nDCG@10", "s"):
        table.add_column(col)
    for r in summary:
        cells = (f"{i.mean:.3f} [{i.low:.3f}, {i.high:.3f}]" for i in (r.recall, r.mrr, r.ndcg))
        table.add_row(r.name, *cells, f"{r.seconds:.0f}")
    out.print(table)
    ours = next((r for r in summary if r.name == "paperfeed"), None)
    if ours is not None:
        for r in summary:
            if r.name.startswith("paperfeed"):
                continue
            verdict = "beats it (intervals do not overlap)" if ours.ndcg.low > r.ndcg.high else "NOT separated"
            out.print(f"paperfeed vs {r.name}: nDCG@10 {ours.ndcg.mean:.3f} vs {r.ndcg.mean:.3f}: {verdict}")
    out.print(f"total {total:.0f} s")
    if json_:
        data = {
            "users": users,
            "queries": done,
            "planned_queries": planned,
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
                for r in summary
            ],
        }
        print(orjson.dumps(data).decode())


def eval_recs(
    shared: Path = typer.Option(Path("../shared/data"), "--shared", help="The shared data folder."),
    listings: Path | None = typer.Option(
        None, "--listings", help="Default: SHARED/arxiv_daily/arxiv_cs_listings.jsonl.gz"
    ),
    hf: Path | None = typer.Option(
        None, "--hf", help="Default: SHARED/hf_daily_papers/hf_daily_papers_by_day.jsonl.gz"
    ),
    home: Path | None = typer.Option(None, "--home", help="A paperfeed home whose database holds the paper vectors."),
    users: int = typer.Option(protocol.EVAL_USERS, "--users", min=1, help="Users sampled (fixed seed)."),
    seed: int = typer.Option(protocol.EVAL_SEED, "--seed", help="Sampling, tie-breaking and bootstrap seed."),
    exclude_seed: int | None = typer.Option(
        None, "--exclude-seed", help="Leave out every user of that seed's sample (a tuning sample disjoint from it)."
    ),
    exclude_users: int = typer.Option(
        protocol.EVAL_USERS, "--exclude-users", min=1, help="Size of the --exclude-seed sample."
    ),
    more_users: int = typer.Option(
        0, "--more-users", min=0, help="Append this many users (never the tuning sample's) to the sample."
    ),
    more_seed: int = typer.Option(15, "--more-seed", help="Seed of the --more-users draw."),
    ranker: list[str] = typer.Option([], "--ranker", help=f"Repeatable; default all: {', '.join(ev.RANKERS)}."),
    rounds: int = typer.Option(1000, "--rounds", min=100, help="Bootstrap resamples."),
    allow_missing: bool = typer.Option(
        False, "--allow-missing-vectors", help="Run even if some papers have no vector (zeros)."
    ),
    shard: str = typer.Option("0/1", "--shard", help="K/N: score only test papers whose index is K mod N."),
    out_file: Path | None = typer.Option(
        None,
        "--out",
        help="Append one JSON line per test paper and ranker; pairs already in the file are not run again "
        "(an interrupted run resumes), and the table covers the whole file (this run's rankers).",
    ),
    summarize: list[Path] = typer.Option(
        [], "--summarize", help="Only print the table from --out files of earlier (sharded) runs."
    ),
    json_: bool = typer.Option(False, "--json", help="End with one JSON line of all figures."),
) -> None:
    """Recall@10, MRR and nDCG@10 with bootstrap 95% intervals of the "for you" ranker and the
    peers' rankers on authors' next papers (issue 14's protocol)."""
    if out_file is not None and out_file.exists() and not out_file.is_file():
        raise fail(f"--out {out_file} is a folder (or not a regular file): name a file")
    if out_file is not None and not out_file.parent.is_dir():
        raise fail(f"--out {out_file}: there is no folder {out_file.parent}")
    listings = listings or shared / "arxiv_daily" / "arxiv_cs_listings.jsonl.gz"
    hf = hf or shared / "hf_daily_papers" / "hf_daily_papers_by_day.jsonl.gz"
    names = list(dict.fromkeys(ranker)) or list(ev.RANKERS)
    bad = [n for n in names if n not in ev.RANKERS]
    if bad:
        raise fail(f"unknown ranker(s) {bad}; choose from {', '.join(ev.RANKERS)}")
    try:
        k, n_shards = (int(x) for x in shard.split("/"))
        if not 0 <= k < n_shards:
            raise ValueError
    except ValueError:
        raise fail("--shard must be K/N with 0 <= K < N") from None
    if not listings.is_file():
        raise fail(f"no listing file at {listings} (pass --shared or --listings)")
    t0 = time.perf_counter()
    try:
        corpus = protocol.read_listings(listings)
    except ValueError as exc:
        raise fail(str(exc)) from None
    exclude = None if exclude_seed is None else (exclude_seed, exclude_users)
    more = (more_users, more_seed) if more_users else None
    queries = protocol.build_queries(corpus, users, seed, exclude=exclude, more=more)
    n_users = len({q.user for q in queries})
    if summarize:
        results = _read_results(summarize)
        _check_sample(results, queries, corpus, "the --summarize files (pass the options of the run)")
        _report(
            results, users=n_users, planned=len(queries), seed=seed, rounds=rounds,
            total=time.perf_counter() - t0, json_=json_,
        )  # fmt: skip
        return
    # An earlier run's results: checked against this sample before minutes of preparation.
    earlier = _read_results([out_file]) if out_file is not None and out_file.is_file() else []
    _check_sample(earlier, queries, corpus, f"{out_file} (use a new --out file)")
    try:
        corpus.upvotes = protocol.read_hf_upvotes([hf]) if hf.is_file() else {}
    except ValueError as exc:
        raise fail(str(exc)) from None
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

    ctx = ev.Context(corpus, emb, seed)
    wanted = {q.user for q in queries}
    ctx.user_rows = {u: set(r) for u, r in protocol.user_papers(corpus).items() if u in wanted}
    console.print(f"{n_users} users, {len(queries)} test papers, seed {seed}; preparing features…", markup=False)
    ctx.prepare(names)
    earlier = [r for r in earlier if r.ranker in names]
    skip = {(r.query, r.ranker) for r in earlier}
    if skip:
        console.print(f"resuming: {len(skip):,} results already in {out_file}", markup=False)
    mine = len(range(k, len(queries), n_shards))
    sink = out_file.open("a", encoding="utf-8") if out_file is not None else None
    done: set[int] = set()

    def progress(r: ev.QueryResult) -> None:
        if sink is not None:
            sink.write(orjson.dumps(r.__dict__).decode() + "\n")
            sink.flush()
        if r.ranker == names[-1]:
            done.add(r.query)
            if len(done) % 25 == 0 or len(done) == mine:
                console.print(f"  {len(done)}/{mine} test papers", markup=False)

    try:
        results = ev.run_queries(queries, ctx, names, shard=(k, n_shards), on_result=progress, skip=skip)
    finally:
        if sink is not None:
            sink.close()
    _report(earlier + results, users=n_users, planned=len(queries), seed=seed, rounds=rounds,
            total=time.perf_counter() - t0, json_=json_)  # fmt: skip


def register(app: typer.Typer) -> None:
    app.command("eval-recs")(eval_recs)
