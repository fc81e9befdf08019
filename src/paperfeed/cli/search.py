"""Search commands: ``paperfeed search QUERY`` and ``paperfeed eval DIR``."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import typer
from rich.markup import escape

from paperfeed.cli.common import console, database, fail, out, settings
from paperfeed.config import Settings
from paperfeed.ingest.arxiv_file import import_arxiv_file
from paperfeed.ingest.hf_daily import import_hf_daily
from paperfeed.search.eval_sets import write_corpus_inputs
from paperfeed.search.hybrid import MODES, SearchError, SearchHit, SearchRequest, SearchService
from paperfeed.search.indexer import run_index
from paperfeed.store import upvotes
from paperfeed.store.db import Database


def _hit_json(hit: SearchHit) -> dict[str, Any]:
    p = hit.paper
    return {
        "id": p["id"],
        "title": p["title"],
        "authors": p["authors"],
        "published": p.get("published"),
        "categories": p.get("categories"),
        "upvotes": upvotes.total(p),
        "score": round(hit.score, 5),
        "why": hit.why,
    }


def search(
    query: str = typer.Argument(..., help='Query: words, "phrases", -exclude, author:, cat:, year:, after:, before:'),
    mode: str = typer.Option("hybrid", "--mode", help="keyword | semantic | hybrid"),
    limit: int = typer.Option(10, "--limit", min=1, max=100),
    sort: str = typer.Option("relevance", "--sort", help="relevance | date | upvotes"),
    category: list[str] = typer.Option([], "--cat", help="Only these categories (repeatable)."),
    after: str | None = typer.Option(None, "--after", help="YYYY-MM-DD"),
    before: str | None = typer.Option(None, "--before", help="YYYY-MM-DD"),
    has_code: bool = typer.Option(False, "--has-code"),
    json_: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Search the papers (hybrid keyword + semantic by default)."""
    s = settings()
    db = database(s)
    try:
        req = SearchRequest(
            q=query,
            mode=mode,
            sort=sort,
            limit=limit,
            categories=category,
            date_from=date.fromisoformat(after) if after else None,
            date_to=date.fromisoformat(before) if before else None,
            has_code=has_code,
        )
        res = SearchService(s, db).search(req)
    except (SearchError, ValueError) as exc:
        raise fail(str(exc)) from None
    if json_:
        payload = {
            "query": query,
            "mode": res.mode,
            "total": res.total,
            "took_ms": round(res.took_ms, 2),
            "warnings": res.warnings,
            "results": [_hit_json(h) for h in res.hits],
        }
        out.print_json(orjson.dumps(payload, default=str).decode())
        return
    for w in res.warnings:
        console.print(f"[yellow]note:[/yellow] {escape(w)}")
    for i, hit in enumerate(res.hits, 1):
        p = hit.paper
        authors = ", ".join(p["authors"][:3]) + (f" +{len(p['authors']) - 3}" if len(p["authors"]) > 3 else "")
        # Titles and names are data: "[Re] …" or "[/x]" must print as text, not as Rich markup.
        out.print(f"[bold]{i:>2}. {escape(p['title'])}[/bold]  [dim]{p['id']} · {p.get('published') or ''}[/dim]")
        out.print(f"    {escape(authors)}")
        out.print(f"    [dim]{escape('; '.join(hit.why))}[/dim]")
    out.print(f"[dim]{res.total} results · {res.mode} · {res.took_ms:.1f} ms[/dim]")


