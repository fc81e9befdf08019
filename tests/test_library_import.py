"""Importing into a collection: matching by arXiv id, then DOI, then normalised title; unknown arXiv
ids fetched through the harvester's OAI client (a local replay server); arXiv unreachable listed as
such; every entry reported; garbage and oversized input refused with nothing written."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import func, select

from paperfeed.community.errors import CommunityError
from paperfeed.config import Settings
from paperfeed.library import collections as lib
from paperfeed.library import importer
from paperfeed.store.db import Database
from paperfeed.store.schema import collection_items, collections, papers

from . import factories as f
from .community_util import FakeClock, community, make_user, unlimited
from .oai_server import OAIReplayServer, Reply

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "library"


@pytest.fixture
def oai() -> Iterator[OAIReplayServer]:
    server = OAIReplayServer().start()
    server.route({"verb": "GetRecord", "identifier": "oai:arXiv.org:2604.07429"}, Reply(fixture="get_record.xml"))
    server.route({"verb": "GetRecord"}, Reply(fixture="id_does_not_exist.xml"))
    yield server
    server.stop()


def _counts(db: Database) -> tuple[int, int, int]:
    with db.read() as conn:
        return (conn.scalar(select(func.count()).select_from(collections)) or 0,
                conn.scalar(select(func.count()).select_from(collection_items)) or 0,
                conn.scalar(select(func.count()).select_from(papers)) or 0)  # fmt: skip


def test_matching_order_arxiv_id_then_doi_then_title(any_db: Database, settings: Settings) -> None:
    c = community(settings, any_db, FakeClock(), unlimited())
    alice = make_user(c, "alice")
    attention = f.add_paper(any_db, id="1706.03762", title="Attention Is All You Need")["id"]
    # Same DOI as the Müller entry (in another case), and a paper whose title is that entry's title:
    # the DOI must win over the title.
    by_doi = f.add_paper(any_db, id="2001.00001", title="Something else", doi="10.1000/XYZ-Journal.2020.42")["id"]
    f.add_paper(any_db, id="2001.00002", title="Über die Universalität neuronaler Netze -- eine Étude")
    maldacena = f.add_paper(any_db, id="hep-th/9711200", title="The Large N limit of superconformal field theories")
    by_title = f.add_paper(any_db, id="2401.00003", title="Matching by title: a case study.")["id"]
    report = importer.run_import(c, alice, (FIXTURES / "zotero.bib").read_bytes(), new_name="From Zotero")
    got = {o.ref: (o.status, o.paper_id, o.matched_by) for o in report.outcomes}
    assert got == {
        "vaswani_attention_2017": ("added", attention, "arxiv id"),
        "muller_universelle_2020": ("added", by_doi, "doi"),
        "old_style_1999": ("added", maldacena["id"], "arxiv id"),
        "knuth_art_1997": ("unmatched", None, None),
        "no_fields_at_all": ("unmatched", None, None),
        "broken_entry": ("unreadable", None, None),
        "after_the_broken_one_2024": ("added", by_title, "title"),
    }
    reasons = {o.ref: o.reason for o in report.left_out}
    assert reasons["knuth_art_1997"] == "no paper here with this title"
    assert reasons["no_fields_at_all"] == "the entry has no arXiv id, DOI or title to match"
    assert report.collection.name == "From Zotero" and report.collection.items == 4
    # Importing again adds nothing twice: everything matched is "present".
    again = importer.run_import(c, alice, (FIXTURES / "zotero.bib").read_bytes(), collection=report.collection.slug)
    assert again.count("added") == 0 and again.count("present") == 4
    assert again.as_json()["counts"] == {"added": 0, "present": 4, "unmatched": 2, "not_fetched": 0, "unreadable": 1}


def test_unknown_arxiv_ids_are_fetched_through_the_harvester(db: Database, settings: Settings,
                                                            oai: OAIReplayServer) -> None:  # fmt: skip
    c = community(replace(settings, oai_url=oai.url), db, FakeClock(), unlimited())
    alice = make_user(c, "alice")
    report = importer.run_import(c, alice, "2604.07429\nhttps://arxiv.org/abs/2604.99999v1\n", fmt="ids")
    assert [(o.status, o.paper_id, o.fetched) for o in report.outcomes] == [
        ("added", "2604.07429", True), ("unmatched", "2604.99999", False)]
    assert report.outcomes[1].reason == "arXiv has no paper 2604.99999"
    assert [r.params["identifier"] for r in oai.requests] == ["oai:arXiv.org:2604.07429", "oai:arXiv.org:2604.99999"]
    with db.read() as conn:
        assert conn.scalar(select(papers.c.title).where(papers.c.id == "2604.07429")).startswith("GameWorld")
    assert [i.paper_id for i in lib.items(c, lib.owned(c, alice, "saved"), limit=10)] == ["2604.07429"]


def test_arxiv_unreachable_is_listed_not_dropped(db: Database, settings: Settings) -> None:
    c = community(replace(settings, oai_url="http://127.0.0.1:9/oai"), db, FakeClock(), unlimited())
    alice = make_user(c, "alice")
    known = f.add_paper(db)["id"]
    report = importer.run_import(c, alice, f"{known}\n2604.07429\nhep-th/9901001\n")
    assert [(o.ref, o.status, o.reason) for o in report.outcomes] == [
        ("line 1", "added", None),
        ("line 2", "not_fetched", "not fetched: arXiv unreachable"),
        ("line 3", "not_fetched", "not fetched: arXiv unreachable"),
    ]


def test_fetches_per_import_are_capped(db: Database, settings: Settings, oai: OAIReplayServer) -> None:
    c = community(replace(settings, oai_url=oai.url), db, FakeClock(), unlimited())
    alice = make_user(c, "alice")
    report = importer.run_import(c, alice, "2604.07429\n2604.00001\n2604.00002\n",
                                 limits=replace(lib.LIMITS, import_fetches=1))  # fmt: skip
    assert [o.status for o in report.outcomes] == ["added", "not_fetched", "not_fetched"]
    assert "import the file again" in (report.outcomes[1].reason or "")
    assert len(oai.requests) == 1


@pytest.mark.parametrize(
    ("data", "status", "message"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), 400, "binary file"),
        (b"   \n\n", 400, "empty"),
        (b"Dear colleague, here are the papers I mentioned.", 400, "not a BibTeX, RIS or CSL-JSON file"),
        (b"[{]", 400, "not valid JSON"),
        (b"x" * 2_001, 413, "at most 2,000"),
        ("\n".join(["2405.15738"] * 11).encode(), 413, "at most 10"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_written(db: Database, settings: Settings, data: bytes, status: int,
                                                     message: str) -> None:  # fmt: skip
    c = community(settings, db, FakeClock(), unlimited())
    alice = make_user(c, "alice")
    lib.default_collection(c, alice)
    before = _counts(db)
    tight = replace(lib.LIMITS, import_bytes=2_000, import_entries=10)
    with pytest.raises(CommunityError, match=message) as err:
        importer.run_import(c, alice, data, new_name="Should not exist", limits=tight)
    assert err.value.status == status
    assert _counts(db) == before


def test_a_full_collection_refuses_the_whole_import(db: Database, settings: Settings) -> None:
    c = community(settings, db, FakeClock(), unlimited())
    alice = make_user(c, "alice")
    ids = [f.add_paper(db)["id"] for _ in range(3)]
    with pytest.raises(CommunityError, match="more than 2 papers") as err:
        importer.run_import(c, alice, "\n".join(ids), new_name="Too small",
                            limits=replace(lib.LIMITS, items_per_collection=2))  # fmt: skip
    assert err.value.status == 409
    assert _counts(db)[:2] == (0, 0)  # neither the new collection nor any item
