"""``paperfeed harvest arxiv``: incremental OAI-PMH harvesting of arXiv metadata, and single-record
lookups (:func:`fetch_record`, used when a user submits a paper by id or URL).

ListRecords with ``metadataPrefix=arXiv``, following resumption tokens, one transaction per page
(records + resume point together). Polite: ``settings.harvest_delay`` between requests, honours
``503 Retry-After``, bounded exponential backoff on 5xx and timeouts. The resume point lives in
``ingest_state`` (source ``oai:arxiv:<set>``): ``cursor`` is the last datestamp of a finished
harvest (the next run starts there), ``info.token`` the resumption token of an unfinished one.
"""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from rich.console import Console
from sqlalchemy import Connection

from paperfeed import __version__
from paperfeed.config import Settings
from paperfeed.ingest.pipeline import Located, finish, write_batch
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
from paperfeed.store.papers import get_ingest_state, set_ingest_state, upsert_arxiv

OAI = "{http://www.openarchives.org/OAI/2.0/}"
ARXIV = "{http://arxiv.org/OAI/arXiv/}"
MAX_WAIT = 300.0  # never sleep longer than this for one retry, whatever Retry-After says
# The arXiv format has no submitter and no listing date; ``listed`` merges outside the hash anyway.
_OAI_INEXACT = frozenset({"submitter"})
_SET_SPEC = re.compile(r"[A-Za-z0-9][A-Za-z0-9:._-]{0,47}")


class HarvestError(Exception):
    """The harvest cannot go on (HTTP failure after retries, an OAI error, a response that is not OAI-PMH)."""


class Interrupted(HarvestError):
    """The caller asked the harvest to stop (``keep_going`` / ``guard``); committed pages are kept."""


class OAIError(HarvestError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"OAI-PMH error {code}: {message}" if message else f"OAI-PMH error {code}")
        self.code = code


class RecordNotFound(LookupError):
    """arXiv has no such record (or it was withdrawn from OAI-PMH)."""


# --- parsing -----------------------------------------------------------------------------------


def _text(parent: ET.Element, tag: str) -> str | None:
    el = parent.find(ARXIV + tag)
    return el.text if el is not None and el.text is not None else None


def parse_arxiv_metadata(meta: ET.Element) -> PaperRecord:
    """An ``<arXiv>`` metadata element (namespace ``http://arxiv.org/OAI/arXiv/``) as a record."""
    raw_id = _text(meta, "id")
    if not raw_id:
        raise RecordError("missing <id>")
    try:
        pid, version = parse_arxiv_id(raw_id)
    except ValueError as exc:
        raise RecordError(str(exc)) from None
    title = clean_text(_text(meta, "title"))
    if not title:
        raise RecordError("missing <title>")
    created = _text(meta, "created")
    published = parse_day(created, "<created>") if created else None
    updated_text = _text(meta, "updated")
    updated = parse_day(updated_text, "<updated>") if updated_text else published
    authors = []
    for a in meta.iterfind(f"{ARXIV}authors/{ARXIV}author"):
        parts = (clean_text(_text(a, "forenames")), clean_text(_text(a, "keyname")), clean_text(_text(a, "suffix")))
        name = " ".join(p for p in parts if p)
        if name:
            authors.append(name)
    # Without <updated> there is exactly one version; with it the number is unknown (at least 2).
    if version is None and not updated_text:
        version = 1
    return PaperRecord(
        id=pid,
        title=title,
        abstract=clean_text(_text(meta, "abstract")),
        authors=authors,
        categories=clean_categories(_text(meta, "categories")),
        version=version,
        comments=clean_optional(_text(meta, "comments")),
        doi=clean_optional(_text(meta, "doi")),
        journal_ref=clean_optional(_text(meta, "journal-ref")),
        license=clean_optional(_text(meta, "license")),
        published=published,
        updated=updated,
        inexact=_OAI_INEXACT,
    )


@dataclass
class Page:
    """One parsed OAI-PMH response."""

    records: list[Located[PaperRecord]] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    deleted: int = 0
    token: str | None = None
    complete_size: int | None = None
    max_datestamp: str | None = None


def _root(xml: bytes) -> ET.Element:
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise HarvestError(f"the response is not XML ({exc}): {xml[:120]!r}") from None
    if root.tag != OAI + "OAI-PMH":
        raise HarvestError(f"the response is not OAI-PMH (root element {root.tag})")
    err = root.find(OAI + "error")
    if err is not None:
        raise OAIError(err.get("code", "unknown"), clean_text(err.text))
    return root


