"""``paperfeed status``: what the self-running pipeline is doing, on every machine of the instance.

The same data as ``/api/v1/status`` (``pipeline/status.collect``): the leader, the last harvest,
the embedding backlog, each node's index lag, the digest scheduler. The command's own index row
is the lexical index in this machine's ``PAPERFEED_HOME``. ``--json`` prints one JSON object.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
import typer
from rich.table import Table
from rich.text import Text

from paperfeed.cli.common import database, out, settings
from paperfeed.pipeline.lag import IndexLag
from paperfeed.pipeline.status import LeaseInfo, Status, collect
from paperfeed.search.lexical import LexicalIndex


def _ago(value: str | None, now: datetime) -> str:
    """``2026-12-01 20:31:02 (3 min ago)`` / ``(in 12 s)``; ``-`` for nothing."""
    if not value:
        return "-"
    when = datetime.fromisoformat(value)
    seconds = (now - when).total_seconds()
    span = abs(seconds)
    words = f"{span:.0f} s" if span < 120 else f"{span / 60:.0f} min" if span < 7200 else f"{span / 3600:.1f} h"
    return f"{when:%Y-%m-%d %H:%M:%S} ({words} ago)" if seconds >= 0 else f"{when:%Y-%m-%d %H:%M:%S} (in {words})"


def _lease(info: LeaseInfo | None, now: datetime) -> str:
    if info is None:
        return "none yet"
    state = "" if info["live"] else " [expired: nobody holds it]"
    return (
        f"{info['host']} pid {info['pid']}{state}\n"
        f"since {_ago(info['since'], now)}, expires {_ago(info['expires'], now)}"
    )


def _lags(lags: list[IndexLag]) -> str:
    if not lags:
        return "-"
    parts = []
    for lag in lags:
        seconds = lag["lag_seconds"]
        when = "not loaded" if lag["watermark"] is None and lag["behind"] else f"{seconds or 0:.0f} s behind"
        parts.append(f"{lag['name']}: {when}, {lag['behind']:,} rows")
    return "\n".join(parts)


def render(data: Status) -> Table:
    now = datetime.fromisoformat(data["now"])
    table = Table(title="paperfeed status", show_header=False, box=None, padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")

    def row(name: str, value: str) -> None:
        table.add_row(name, Text(value))  # values are data (error messages, hosts), never markup

    row("pipeline", "on" if data["pipeline"] else "off here (PAPERFEED_PIPELINE=0)")
    row("leader", _lease(data["leader"], now))
    h: dict[str, Any] = data["harvest"]
    sets = ", ".join(data["harvest_sets"]) or "none (PAPERFEED_HARVEST_SETS is empty)"
    if h:
        harvest = (
            f"sets {sets}: {h.get('result')} - {h.get('added', 0):,} new, {h.get('updated', 0):,} updated\n"
            f"started {_ago(h.get('started_at'), now)}, finished {_ago(h.get('finished_at'), now)}\n"
            f"last success {_ago(h.get('last_success'), now)}, next {_ago(h.get('next_attempt'), now)}"
        )
        if h.get("error"):
            harvest += f"\nlast error: {h['error']}"
    else:
        harvest = f"sets {sets}: never run"
    row("harvest", harvest)
    e = data["embedding"]
    row(
        "embedding",
        f"{e['backlog']:,} papers waiting ({e['vectors']:,} vectors, {e['papers']:,} papers; {e['model']})",
    )
    row("this home", _lags(data["indexes"]))
    for node in data["nodes"]:
        name = f"node {node['host']}:{node['pid']}" + (" (leader)" if node["leader"] else "")
        row(name, f"seen {_ago(node['seen_at'], now)}\n{_lags(node['indexes'])}")
    if not data["nodes"]:
        row("nodes", "no process runs the pipeline (is `paperfeed serve` up?)")
    d = data["digest"]
    last = d["last_pass"]
    digest = f"last pass {_ago(str(last.get('started_at') or ''), now)}: {last.get('result', '-')}"
    if last.get("error"):
        digest += f" (mail: {last['error']})"
    waiting = ", ".join(f"{k} {v:,}" for k, v in sorted(d["open"].items())) or "nothing waiting"
    row("digests", f"{digest}\n{waiting}\nsender lease: {_lease(d['sender'], now)}")
    return table


def status(json_: bool = typer.Option(False, "--json", help="Print one JSON object.")) -> None:
    """The pipeline: leader, last harvest, embedding backlog, index lag per node, digests."""
    s = settings()
    db = database(s)
    lexical = LexicalIndex(s).watermark()
    data = collect(s, db, {"lexical": lexical[0] if lexical else None})
    if json_:
        out.print_json(orjson.dumps(data).decode())
        return
    out.print(render(data))


def register(app: typer.Typer) -> None:
    app.command("status")(status)
