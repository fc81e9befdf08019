"""The OAI-PMH harvester against a local replay server: pages and resumption tokens, deleted and
malformed records, 503 + Retry-After, backoff, OAI errors, resume points, and GetRecord."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date

import pytest

from paperfeed.config import Settings
from paperfeed.ingest.oai import HarvestError, OAIClient, RecordNotFound, fetch_record, harvest, state_source
from paperfeed.ingest.report import ImportReport
from paperfeed.store.db import Database
from paperfeed.store.papers import get_ingest_state, get_paper

from .ingest_helpers import cli, count, snapshot
from .oai_server import OAIReplayServer, Reply
from .servers import free_port

FIRST = {"verb": "ListRecords", "set": "cs"}
NEXT = {"verb": "ListRecords", "resumptionToken": "6961473|1001"}
PAGE1, PAGE2 = Reply(fixture="list_page1.xml"), Reply(fixture="list_page2.xml")


@pytest.fixture
def oai() -> Iterator[OAIReplayServer]:
    server = OAIReplayServer().start()
    yield server
    server.stop()


def _client(server: OAIReplayServer, **kw) -> OAIClient:
    return OAIClient(server.url, **{"delay": 0.0, "backoff": 0.01, "max_retries": 2, **kw})


def _harvest(db: Database, settings: Settings, server: OAIReplayServer, **kw) -> ImportReport:
    client = kw.pop("client", None) or _client(server)
    with client:
        return harvest(db, settings, "cs", url=server.url, progress=False, client=client, **kw)


def _state(db: Database) -> dict:
    with db.read() as conn:
        return get_ingest_state(conn, state_source("cs")) or {}


def test_two_pages_503_deleted_and_malformed(any_db: Database, settings: Settings, oai: OAIReplayServer) -> None:
    oai.route(FIRST, Reply(503, body=b"Retry later", headers={"Retry-After": "1"}), PAGE1)
    oai.route(NEXT, PAGE2)
    res = cli(settings, any_db, "harvest", "arxiv", "--set", "cs", "--from", "2026-04-10", "--url", oai.url)
    assert res.exit_code == 3, res.output  # one malformed record was rejected, the rest kept
    assert "oai:arXiv.org:2603.27070: rejected: bad date in <created>: '2026-04-31'" in res.stderr
    assert "HTTP 503 (busy), retry 1 of 5; waiting 1 s" in res.stderr
    assert "read 6, inserted 4, updated 0, unchanged 0, rejected 1, deleted 1 (skipped)" in res.stdout
    # The 503 was answered by waiting Retry-After seconds before asking again.
    first, second, third = oai.requests
    assert first.params == {"verb": "ListRecords", "metadataPrefix": "arXiv", "set": "cs", "from": "2026-04-10"}
    assert second.params == first.params and second.at - first.at >= 1.0
    assert third.params == NEXT
    assert count(any_db, "papers") == 4
    with any_db.read() as conn:
        old = get_paper(conn, "0704.0002")
        new = get_paper(conn, "2604.07429")
        assert get_paper(conn, "2604.05512") is None  # the deleted record
    assert old and (old["published"], old["updated"], old["version"]) == (date(2007, 3, 31), date(2008, 12, 13), 2)
    assert old["authors"] == ["Ileana Streinu", "Louis Theran"] and old["categories"] == "math.CO cs.CG"
    assert old["license"] == "http://arxiv.org/licenses/nonexclusive-distrib/1.0/"
    assert old["comments"] == "To appear in Graphs and Combinatorics"
    assert old["abstract"].startswith("We describe a new algorithm, the $(k,\\ell)$-pebble")
    assert "\n" not in old["abstract"]
    assert new and new["title"].startswith("GameWorld: Towards Standardized") and new["version"] == 1
    assert new["published"] == date(2026, 4, 8) and new["submitter"] is None
    st = _state(any_db)
    assert st["cursor"] == "2026-04-15" and st["info"]["token"] is None


def test_next_run_continues_from_the_last_datestamp(db: Database, settings: Settings, oai: OAIReplayServer) -> None:
    oai.route(FIRST | {"from": "2026-04-15"}, Reply(fixture="no_records_match.xml"))
    oai.route(FIRST, PAGE1)
    oai.route(NEXT, PAGE2)
    r = _harvest(db, settings, oai, from_date="2026-04-10")
    assert (r.inserted, r.rejected, r.deleted) == (4, 1, 1)
    before = snapshot(db)
    r = _harvest(db, settings, oai)  # no --from: starts at the saved datestamp
    assert oai.requests[-1].params.get("from") == "2026-04-15"
    assert (r.read, r.exit_code) == (0, 0)  # noRecordsMatch is not an error
    assert _state(db)["cursor"] == "2026-04-15"
    r = _harvest(db, settings, oai, from_date="2026-04-10")  # the same pages again change nothing
    assert (r.inserted, r.updated, r.unchanged) == (0, 0, 4)
    assert snapshot(db)["papers"] == before["papers"]


def test_interrupted_harvest_resumes_with_its_token(any_db: Database, settings: Settings, oai: OAIReplayServer) -> None:
    oai.route(FIRST, PAGE1)
    oai.route(NEXT, Reply(500, body=b"Internal Server Error"), Reply(500), Reply(500), PAGE2)
    r = _harvest(any_db, settings, oai, from_date="2026-04-10")
    assert r.exit_code == 2 and r.error and "HTTP 500; gave up after 3 attempts" in r.error
    assert count(any_db, "papers") == 2  # page 1 is kept
    st = _state(any_db)
    assert st["cursor"] is None and st["info"]["token"] == "6961473|1001"
    assert st["info"]["from"] == "2026-04-10" and st["info"]["max_datestamp"] == "2026-04-14"

    n = len(oai.requests)
    r = _harvest(any_db, settings, oai)
    assert r.exit_code == 3 and (r.inserted, r.rejected) == (2, 1)
    assert [q.params for q in oai.requests[n:]] == [NEXT]  # straight to the saved token
    st = _state(any_db)
    assert st["cursor"] == "2026-04-15" and st["info"]["token"] is None
    assert count(any_db, "papers") == 4


def test_bad_resumption_token(db: Database, settings: Settings, oai: OAIReplayServer) -> None:
    oai.route(FIRST, PAGE1)
    oai.route(NEXT, Reply(fixture="bad_resumption_token.xml"))
    res = cli(settings, db, "harvest", "arxiv", "--from", "2026-04-10", "--url", oai.url, "--quiet")
    assert res.exit_code == 2
    assert "OAI-PMH error badResumptionToken: Invalid or expired resumption token" in res.stderr
    assert "read 3, inserted 2" in res.stdout and count(db, "papers") == 2
    # Next run: the saved token is refused again (expired), so the harvest restarts from the cursor.
    oai.routes.clear()
    oai.route(FIRST, PAGE1)
    oai.route(NEXT, Reply(fixture="bad_resumption_token.xml"), PAGE2)
    r = _harvest(db, settings, oai)
    assert r.error is None and (r.inserted, r.unchanged) == (2, 2)
    assert _state(db)["cursor"] == "2026-04-15"


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (Reply(fixture="bad_argument.xml"), "OAI-PMH error badArgument: Illegal argument"),
        (Reply(body=b'<?xml version="1.0"?><OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/">'
                    b'<error code="cannotDisseminateFormat">no</error></OAI-PMH>'), "error cannotDisseminateFormat"),
        (Reply(body=b"<html><body>Maintenance</body></html>"), "the response is not OAI-PMH"),
        (Reply(body=b"not xml at all"), "the response is not XML"),
        (Reply(404, body=b"Not Found"), "HTTP 404 from"),
    ],
)  # fmt: skip
def test_errors_exit_2(db: Database, settings: Settings, oai: OAIReplayServer, reply: Reply, message: str) -> None:
    oai.route(FIRST, reply)
    res = cli(settings, db, "harvest", "arxiv", "--set", "cs", "--url", oai.url, "--quiet")
    assert res.exit_code == 2, res.output
    assert message in res.stderr and "Traceback" not in res.output
    assert count(db, "papers") == 0


def test_retries_with_backoff_then_succeeds(db: Database, settings: Settings, oai: OAIReplayServer) -> None:
    oai.route(FIRST, Reply(502), Reply(503), PAGE1)  # 503 without Retry-After: backoff
    oai.route(NEXT, PAGE2)
    waits: list[float] = []
    client = _client(oai, sleep=waits.append)
    r = _harvest(db, settings, oai, client=client, from_date="2026-04-10")
    assert r.error is None and r.inserted == 4
    assert waits[:2] == [0.01, 0.02]  # exponential
    assert len(oai.requests) == 4


def test_unreachable_server_gives_up(db: Database, settings: Settings) -> None:
    port = free_port()  # nothing listens there
    url = f"http://127.0.0.1:{port}/oai"
    waits: list[float] = []
    client = OAIClient(url, delay=0.0, backoff=0.01, max_retries=2, sleep=waits.append)
    r = harvest(db, settings, "cs", progress=False, client=client)
    assert r.exit_code == 2 and r.error and "cannot reach" in r.error and "gave up after 3 attempts" in r.error
    assert waits == [0.01, 0.02]


def test_politeness_delay_between_requests(db: Database, settings: Settings, oai: OAIReplayServer) -> None:
    oai.route(FIRST, PAGE1)
    oai.route(NEXT, PAGE2)
    _harvest(db, settings, oai, client=_client(oai, delay=0.4), from_date="2026-04-10")
    a, b = oai.requests
    assert b.at - a.at >= 0.4


def test_harvest_delay_comes_from_settings(db: Database, settings: Settings, oai: OAIReplayServer) -> None:
    oai.route(FIRST, PAGE1)
    oai.route(NEXT, PAGE2)
    r = harvest(db, replace(settings, harvest_delay=0.3, oai_url=oai.url), "cs", from_date="2026-04-10", progress=False)
    assert r.inserted == 4
    a, b = oai.requests
    assert b.at - a.at >= 0.3


def test_fetch_record(settings: Settings, oai: OAIReplayServer) -> None:
    oai.route({"verb": "GetRecord", "identifier": "oai:arXiv.org:2604.07429"}, Reply(fixture="get_record.xml"))
    oai.route({"verb": "GetRecord"}, Reply(fixture="id_does_not_exist.xml"))
    s = replace(settings, oai_url=oai.url)
    rec = fetch_record(s, "https://arxiv.org/abs/2604.07429v1")
    assert rec.id == "2604.07429" and rec.title.startswith("GameWorld") and rec.version == 1
    assert rec.primary_category and rec.authors and rec.published == date(2026, 4, 8)
    assert oai.requests[0].params["metadataPrefix"] == "arXiv"
    with pytest.raises(RecordNotFound, match="arXiv has no paper 2604.99999"):
        fetch_record(s, "2604.99999")
    n = len(oai.requests)
    with pytest.raises(ValueError, match="not a valid arXiv id"):
        fetch_record(s, "2604.9")
    assert len(oai.requests) == n  # invalid ids never reach the network


def test_fetch_record_unreachable(settings: Settings) -> None:
    port = free_port()
    client = OAIClient(f"http://127.0.0.1:{port}/oai", delay=0.0, backoff=0.01, max_retries=1)
    with pytest.raises(HarvestError, match="cannot reach"):
        fetch_record(settings, "2604.07429", client=client)


def test_bad_options(db: Database, settings: Settings) -> None:
    res = cli(settings, db, "harvest", "arxiv", "--from", "2026-13-01")
    assert res.exit_code == 2 and "--from '2026-13-01' is not a date" in res.stderr
    res = cli(settings, db, "harvest", "arxiv", "--set", "cs; DROP TABLE papers", "--url", "http://127.0.0.1:9/")
    assert res.exit_code == 2 and "not an OAI-PMH set name" in res.stderr
