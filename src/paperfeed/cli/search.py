"""Search commands: ``paperfeed search QUERY`` and ``paperfeed eval DIR``."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import orjson
import typer
from rich.markup import escape

from paperfeed.cli.common import console, database, fail, out, settings
from paperfeed.search.hybrid import MODES, SearchError, SearchHit, SearchRequest, SearchService
from paperfeed.store import upvotes


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
    directory: Path = typer.Argument(..., exists=True, file_okay=False, help="A BEIR-format folder."),
    mode: list[str] = typer.Option(list(MODES), "--mode", help="Modes to score (repeatable)."),
    split: str = typer.Option("test", "--split", help="qrels/<split>.tsv"),
    workdir: Path | None = typer.Option(None, "--workdir", help="Keep the indexed corpus here for re-runs."),
    json_: bool = typer.Option(False, "--json", help="End with one JSON line of all scores."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
) -> None:
    """Score search quality on a BEIR data set: nDCG@10, MRR@10, Recall@10, Recall@100 per mode."""
    from paperfeed.search.eval_runner import evaluate

    bad = [m for m in mode if m not in MODES]
    if bad:
        raise fail(f"unknown mode(s) {bad}; choose from {', '.join(MODES)}")

    def show(m: str, scores: dict[str, float]) -> None:
        cells = "  ".join(f"{k} {v:.4f}" for k, v in scores.items())
        console.print(f"[bold]{m:<8}[/bold] {cells}")

    try:
        results = evaluate(directory, split=split, modes=mode, workdir=workdir, progress=not quiet, on_mode=show)
    except FileNotFoundError as exc:
        raise fail(str(exc)) from None
    if json_:
        print(orjson.dumps(results).decode())


def register(app: typer.Typer) -> None:
    app.command("search")(search)
    app.command("eval")(eval_cmd)
