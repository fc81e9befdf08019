"""``paperfeed import arxiv FILE``: arXiv metadata from JSON lines files, streamed in constant memory.

Two line formats, detected per line: the Kaggle ``arxiv-metadata-oai-snapshot.json`` records
(``versions``, ``authors_parsed``) and the daily-listing crawl (``listing_dates``, ``authors_list``).
Plain or gzip, a path, a pipe or ``-`` for stdin. Bad lines are rejected with ``file:line`` and a
reason; the rest is kept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console

from paperfeed.ingest import pipeline
from paperfeed.ingest.files import InputFile, UnusableInput, describe_non_json
from paperfeed.ingest.pipeline import Located, Rejected
from paperfeed.ingest.report import ImportReport, ProgressBar
from paperfeed.records import (
    PaperRecord,
    RecordError,
    clean_categories,
    clean_optional,
    clean_text,
    parse_arxiv_id,
    parse_day,
)
from paperfeed.store.db import Database
from paperfeed.store.papers import upsert_arxiv

# Fields the listing crawl does not have (doi...) or only approximates (published = first listing).
_LISTING_INEXACT = frozenset({"doi", "journal_ref", "license", "submitter", "published", "updated"})
_GIVE_UP_AFTER = 20  # leading lines that are not JSON before the file is judged unusable
_EXPECTED = "JSON lines of arXiv records (Kaggle snapshot or listing format)"


def _paper_id(value: Any) -> tuple[str, int | None]:
    if not value:
        raise RecordError("missing id")
    try:
        return parse_arxiv_id(str(value))
    except ValueError as exc:
        raise RecordError(str(exc)) from None


def _title(value: Any) -> str:
    title = clean_text(value)
    if not title:
        raise RecordError("missing title")
    return title


def _split_authors(value: Any) -> list[str]:
    """Kaggle's ``authors`` string: ``A. One, B. Two and C. Three``."""
    text = clean_text(value)
    if not text:
        return []
    names: list[str] = []
    for part in text.split(", "):
        names.extend(p for p in part.split(" and ") if p.strip())
    return [n.strip() for n in names]


def _authors_parsed(value: Any) -> list[str]:
    """Kaggle's ``authors_parsed``: ``[[last, first, suffix, ...], ...]`` -> ``"First Last Suffix"``."""
    if not isinstance(value, list):
        return []
    names = []
    for item in value:
        if not isinstance(item, list) or not item:
            raise RecordError(f"bad authors_parsed entry {item!r}")
        last, first, suffix = (list(item) + ["", ""])[:3]
        name = " ".join(clean_text(x) for x in (first, last, suffix) if clean_text(x))
        if name:
            names.append(name)
    return names


