"""``paperfeed import hf-daily PATH``: Hugging Face Daily Papers dumps -> papers + daily entries.

Accepts the raw ``api/daily_papers?date=`` response saved per day (a JSON array; the day comes from
``--date`` or a ``YYYY-MM-DD`` in the file name), JSON lines of ``{"date", "papers": [...]}``
(``hf_daily_papers_by_day.jsonl.gz``), plain or gzip, or a directory of such files. Each entry gives
a paper (created only when missing), its daily entry on that day (the earliest day wins), the HF
submitter, upvotes, code/project links and the AI summary/keywords; the whole entry as the Hub
sent it is stored too, so every field (also ones a newer Hub adds) can be served back.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console

from paperfeed.ingest import pipeline
from paperfeed.ingest.files import InputFile, TruncatedInput, UnusableInput, describe_non_json
from paperfeed.ingest.pipeline import Located, Rejected
from paperfeed.ingest.report import ImportReport, ProgressBar
from paperfeed.records import (
    HFEntry,
    PaperRecord,
    RecordError,
    clean_optional,
    clean_text,
    parse_arxiv_id,
    parse_day,
    parse_timestamp,
)
from paperfeed.store.db import Database
from paperfeed.store.papers import upsert_hf

_EXPECTED = "a JSON array of daily papers (one day) or JSON lines of {date, papers}"
_DAY_IN_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})")
_SUFFIXES = (".json", ".json.gz", ".jsonl", ".jsonl.gz")

Item = Located[HFEntry] | Rejected


def _count(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise RecordError(f"bad {what}: {value!r}")
    return value


def _link(value: Any) -> str | None:
    """Only http(s) links are kept: the web pages render these as anchors."""
    url = clean_optional(value)
    return url if url and url.lower().startswith(("http://", "https://")) else None


def _username(value: Any) -> str | None:
    """A Hub user object's username: ``name`` (``user`` in older paper-level objects)."""
    if isinstance(value, dict):
        return clean_optional(value.get("name")) or clean_optional(value.get("user"))
    return None


def _fullname(value: Any) -> str | None:
    return clean_optional(value.get("fullname")) if isinstance(value, dict) else None


def _keywords(value: Any) -> list[str] | None:
    """The keyword strings (None when there are none, so "no keywords" has one representation)."""
    if value is None:
        return None
    if not isinstance(value, list):
        raise RecordError(f"bad paper.ai_keywords: {value!r:.80}")
    return [k for k in (clean_text(v) for v in value if isinstance(v, str)) if k] or None


def parse_entry(entry: Any, feed_date: date, position: int | None = None) -> HFEntry:
    """One element of an ``api/daily_papers`` response, shown on the feed of ``feed_date``.

    The typed fields are what paperfeed queries and shows; ``source`` keeps the whole entry.
    """
    if not isinstance(entry, dict) or not isinstance(entry.get("paper"), dict):
        raise RecordError("expected an object with a 'paper' object")
    p = entry["paper"]
    if not p.get("id"):
        raise RecordError("missing paper.id")
    try:
        pid, version = parse_arxiv_id(str(p["id"]))
    except ValueError as exc:
        raise RecordError(str(exc)) from None
    title = clean_text(p.get("title") or entry.get("title"))
    if not title:
        raise RecordError("missing title")
    authors_raw = p.get("authors") or []
    if not isinstance(authors_raw, list):
        raise RecordError("paper.authors is not a list")
    visible: list[str] = []
    hidden: list[str] = []
    for a in authors_raw:
        if isinstance(a, dict):
            name = clean_text(a.get("name"))
            # HF lets authors be hidden from a paper page: kept (flag in the source), never shown.
            if name:
                (hidden if a.get("hidden") else visible).append(name)
    published = parse_timestamp(p["publishedAt"], "paper.publishedAt").date() if p.get("publishedAt") else None
    entry_published = parse_timestamp(entry["publishedAt"], "publishedAt") if entry.get("publishedAt") else None
    if p.get("submittedOnDailyAt"):
        submitted_at = parse_timestamp(p["submittedOnDailyAt"], "paper.submittedOnDailyAt")
    elif entry_published is not None:
        submitted_at = entry_published
    else:
        submitted_at = datetime(feed_date.year, feed_date.month, feed_date.day)
    record = PaperRecord(
        id=pid,
        title=title,
        abstract=clean_text(p.get("summary") or entry.get("summary")),
        authors=[a for a in visible if a not in hidden],
        version=version,
        published=published,
        github_repo=_link(p.get("githubRepo")),
        github_stars=_count(p.get("githubStars"), "paper.githubStars"),
        project_page=_link(p.get("projectPage")),
        imported_upvotes=_count(p.get("upvotes"), "paper.upvotes") or 0,
        ai_summary=clean_optional(p.get("ai_summary")),
        ai_keywords=_keywords(p.get("ai_keywords")),
        hidden_authors=sorted(set(hidden)),
    )
    by = entry.get("submittedBy") if isinstance(entry.get("submittedBy"), dict) else p.get("submittedOnDailyBy")
    return HFEntry(
        paper=record,
        feed_date=feed_date,
        submitter=_username(by),
        submitted_at=submitted_at,
        source=entry,
        submitter_fullname=_fullname(by),
        published_at=entry_published,
        position=position,
    )


