"""``paperfeed serve`` (the web app under uvicorn) and ``paperfeed demo`` (sample data + serve).

``serve`` migrates the database once in the parent process, then starts uvicorn with N worker
processes, each building its own app from the environment. ``demo`` uses ``PAPERFEED_HOME`` or,
when unset, ``./.paperfeed-demo`` (so a demo never touches a real instance's data), imports the
bundled ``data/sample/`` on first run, indexes it for search and serves on 127.0.0.1.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from paperfeed.cli.common import EXIT_UNUSABLE, console, out, settings
from paperfeed.store.db import Database, open_database

DEMO_HOME = Path(".paperfeed-demo")
SAMPLE = Path(__file__).resolve().parents[3] / "data" / "sample"
# uvicorn's HTTP protocol plus a request-header deadline and size cap (uvicorn has neither); named
# like the app factory, so the CLI does not import the web stack before it serves.
HTTP_PROTOCOL = "paperfeed.web.server:HeaderDeadlineProtocol"
WORKER_HEALTHCHECK_S = 30  # seconds a worker process may take to answer uvicorn's health check


def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on (0.0.0.0 for all interfaces)."),
    port: int = typer.Option(8000, min=1, max=65535, help="TCP port."),
    workers: int = typer.Option(1, min=1, max=64, help="Worker processes (each has its own cache)."),
    no_pipeline: bool = typer.Option(
        False, "--no-pipeline", help="Do not run the pipeline (harvest, embedding, digests) here: cron does it."
    ),
    no_scheduler: bool = typer.Option(False, "--no-scheduler", hidden=True, help="The older name of --no-pipeline."),
    log_level: str = typer.Option("info", help="uvicorn log level."),
) -> None:
    """Serve the web site, JSON API and feeds with uvicorn."""
    import uvicorn

    if no_pipeline or no_scheduler:
        # Workers are separate processes that read settings from the environment.
        os.environ["PAPERFEED_PIPELINE"] = "0"
    s = settings()
    db = open_database(s)  # migrate once here, not racing in every worker
    db.dispose()
    pipeline = "on" if s.pipeline else "off (PAPERFEED_PIPELINE=0)"
    console.print(
        f"paperfeed on http://{host}:{port}  (database {s.db_url.split('@')[-1]}, {workers} worker(s), "
        f"pipeline {pipeline})"
    )
    uvicorn.run(
        "paperfeed.web.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        log_config=_log_config(log_level),
        # X-Forwarded-* are handled by the app itself, for the proxies in
        # PAPERFEED_FORWARDED_ALLOW_IPS only (uvicorn's own default trusts 127.0.0.1).
        proxy_headers=False,
        # uvicorn has no timeout for reading request headers: this protocol adds one (and a size cap).
        http=HTTP_PROTOCOL,
        timeout_keep_alive=s.keep_alive_timeout,  # type: ignore[arg-type]  # a float works (call_later)
        # uvicorn kills a worker that does not answer its health check in 5 s, also one still
        # importing on a busy machine, and then its replacement the same way, forever.
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_S,
    )


def _log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging, plus paperfeed's own loggers (the pipeline's leader changes, harvest
    results and warnings) at the same level, in every worker process."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["paperfeed"] = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    return config


def _has_papers(db: Database) -> bool:
    from paperfeed.store import feed_queries

    with db.read() as conn:
        return feed_queries.latest_listed_date(conn) is not None or feed_queries.latest_feed_date(conn) is not None


def import_sample(db: Database, sample: Path = SAMPLE) -> None:
    """Import the bundled sample: arXiv metadata files first, then Hugging Face daily dumps.

    A file whose name contains ``hf`` is a daily-papers dump; any other ``.json[l][.gz]`` file
    is arXiv metadata (Kaggle snapshot or listing format).
    """
    from paperfeed.ingest.arxiv_file import import_arxiv_file
    from paperfeed.ingest.hf_daily import import_hf_daily

    files = sorted(p for p in sample.rglob("*") if p.is_file() and ".json" in p.name)
    if not files:
        raise FileNotFoundError(f"no sample data under {sample}")
    arxiv = [p for p in files if "hf" not in p.name.lower() and "hf" not in p.parent.name.lower()]
    hf = [p for p in files if p not in arxiv]
    for p in arxiv:
        console.print(import_arxiv_file(db, p, console=console).summary(), markup=False)
    for p in hf:
        console.print(import_hf_daily(db, p, console=console).summary(), markup=False)


def demo(
    port: int = typer.Option(8000, min=1, max=65535, help="TCP port on 127.0.0.1."),
    skip_index: bool = typer.Option(False, "--skip-index", help="Serve without (re)building the search indexes."),
) -> None:
    """Load the bundled sample (first run), index it, and serve it on http://127.0.0.1:PORT."""
    import uvicorn

    from paperfeed.web.app import create_app

    if not os.environ.get("PAPERFEED_HOME"):
        os.environ["PAPERFEED_HOME"] = str(DEMO_HOME.resolve())
    os.environ.setdefault("PAPERFEED_BASE_URL", f"http://127.0.0.1:{port}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    # The pipeline keeps the demo current; its first arXiv harvest fetches two days, not a week.
    os.environ.setdefault("PAPERFEED_HARVEST_START_DAYS", "2")
    s = settings()
    console.print(f"demo data in {s.home}")
    db = open_database(s)
    if not _has_papers(db):
        try:
            import_sample(db)
        except FileNotFoundError as exc:
            console.print(f"[red]{escape(str(exc))}[/red]")
            raise typer.Exit(EXIT_UNUSABLE) from None
    if not skip_index:
        from paperfeed.search.indexer import IndexerBusy, run_index

        try:
            run_index(s, db, console=console)
        except IndexerBusy as exc:
            console.print(f"[yellow]{escape(str(exc))}; serving with the indexes as they are[/yellow]")
    out.print(f"\n[bold]paperfeed demo:[/bold] http://127.0.0.1:{port}/   (Ctrl-C to stop)\n")
    app = create_app(s, db, freeze_gc=True)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", proxy_headers=False,
                http=HTTP_PROTOCOL, timeout_keep_alive=s.keep_alive_timeout)  # type: ignore[arg-type]  # fmt: skip


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("demo")(demo)