def parse_records(container: ET.Element) -> Page:
    page = Page()
    for rec in container.iterfind(OAI + "record"):
        header = rec.find(OAI + "header")
        ident = (header.findtext(OAI + "identifier") if header is not None else None) or "<no identifier>"
        stamp = header.findtext(OAI + "datestamp") if header is not None else None
        if stamp and (page.max_datestamp is None or stamp > page.max_datestamp):
            page.max_datestamp = stamp.strip()
        if header is not None and header.get("status") == "deleted":
            page.deleted += 1
            continue
        meta = rec.find(f"{OAI}metadata/{ARXIV}arXiv")
        try:
            if meta is None:
                raise RecordError("no <metadata><arXiv> element (is metadataPrefix=arXiv?)")
            page.records.append(Located(ident, parse_arxiv_metadata(meta)))
        except RecordError as exc:
            page.rejected.append((ident, str(exc)))
    token_el = container.find(OAI + "resumptionToken")
    if token_el is not None:
        page.token = (token_el.text or "").strip() or None
        size = token_el.get("completeListSize")
        page.complete_size = int(size) if size and size.isdigit() else None
    return page


def parse_list_records(xml: bytes) -> Page:
    """A ListRecords response; ``noRecordsMatch`` is an empty page, other OAI errors raise OAIError."""
    try:
        root = _root(xml)
    except OAIError as exc:
        if exc.code == "noRecordsMatch":
            return Page()
        raise
    container = root.find(OAI + "ListRecords")
    if container is None:
        raise HarvestError("the response has no <ListRecords> element")
    return parse_records(container)


# --- HTTP --------------------------------------------------------------------------------------


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class OAIClient:
    """GET requests to one OAI-PMH endpoint with politeness delay, Retry-After and bounded backoff."""

    def __init__(
        self,
        url: str,
        *,
        delay: float = 3.0,
        max_retries: int = 5,
        backoff: float = 2.0,
        timeout: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        on_wait: Callable[[str], None] | None = None,
    ) -> None:
        self.url = url
        self.delay = delay
        self.max_retries = max_retries
        self.backoff = backoff
        self.sleep = sleep
        self.on_wait = on_wait
        self._last: float | None = None
        agent = f"paperfeed/{__version__} (OAI-PMH harvester)"
        self._http = httpx.Client(timeout=timeout, follow_redirects=True, headers={"User-Agent": agent})

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> OAIClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _wait(self, seconds: float, why: str) -> None:
        if seconds > 0:
            if self.on_wait and why:
                self.on_wait(f"{why}; waiting {seconds:.0f} s")
            self.sleep(min(seconds, MAX_WAIT))

    def get(self, params: dict[str, str]) -> bytes:
        if self._last is not None:
            self._wait(self._last + self.delay - time.monotonic(), "")
        problem = ""
        for attempt in range(self.max_retries + 1):
            try:
                resp = self._http.get(self.url, params=params)
            except httpx.TimeoutException:
                problem, wait = f"timed out after {self._http.timeout.read} s", self.backoff * 2**attempt
            except httpx.TransportError as exc:
                problem, wait = f"cannot reach {self.url} ({exc})", self.backoff * 2**attempt
            else:
                self._last = time.monotonic()
                if resp.status_code == 503:
                    problem = "HTTP 503 (busy)"
                    wait = _retry_after(resp.headers.get("Retry-After")) or self.backoff * 2**attempt
                elif resp.status_code >= 500:
                    problem, wait = f"HTTP {resp.status_code}", self.backoff * 2**attempt
                elif resp.status_code >= 400:
                    raise HarvestError(f"HTTP {resp.status_code} from {resp.url}: {resp.text[:200].strip()}")
                else:
                    return resp.content
            self._last = time.monotonic()
            if attempt == self.max_retries:
                break
            self._wait(wait, f"{self.url}: {problem}, retry {attempt + 1} of {self.max_retries}")
        raise HarvestError(f"{self.url}: {problem}; gave up after {self.max_retries + 1} attempts")


# --- harvesting --------------------------------------------------------------------------------


def state_source(set_spec: str) -> str:
    return f"oai:arxiv:{set_spec}"