def _entries(entries: Any, feed_date: date, where: str) -> Iterator[Item]:
    if not isinstance(entries, list):
        yield Rejected(where, f"expected a list of papers, got {type(entries).__name__}")
        return
    for i, entry in enumerate(entries, 1):
        paper = entry.get("paper") if isinstance(entry, dict) else None
        pid = paper.get("id") if isinstance(paper, dict) else None
        at = f"{where} entry {i}" + (f" ({pid})" if pid else "")
        try:
            yield Located(at, parse_entry(entry, feed_date, i))
        except RecordError as exc:
            yield Rejected(at, str(exc))


def day_from_name(path: str | Path) -> date | None:
    m = _DAY_IN_NAME.search(Path(path).name)
    if not m:
        return None
    try:
        return date.fromisoformat(m.group(1))
    except ValueError:
        return None


def _looks_like_object(first_line: bytes) -> bool:
    """A pretty-printed JSON object starts with a line such as ``{`` or ``{"status": "ok",``."""
    s = first_line.strip()
    return s == b"{" or (s.startswith(b"{") and s.endswith(b","))


def iter_file(inp: InputFile, day: date | None) -> Iterator[Item]:
    """Entries of one file: a one-day JSON array, or JSON lines of days."""
    head = inp.head().lstrip()
    if head[:1] == b"[":
        feed_date = day or day_from_name(inp.name)
        if feed_date is None:
            raise UnusableInput(f"{inp.name}: cannot tell which day this is: name it YYYY-MM-DD.json or pass --date")
        try:
            data = orjson.loads(inp.read_all())
        except orjson.JSONDecodeError as exc:
            raise UnusableInput(f"{inp.name}: not valid JSON ({exc})") from None
        yield from _entries(data, feed_date, inp.name)
        return
    if head[:1] != b"{":
        raise describe_non_json(inp.name, head, _EXPECTED)
    if day is not None:
        raise UnusableInput(f"{inp.name}: holds its own dates (JSON lines); --date only applies to a one-day array")
    first = True
    for lineno, line in inp.lines():
        if not line.strip():
            continue
        where = f"{inp.name}:{lineno}"
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            if first and _looks_like_object(line):
                raise UnusableInput(f"{inp.name}: a JSON object where {_EXPECTED} was expected") from None
            first = False
            yield Rejected(where, f"malformed JSON ({exc})")
            continue
        if first and not (isinstance(obj, dict) and "papers" in obj):
            keys = ", ".join(list(obj)[:8]) if isinstance(obj, dict) else type(obj).__name__
            raise UnusableInput(f"{inp.name}: a JSON object ({keys}) where {_EXPECTED} was expected")
        first = False
        if not isinstance(obj, dict) or "papers" not in obj:
            yield Rejected(where, "expected an object with 'date' and 'papers'")
            continue
        try:
            feed_date = parse_day(obj.get("date"), "date")
        except RecordError as exc:
            yield Rejected(where, str(exc))
            continue
        yield from _entries(obj["papers"], feed_date, where)


def _files(path: Path) -> list[Path]:
    if not path.is_dir():
        return [path]
    files = sorted(p for p in path.iterdir() if p.is_file() and p.name.endswith(_SUFFIXES))
    if not files:
        raise UnusableInput(f"{path}: no .json/.jsonl(.gz) files in this directory")
    return files


def import_hf_daily(
    db: Database,
    path: str | Path,
    *,
    day: date | None = None,
    batch_size: int = 2000,
    progress: bool = True,
    on_reject: Callable[[str], None] | None = None,
    console: Console | None = None,
) -> ImportReport:
    """Import one HF daily dump file or a directory of them.

    Raises :class:`UnusableInput` when a single given file cannot be used at all; in a directory
    such a file is reported as rejected and the other files are imported.
    """
    p = Path(path)
    if str(path) != "-" and not p.exists():
        raise UnusableInput(f"{p}: no such file or directory")
    files = [p] if str(path) == "-" else _files(p)
    if day is not None and len(files) > 1:
        raise UnusableInput(f"{p}: --date applies to a single one-day file, not a directory")
    report = ImportReport(source=str(path), on_reject=on_reject)
    sizes = [f.stat().st_size if f.is_file() else 0 for f in files] if str(path) != "-" else [0]
    total = sum(sizes) or None
    unit = "bytes" if total else "records"
    with ProgressBar(f"import {p.name}", total, unit=unit, enabled=progress, console=console) as bar:
        done = 0

        def stream() -> Iterator[Item]:
            nonlocal done
            for f, size in zip(files, sizes, strict=True):
                try:
                    with InputFile(f) as inp:
                        for n, item in enumerate(iter_file(inp, day), 1):
                            if n % 200 == 0:
                                bar.update(done + inp.position() if total else report.read, f"{report.read:,} entries")
                            yield item
                except UnusableInput as exc:
                    if len(files) == 1:
                        raise
                    yield Rejected(str(f), str(exc).removeprefix(f"{f}: "))
                except TruncatedInput as exc:
                    if len(files) == 1:
                        raise
                    # Keep going with the other files; the run still ends with exit 3.
                    report.truncated = f"{report.truncated}; {exc}" if report.truncated else str(exc)
                done += size
                bar.update(done if total else report.read, f"{report.read:,} entries")

        pipeline.run(db, stream(), upsert_hf, report, batch_size=batch_size)
    return report