def eval_cmd(
    directory: Path | None = typer.Argument(
        None, exists=True, file_okay=False, help="A BEIR-format folder (or use --set)."
    ),
    set_: list[str] = typer.Option(
        [], "--set", help="Evaluation set(s) from data/eval: scifact, known-item, judged, or all (repeatable)."
    ),
    mode: list[str] = typer.Option([], "--mode", help="Modes to score (repeatable); default: all."),
    split: str = typer.Option("test", "--split", help="qrels/<split>.tsv; for --set: tune, test or both."),
    workdir: Path | None = typer.Option(None, "--workdir", help="Keep the indexed corpora here for re-runs."),
    database_url: str | None = typer.Option(
        None,
        "--database-url",
        help="A BEIR folder: load and search it in this (scratch) database instead of a SQLite file in the "
        "workdir, e.g. a PostgreSQL with pgvector. Refused if it holds papers of another corpus.",
    ),
    home: Path | None = typer.Option(None, "--home", help="--set judged: a home holding the judged corpus."),
    data: Path = typer.Option(Path("data/eval"), "--data", help="--set: the evaluation sets folder."),
    shared: Path = typer.Option(Path("../shared/data"), "--shared", help="--set: the shared data folder."),
    json_: bool = typer.Option(False, "--json", help="End with one JSON line of all scores."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
) -> None:
    """Score search quality per mode: on a BEIR folder (nDCG@10, MRR@10, Recall@10/100) or on the
    evaluation sets kept in data/eval (--set), with issue 16's targets checked on the test halves."""
    if set_:
        if database_url:
            raise fail("--database-url works with a BEIR folder, not with --set")
        _eval_sets(set_, mode, split, workdir, home, data, shared, json_, quiet)
        return
    if directory is None:
        raise fail("give a BEIR folder or --set NAME (scifact, known-item, judged, all)")
    from paperfeed.search import eval_runner
    from paperfeed.search.eval_runner import evaluate

    modes = mode or list(MODES)
    bad = [m for m in modes if m not in MODES]
    if bad:
        raise fail(f"unknown mode(s) {bad}; choose from {', '.join(MODES)}")

    def show(m: str, scores: dict[str, float]) -> None:
        cells = "  ".join(f"{k} {v:.4f}" for k, v in scores.items())
        console.print(f"[bold]{m:<8}[/bold] {cells}")

    try:
        results = evaluate(
            directory,
            split=split,
            modes=modes,
            workdir=workdir,
            progress=not quiet,
            on_mode=show,
            database_url=database_url,
        )
    except (FileNotFoundError, eval_runner.NotScratch) as exc:
        raise fail(str(exc)) from None
    if json_:
        print(orjson.dumps(results).decode())


def _eval_sets(
    names: list[str],
    mode: list[str],
    split: str,
    workdir: Path | None,
    home: Path | None,
    data: Path,
    shared: Path,
    json_: bool,
    quiet: bool,
) -> None:
    from paperfeed.search.eval_sets import SETS, SPLITS
    from paperfeed.search.eval_suite import SUITE_MODES, evaluate_sets, targets

    wanted = list(SETS) if "all" in names else list(dict.fromkeys(names))
    problems = [f"unknown set(s) {[n for n in wanted if n not in SETS]}"] if set(wanted) - set(SETS) else []
    if mode and set(mode) - set(SUITE_MODES):
        problems.append(f"unknown mode(s) {sorted(set(mode) - set(SUITE_MODES))}; choose from {', '.join(SUITE_MODES)}")
    if split not in (*SPLITS, "both"):
        problems.append("--split must be tune, test or both with --set")
    if not (shared / "scifact").is_dir():
        problems.append(f"{shared} does not hold the shared data (../shared/data); pass --shared")
    if problems:
        raise fail("; ".join(problems))

    def show(name: str, sp: str, m: str, scores: dict[str, float]) -> None:
        cells = "  ".join(f"{k} {v:.4f}" if k != "queries" else f"n={int(v)}" for k, v in scores.items())
        console.print(f"[bold]{name:<10} {sp:<4} {m:<15}[/bold] {cells}")

    def build_home(home: Path) -> None:
        """Import the judged corpus (``corpus_ids.txt``, a subset of the shared files) into ``home``, index it."""
        ids = (data / "judged" / "corpus_ids.txt").read_text(encoding="utf-8").split()
        listing, hf = write_corpus_inputs(shared, ids, home / "inputs")
        s = replace(Settings(home=home), secret_key="eval")
        db = Database(s.db_url)
        db.migrate()
        import_arxiv_file(db, listing, progress=not quiet)
        import_hf_daily(db, hf, progress=not quiet)
        run_index(s, db, progress=not quiet)
        db.dispose()

    try:
        results = evaluate_sets(
            wanted,
            splits=list(SPLITS) if split == "both" else [split],
            modes=mode or SUITE_MODES,
            data_dir=data,
            shared=shared,
            workdir=workdir or Path("/tmp/paperfeed-eval"),
            home=home,
            build_home=build_home,
            progress=not quiet,
            on_result=show,
        )
    except (FileNotFoundError, ValueError) as exc:
        raise fail(str(exc)) from None
    for label, met, figures in targets(results):
        console.print(f"{'[green]met[/green]' if met else '[red]NOT met[/red]'}  {label}: {figures}")
    if json_:
        print(orjson.dumps(results).decode())


def register(app: typer.Typer) -> None:
    app.command("search")(search)
    app.command("eval")(eval_cmd)