def harvest(
    db: Database,
    settings: Settings,
    set_spec: str,
    *,
    from_date: str | None = None,
    until: str | None = None,
    url: str | None = None,
    progress: bool = True,
    on_reject: Callable[[str], None] | None = None,
    on_note: Callable[[str], None] | None = None,
    client: OAIClient | None = None,
    console: Console | None = None,
    keep_going: Callable[[], bool] | None = None,
    guard: Callable[[Connection], bool] | None = None,
) -> ImportReport:
    """Harvest one set incrementally. Never raises for harvest problems: ``report.error`` says what
    stopped the run (exit code 2); every page committed before it is kept, with its resume point.

    For the pipeline's leader: ``keep_going()`` is asked before every request, and ``guard(conn)``
    inside every page's transaction (a fencing check: False rolls the page back); either saying no
    ends the run with ``report.error`` starting with "interrupted"."""
    report = ImportReport(source=f"OAI-PMH set {set_spec}", on_reject=on_reject)
    note = on_note or (lambda _m: None)
    if not _SET_SPEC.fullmatch(set_spec):
        report.error = f"not an OAI-PMH set name: {set_spec[:60]!r} (e.g. cs, math, physics:hep-th)"
        return report.finish()
    for value, name in ((from_date, "--from"), (until, "--until")):
        if value is not None:
            parse_day(value, name)  # a RecordError (ValueError) the CLI reports as unusable input
    source = state_source(set_spec)
    with db.read() as conn:
        state = get_ingest_state(conn, source)
    info: dict[str, Any] = dict((state or {}).get("info") or {})
    cursor: str | None = (state or {}).get("cursor")
    token: str | None = None
    max_stamp: str | None = None
    if from_date is None and until is None and info.get("token"):
        token, from_date, until = info["token"], info.get("from"), info.get("until")
        max_stamp = info.get("max_datestamp")
        note(f"resuming the unfinished harvest of set {set_spec} (from {from_date or 'the start'})")
    elif from_date is None:
        from_date = cursor
    resumed = token is not None
    own_client = client is None
    client = client or OAIClient(url or settings.oai_url, delay=settings.harvest_delay, on_wait=note)
    base = {"verb": "ListRecords", "metadataPrefix": "arXiv", "set": set_spec}
    if from_date:
        base["from"] = from_date
    if until:
        base["until"] = until
    try:
        with ProgressBar(f"harvest {set_spec}", None, unit="records", enabled=progress, console=console) as bar:
            while True:
                if keep_going is not None and not keep_going():
                    raise Interrupted("interrupted: asked to stop")
                params = {"verb": "ListRecords", "resumptionToken": token} if token else base
                try:
                    page = parse_list_records(client.get(params))
                except OAIError as exc:
                    if exc.code == "badResumptionToken" and resumed:
                        # The stored token expired while we were away: start over from the cursor.
                        note(f"the saved resumption token was refused; restarting from {cursor or 'the start'}")
                        token, resumed, max_stamp = None, False, None
                        base.pop("from", None)
                        if cursor:
                            base["from"] = cursor
                        continue
                    raise
                resumed = False
                if page.max_datestamp and (max_stamp is None or page.max_datestamp > max_stamp):
                    max_stamp = page.max_datestamp
                report.read += len(page.records) + len(page.rejected) + page.deleted
                report.deleted += page.deleted
                for where, reason in page.rejected:
                    report.reject(where, reason)
                token = page.token
                done = token is None
                new_info = {
                    "token": token,
                    "from": base.get("from"),
                    "until": base.get("until"),
                    "max_datestamp": max_stamp,
                }
                new_cursor = max(filter(None, [cursor, max_stamp]), default=None) if done else cursor

                def save(conn: Connection, c: str | None = new_cursor, i: dict[str, Any] = new_info) -> None:
                    if guard is not None and not guard(conn):
                        raise Interrupted("interrupted: no longer allowed to write (lease lost)")
                    set_ingest_state(conn, source, c, i)

                write_batch(db, page.records, upsert_arxiv, report, after=save)
                bar.update(report.read, f"{report.changed:,} new or changed", total=page.complete_size)
                if done:
                    break
    except HarvestError as exc:
        report.error = str(exc)
    finally:
        if own_client:
            client.close()
    return finish(db, report)


def fetch_record(settings: Settings, arxiv_id: str, *, client: OAIClient | None = None) -> PaperRecord:
    """One paper from arXiv's OAI-PMH ``GetRecord`` (not stored; pass it to ``store.papers.upsert_arxiv``).

    Raises ``ValueError`` for an invalid id, :class:`RecordNotFound` when arXiv has no such paper,
    :class:`RecordError` for an unusable record and :class:`HarvestError` when arXiv cannot be reached.
    """
    pid, _version = parse_arxiv_id(arxiv_id)
    own = client is None
    # Called while a user waits (the submit form): one retry and a short timeout, not a harvest's patience.
    client = client or OAIClient(settings.oai_url, delay=0.0, max_retries=1, backoff=1.0, timeout=15.0)
    try:
        xml = client.get({"verb": "GetRecord", "identifier": f"oai:arXiv.org:{pid}", "metadataPrefix": "arXiv"})
    finally:
        if own:
            client.close()
    try:
        root = _root(xml)
    except OAIError as exc:
        if exc.code == "idDoesNotExist":
            raise RecordNotFound(f"arXiv has no paper {pid}") from None
        raise
    container = root.find(OAI + "GetRecord")
    if container is None:
        raise HarvestError("the response has no <GetRecord> element")
    page = parse_records(container)
    if page.rejected:
        raise RecordError(page.rejected[0][1])
    if not page.records:
        raise RecordNotFound(f"arXiv paper {pid} was withdrawn (deleted from OAI-PMH)")
    return page.records[0].item
