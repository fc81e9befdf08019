"""Import bookkeeping: counts, rejected-record messages, the one-line summary, the exit code, and
the rich progress bar. Shared by every importer and the harvester.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from paperfeed.store.papers import UpsertCounts

EXIT_OK = 0
EXIT_UNUSABLE = 2
EXIT_REJECTED = 3

_KEEP_MESSAGES = 1000  # enough for tests and an API caller; all of them go to on_reject anyway


@dataclass
class ImportReport:
    """What one import or harvest run did. ``read`` = inserted + updated + unchanged + rejected (+ deleted)."""

    source: str
    read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    deleted: int = 0  # OAI-PMH deleted records (skipped)
    truncated: str | None = None  # set when the input broke off; what came before was kept
    error: str | None = None  # set when the run stopped early (e.g. an OAI error); committed work is kept
    messages: list[str] = field(default_factory=list)
    on_reject: Callable[[str], None] | None = None
    started: float = field(default_factory=time.perf_counter)
    finished: float | None = None

    def reject(self, where: str, reason: str) -> None:
        self.rejected += 1
        msg = f"{where}: rejected: {reason}"
        if len(self.messages) < _KEEP_MESSAGES:
            self.messages.append(msg)
        if self.on_reject:
            self.on_reject(msg)

    def add(self, counts: UpsertCounts) -> None:
        self.inserted += counts.inserted
        self.updated += counts.updated
        self.unchanged += counts.unchanged

    def finish(self) -> ImportReport:
        self.finished = time.perf_counter()
        return self

    @property
    def changed(self) -> int:
        return self.inserted + self.updated

    @property
    def seconds(self) -> float:
        return (self.finished or time.perf_counter()) - self.started

    @property
    def rate(self) -> float:
        return self.read / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        line = (
            f"read {self.read:,}, inserted {self.inserted:,}, updated {self.updated:,}, "
            f"unchanged {self.unchanged:,}, rejected {self.rejected:,}"
        )
        if self.deleted:
            line += f", deleted {self.deleted:,} (skipped)"
        return line + f" ({self.rate:,.0f} papers/s, {self.seconds:.1f} s)"

    @property
    def exit_code(self) -> int:
        """2: the run could not finish (an OAI error); 3: records rejected or the input was truncated."""
        if self.error:
            return EXIT_UNUSABLE
        if self.rejected or self.truncated:
            return EXIT_REJECTED
        return EXIT_OK

    def as_dict(self) -> dict[str, Any]:
        return {
            k: getattr(self, k)
            for k in ("source", "read", "inserted", "updated", "unchanged", "rejected", "deleted", "truncated", "error")
        }


class ProgressBar:
    """A rich progress bar over bytes (when the size is known) or records; a no-op when disabled."""

    def __init__(
        self,
        description: str,
        total: int | None,
        *,
        unit: str = "bytes",
        enabled: bool = True,
        console: Console | None = None,
    ) -> None:
        self._progress: Progress | None = None
        if not enabled:
            return
        count_col = DownloadColumn() if unit == "bytes" and total else MofNCompleteColumn()
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            count_col,
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console or Console(stderr=True),
            transient=False,
        )
        # File names are data: a "[x].json" file must not be read as Rich markup.
        self._task = self._progress.add_task(escape(description), total=total if total else None, status="")

    def __enter__(self) -> ProgressBar:
        if self._progress:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress:
            self._progress.stop()

    def update(self, completed: int, status: str = "", total: int | None = None) -> None:
        if self._progress:
            kw: dict[str, Any] = {"completed": completed, "status": status}
            if total:
                kw["total"] = total
            self._progress.update(self._task, **kw)