def _authors_list(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise RecordError("authors_list is not a list")
    names = [clean_text(x) for x in value]
    return [n for n in names if n]


def _version_number(value: Any) -> int:
    text = str(value or "").strip().lower().lstrip("v")
    if not text.isdigit() or int(text) < 1:
        raise RecordError(f"bad version {value!r}")
    return int(text)


def parse_kaggle(obj: dict[str, Any]) -> PaperRecord:
    """One line of the Kaggle arXiv snapshot."""
    pid, id_version = _paper_id(obj.get("id"))
    versions = obj.get("versions") or []
    if not isinstance(versions, list):
        raise RecordError("versions is not a list")
    dated = []
    for v in versions:
        if not isinstance(v, dict):
            raise RecordError(f"bad versions entry {v!r}")
        try:
            if not isinstance(v.get("created"), str):
                raise ValueError
            created = parsedate_to_datetime(v["created"]).date()
        except (TypeError, ValueError, IndexError):
            raise RecordError(f"bad date in versions: {v.get('created')!r}") from None
        dated.append((_version_number(v.get("version")), created))
    dated.sort()
    inexact: frozenset[str] = frozenset()
    published: date | None
    if dated:
        version: int | None = dated[-1][0]
        published, updated = dated[0][1], dated[-1][1]
    else:
        version = id_version
        published = parse_day(obj["update_date"], "update_date") if obj.get("update_date") else None
        updated = None
        inexact = frozenset({"published", "updated"})
    authors = _authors_parsed(obj.get("authors_parsed")) or _split_authors(obj.get("authors"))
    return PaperRecord(
        id=pid,
        title=_title(obj.get("title")),
        abstract=clean_text(obj.get("abstract")),
        authors=authors,
        categories=clean_categories(obj.get("categories")),
        version=version,
        comments=clean_optional(obj.get("comments")),
        doi=clean_optional(obj.get("doi")),
        journal_ref=clean_optional(obj.get("journal-ref")),
        license=clean_optional(obj.get("license")),
        submitter=clean_optional(obj.get("submitter")),
        published=published,
        updated=updated,
        inexact=inexact,
    )


def parse_listing(obj: dict[str, Any]) -> PaperRecord:
    """One line of the daily-listing crawl: its first listing date is the arXiv listing date."""
    pid, version = _paper_id(obj.get("id"))
    dates = obj.get("listing_dates")
    if dates is None or dates == []:
        dates = [obj["update_date"]] if obj.get("update_date") else []
    if not isinstance(dates, list):
        raise RecordError("listing_dates is not a list")
    parsed = [parse_day(d, "listing_dates") for d in dates]
    listed = parsed[0] if parsed else None
    authors = _authors_list(obj["authors_list"]) if "authors_list" in obj else _split_authors(obj.get("authors"))
    return PaperRecord(
        id=pid,
        title=_title(obj.get("title")),
        abstract=clean_text(obj.get("abstract")),
        authors=authors,
        categories=clean_categories(obj.get("categories")),
        version=version,
        comments=clean_optional(obj.get("comments")),
        published=listed,
        listed=listed,
        inexact=_LISTING_INEXACT,
    )


def record_format(obj: Any) -> str | None:
    """``"listing"``, ``"kaggle"`` or None (not an arXiv record) for one decoded line."""
    if not isinstance(obj, dict):
        return None
    if "listing_dates" in obj or "authors_list" in obj:
        return "listing"
    if "versions" in obj or "authors_parsed" in obj:
        return "kaggle"
    return None


def parse_line(obj: Any) -> PaperRecord:
    fmt = record_format(obj)
    if fmt == "listing":
        return parse_listing(obj)
    if fmt == "kaggle":
        return parse_kaggle(obj)
    raise RecordError(
        "not an arXiv record: neither the Kaggle snapshot format (versions, authors_parsed) "
        "nor the listing format (listing_dates, authors_list)"
    )


def iter_records(
    inp: InputFile, tick: Callable[[int], None] | None = None
) -> Iterator[Located[PaperRecord] | Rejected]:
    """Parse every line of ``inp``; the first JSON object decides whether the file is usable at all."""
    head = inp.head()
    if head.lstrip()[:1] == b"[":
        raise UnusableInput(f"{inp.name}: a JSON array, expected {_EXPECTED} (one object per line)")
    if head.lstrip()[:1] != b"{":
        raise describe_non_json(inp.name, head, _EXPECTED)
    recognised = False
    leading_bad = 0
    for lineno, line in inp.lines():
        if tick and lineno % 1000 == 0:
            tick(lineno)
        if not line.strip():
            continue
        where = f"{inp.name}:{lineno}"
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            if not recognised:
                leading_bad += 1
                if leading_bad >= _GIVE_UP_AFTER:
                    msg = f"{inp.name}: the first {leading_bad} lines are not JSON; expected {_EXPECTED}"
                    raise UnusableInput(msg) from None
            yield Rejected(where, f"malformed JSON ({exc})")
            continue
        if not recognised:
            if record_format(obj) is None:
                keys = ", ".join(list(obj)[:8]) if isinstance(obj, dict) else type(obj).__name__
                raise UnusableInput(f"{where}: not an arXiv record ({keys}); expected {_EXPECTED}")
            recognised = True
        try:
            yield Located(where, parse_line(obj))
        except RecordError as exc:
            yield Rejected(where, str(exc))


def import_arxiv_file(
    db: Database,
    path: str | Path,
    *,
    batch_size: int = 2000,
    progress: bool = True,
    on_reject: Callable[[str], None] | None = None,
    console: Console | None = None,
) -> ImportReport:
    """Import one arXiv metadata file; raises :class:`UnusableInput` when the file cannot be used at all."""
    report = ImportReport(source=str(path), on_reject=on_reject)
    with InputFile(path) as inp:
        unit = "bytes" if inp.size else "records"
        bar_ = ProgressBar(f"import {Path(inp.name).name}", inp.size, unit=unit, enabled=progress, console=console)
        with bar_ as bar:

            def tick(lineno: int) -> None:
                bar.update(inp.position() if inp.size else lineno, f"{report.read:,} records")

            pipeline.run(db, iter_records(inp, tick), upsert_arxiv, report, batch_size=batch_size)
            tick(report.read)
    return report
