"""``paperfeed import arxiv``: Kaggle snapshot and listing formats, merge rules, idempotence, bad input."""

from __future__ import annotations

import gzip
import shutil
from datetime import date
from pathlib import Path

import orjson
import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from paperfeed.config import Settings
from paperfeed.ingest.arxiv_file import import_arxiv_file, parse_kaggle
from paperfeed.ingest.files import UnusableInput
from paperfeed.ingest.pipeline import Located, write_batch
from paperfeed.ingest.report import ImportReport
from paperfeed.records import PaperRecord
from paperfeed.store.db import Database
from paperfeed.store.papers import UpsertCounts, get_paper, upsert_arxiv
from paperfeed.store.schema import papers

from .ingest_helpers import KAGGLE, LISTINGS, cli, count, lines, snapshot, write_lines
from .servers import free_port


def _kaggle(n: int) -> dict:
    return orjson.loads(lines(KAGGLE)[n])


def _listing(n: int) -> dict:
    return orjson.loads(lines(LISTINGS)[n])


def _import(db: Database, path: Path | str, **kw) -> ImportReport:
    return import_arxiv_file(db, path, progress=False, **kw)


def test_kaggle_fixture(any_db: Database) -> None:
    r = _import(any_db, KAGGLE)
    assert (r.read, r.inserted, r.updated, r.unchanged, r.rejected) == (20, 20, 0, 0, 0)
    assert r.exit_code == 0
    with any_db.read() as conn:
        p = get_paper(conn, "0704.0001")
    assert p is not None
    assert p["title"] == "Calculation of prompt diphoton production cross sections at Tevatron and LHC energies"
    assert "\n" not in p["abstract"] and p["abstract"].startswith("A fully differential calculation")
    assert p["authors"] == ["C. Balázs", "E. L. Berger", "P. M. Nadolsky", "C. -P. Yuan"]
    assert (p["version"], p["published"], p["updated"]) == (2, date(2007, 4, 2), date(2007, 7, 24))
    assert (p["doi"], p["journal_ref"], p["submitter"]) == (
        "10.1103/PhysRevD.76.013009",
        "Phys.Rev.D76:013009,2007",
        "Pavel Nadolsky",
    )
    assert (p["categories"], p["primary_category"], p["listed"]) == ("hep-ph", "hep-ph", None)
    assert p["arxiv_hash"] and p["hf_hash"] is None and p["imported_upvotes"] == 0
    with any_db.read() as conn:
        q = get_paper(conn, "0704.0002")
    assert q and q["categories"] == "math.CO cs.CG" and q["primary_category"] == "math.CO"
    assert q["license"] == "http://arxiv.org/licenses/nonexclusive-distrib/1.0/"


def test_listing_fixture_and_idempotence(any_db: Database) -> None:
    r = _import(any_db, LISTINGS)
    assert (r.read, r.inserted, r.rejected) == (150, 150, 0)
    first = _listing(0)
    with any_db.read() as conn:
        p = get_paper(conn, first["id"])
    assert p is not None
    listed = date.fromisoformat(first["listing_dates"][0])
    assert p["listed"] == listed and p["published"] == listed and p["updated"] is None
    assert p["authors"] == first["authors_list"] and p["version"] == 1
    assert p["doi"] is None and p["submitter"] is None
    multi = next(orjson.loads(x) for x in lines(LISTINGS) if len(orjson.loads(x)["listing_dates"]) > 1)
    with any_db.read() as conn:
        m = get_paper(conn, multi["id"])
    assert m and m["listed"] == date.fromisoformat(multi["listing_dates"][0])

    before = snapshot(any_db)
    with any_db.read() as conn:
        stamp = get_paper(conn, first["id"])["modified_at"]  # type: ignore[index]
    again = _import(any_db, LISTINGS)
    assert (again.inserted, again.updated, again.unchanged, again.changed) == (0, 0, 150, 0)
    assert snapshot(any_db) == before
    with any_db.read() as conn:
        assert get_paper(conn, first["id"])["modified_at"] == stamp  # type: ignore[index]


def test_version_update_in_place_and_older_never_overwrites(any_db: Database, tmp_path: Path) -> None:
    v2 = _kaggle(0)  # 0704.0001 with versions v1, v2
    v1 = dict(v2, versions=v2["versions"][:1], title="An early title", comments="first draft", doi=None)
    _import(any_db, write_lines(tmp_path / "v1.jsonl", [v1]))
    with any_db.read() as conn:
        p1 = get_paper(conn, "0704.0001")
    assert p1 and (p1["version"], p1["title"], p1["updated"]) == (1, "An early title", date(2007, 4, 2))

    r = _import(any_db, write_lines(tmp_path / "v2.jsonl", [v2]))
    assert (r.inserted, r.updated) == (0, 1)
    with any_db.read() as conn:
        p2 = get_paper(conn, "0704.0001")
    assert p2 and p2["version"] == 2 and p2["title"].startswith("Calculation of prompt")
    assert p2["doi"] == "10.1103/PhysRevD.76.013009" and p2["updated"] == date(2007, 7, 24)
    assert p2["content_hash"] != p1["content_hash"] and p2["modified_at"] > p1["modified_at"]
    assert p2["created_at"] == p1["created_at"]
    assert count(any_db, "papers") == 1

    r = _import(any_db, tmp_path / "v1.jsonl")  # the old version again: nothing changes
    assert (r.updated, r.unchanged) == (0, 1)
    with any_db.read() as conn:
        assert get_paper(conn, "0704.0001") == p2


def test_newest_version_wins_within_one_batch(db: Database, tmp_path: Path) -> None:
    v2 = _kaggle(0)
    v1 = dict(v2, versions=v2["versions"][:1], title="An early title")
    r = _import(db, write_lines(tmp_path / "mix.jsonl", [v2, v1, v2]))
    assert (r.inserted, r.updated, r.unchanged) == (1, 0, 2)
    with db.read() as conn:
        assert get_paper(conn, "0704.0001")["version"] == 2  # type: ignore[index]
    db2_path = tmp_path / "rev.jsonl"
    write_lines(db2_path, [v1, v2])
    with db.write() as conn:
        conn.execute(papers.delete())
    r = _import(db, db2_path)
    assert (r.inserted, r.updated) == (1, 1)
    with db.read() as conn:
        assert get_paper(conn, "0704.0001")["title"].startswith("Calculation")  # type: ignore[index]


def test_listed_keeps_earliest_date(any_db: Database, tmp_path: Path) -> None:
    row = _listing(5)
    mid = dict(row, listing_dates=["2026-04-10"])
    early = dict(row, listing_dates=["2026-04-08", "2026-04-10"])
    late = dict(row, listing_dates=["2026-04-12"])
    for rows, expected in (([mid], "2026-04-10"), ([early], "2026-04-08"), ([late], "2026-04-08")):
        _import(any_db, write_lines(tmp_path / "x.jsonl", rows))
        with any_db.read() as conn:
            assert get_paper(conn, row["id"])["listed"] == date.fromisoformat(expected)  # type: ignore[index]


def test_listing_does_not_erase_kaggle_fields(any_db: Database, tmp_path: Path) -> None:
    """The listing crawl has no DOI/journal/submitter/versions: it must not blank what Kaggle gave."""
    k = _kaggle(0)  # v2, with a DOI
    listing = {
        "id": k["id"],
        "title": k["title"],
        "abstract": k["abstract"],
        "authors": k["authors"],
        "authors_list": ["C. Balázs", "E. L. Berger", "P. M. Nadolsky", "C. -P. Yuan"],
        "categories": k["categories"],
        "comments": k["comments"],
        "update_date": "2007-04-03",
        "listing_dates": ["2007-04-03"],
    }
    _import(any_db, write_lines(tmp_path / "k.jsonl", [k]))
    r = _import(any_db, write_lines(tmp_path / "l.jsonl", [listing]))
    assert r.updated == 1  # the listing date is new information
    with any_db.read() as conn:
        p = get_paper(conn, k["id"])
    assert p and p["doi"] == "10.1103/PhysRevD.76.013009" and p["version"] == 2
    assert p["published"] == date(2007, 4, 2) and p["listed"] == date(2007, 4, 3)
    assert _import(any_db, tmp_path / "l.jsonl").unchanged == 1

    # At version 1 the listing may refresh the text, but still keeps the DOI it does not carry.
    k1 = dict(_kaggle(3))  # 0704.0004, one version, no DOI
    k1["doi"] = "10.9999/example"
    _import(any_db, write_lines(tmp_path / "k1.jsonl", [k1]))
    lst = dict(listing, id=k1["id"], title="A retitled paper", listing_dates=["2007-04-05"])
    assert _import(any_db, write_lines(tmp_path / "l1.jsonl", [lst])).updated == 1
    with any_db.read() as conn:
        p = get_paper(conn, k1["id"])
    assert p and p["title"] == "A retitled paper" and p["doi"] == "10.9999/example"
    assert p["published"] == date(2007, 3, 31)


def test_bad_lines_are_rejected_with_file_and_line(any_db: Database, settings: Settings, tmp_path: Path) -> None:
    good = [_listing(i) for i in range(3)]
    path = write_lines(
        tmp_path / "mixed.jsonl",
        [
            good[0],
            dict(_listing(10), listing_dates=["2026-02-30"]),  # line 2: bad date
            {k: v for k, v in _listing(11).items() if k != "id"},  # line 3: no id
            dict(_listing(12), title="   "),  # line 4: empty title
            dict(_listing(13), id="2604.123"),  # line 5: invalid id
            b'{"id": "2604.07429", "title": "broken',  # line 6: malformed JSON
            good[1],
            b"",  # blank lines are skipped
            dict(_kaggle(1), versions=[{"version": "v1", "created": "not a date"}]),  # line 9
            {"id": "2604.00001", "title": "x"},  # line 10: not an arXiv record
            [1, 2, 3],  # line 11: not an object
            good[2],
        ],
    )
    res = cli(settings, any_db, "import", "arxiv", str(path), "--quiet")
    assert res.exit_code == 3, res.output
    err = res.stderr
    for lineno, reason in (
        (2, "bad date in listing_dates: '2026-02-30'"),
        (3, "missing id"),
        (4, "missing title"),
        (5, "not a valid arXiv id: '2604.123'"),
        (6, "malformed JSON"),
        (9, "bad date in versions: 'not a date'"),
        (10, "not an arXiv record"),
        (11, "not an arXiv record"),
    ):
        assert f"{path}:{lineno}: rejected: {reason}" in err, (lineno, err)
    assert "read 11, inserted 3, updated 0, unchanged 0, rejected 8" in res.stdout
    assert count(any_db, "papers") == 3


def test_bad_versions_are_rejected_with_file_and_line(any_db: Database, settings: Settings, tmp_path: Path) -> None:
    """A Kaggle record's versions must be objects numbered from v1: a ``v0``, a bare string, a
    number or ``null`` among them is a rejected line with its reason, never a stored paper."""
    good = _kaggle(1)
    created = good["versions"][0]["created"]
    path = write_lines(
        tmp_path / "versions.jsonl",
        [
            good,
            dict(_kaggle(2), versions=[{"version": "v0", "created": created}]),  # line 2
            dict(_kaggle(3), versions=["v1"]),  # line 3: a string, not an object
            dict(_kaggle(4), versions=[{"version": "v1", "created": created}, 5]),  # line 4
            dict(_kaggle(5), versions=[None]),  # line 5
            dict(_kaggle(6), versions="v1"),  # line 6: not a list
            dict(_kaggle(7), versions=[{"version": 0, "created": created}]),  # line 7
            dict(_kaggle(8), versions=[{"version": "v-2", "created": created}]),  # line 8
            dict(_kaggle(9), versions=[{"version": "v1"}]),  # line 9: no date
        ],
    )
    res = cli(settings, any_db, "import", "arxiv", str(path), "--quiet")
    assert res.exit_code == 3, res.output
    for lineno, reason in (
        (2, "bad version 'v0'"),
        (3, "bad versions entry 'v1'"),
        (4, "bad versions entry 5"),
        (5, "bad versions entry None"),
        (6, "versions is not a list"),
        (7, "bad version 0"),
        (8, "bad version 'v-2'"),
        (9, "bad date in versions: None"),
    ):
        assert f"{path}:{lineno}: rejected: {reason}" in res.stderr, (lineno, res.stderr)
    assert "read 9, inserted 1, updated 0, unchanged 0, rejected 8" in res.stdout
    with any_db.read() as conn:
        assert [r[0] for r in conn.execute(select(papers.c.id))] == [good["id"]]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("papers.csv", b"id,title,abstract\n2405.15738,A title,An abstract\n", "looks like CSV/TSV text"),
        ("page.html", b"<!DOCTYPE html><html><body>Not found</body></html>", "looks like HTML/XML"),
        ("day.json", b'[{"paper": {"id": "2405.15738"}}]', "a JSON array"),
        ("empty.jsonl", b"", "the file is empty"),
        ("hf.jsonl", b'{"date": "2026-04-10", "papers": []}\n', "not an arXiv record (date, papers)"),
        ("junk.jsonl", b"{oops\n" * 25, "the first 20 lines are not JSON"),
        ("notgz.jsonl.gz", b"\x1f\x8bthis is not really gzip data at all", "not a readable gzip file"),
    ],
)
def test_unusable_input_exits_2_and_writes_nothing(
    db: Database, settings: Settings, tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    res = cli(settings, db, "import", "arxiv", str(path), "--quiet")
    assert res.exit_code == 2, res.output
    assert message in res.stderr and "Traceback" not in res.output
    assert count(db, "papers") == 0


def test_missing_file_and_directory(db: Database, settings: Settings, tmp_path: Path) -> None:
    res = cli(settings, db, "import", "arxiv", str(tmp_path / "nope.jsonl"))
    assert res.exit_code == 2 and "no such file" in res.stderr
    res = cli(settings, db, "import", "arxiv", str(tmp_path))
    assert res.exit_code == 2 and "is a directory" in res.stderr
    with pytest.raises(UnusableInput):
        _import(db, tmp_path / "nope.jsonl")


def test_unreachable_database_is_a_clear_error(settings: Settings, tmp_path: Path) -> None:
    port = free_port()
    nowhere = Database(f"postgresql://nobody@127.0.0.1:{port}/paperfeed")
    res = cli(settings, nowhere, "import", "arxiv", str(KAGGLE), "--quiet")
    # 75 = EX_TEMPFAIL (cli/common.EXIT_DB_UNAVAILABLE, README "When the database fails"): try again later.
    assert res.exit_code == 75 and "the database is not reachable or busy" in res.stderr
    assert "Traceback" not in res.output


def test_truncated_gzip_keeps_what_came_before(any_db: Database, settings: Settings, tmp_path: Path) -> None:
    data = LISTINGS.read_bytes()
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(data[: len(data) * 2 // 3])
    res = cli(settings, any_db, "import", "arxiv", str(cut), "--quiet", "--batch-size", "25")
    assert res.exit_code == 3, res.output
    assert "ends early or is corrupt after line" in res.stderr
    kept = count(any_db, "papers")
    assert 0 < kept < 150
    assert f"inserted {kept}," in res.stdout
    # The full file afterwards completes the import.
    res = cli(settings, any_db, "import", "arxiv", str(LISTINGS), "--quiet")
    assert res.exit_code == 0 and f"inserted {150 - kept}, updated 0, unchanged {kept}" in res.stdout


def test_gzip_is_detected_from_content_and_stdin_works(db: Database, settings: Settings, tmp_path: Path) -> None:
    renamed = tmp_path / "listings.jsonl"  # gzip data without the .gz name
    shutil.copy(LISTINGS, renamed)
    assert _import(db, renamed).inserted == 150
    res = cli(settings, db, "import", "arxiv", "-", "--quiet", input=KAGGLE.read_bytes())
    assert res.exit_code == 0 and "read 20, inserted 20" in res.stdout
    res = cli(settings, db, "import", "arxiv", "-", "--quiet", input=gzip.decompress(LISTINGS.read_bytes()))
    assert res.exit_code == 0 and "unchanged 150" in res.stdout


def test_progress_bar_and_summary(db: Database, settings: Settings) -> None:
    res = cli(settings, db, "import", "arxiv", str(LISTINGS))
    assert res.exit_code == 0
    assert "import listings_sample.jsonl.gz" in res.stderr  # the rich progress bar
    assert "read 150, inserted 150, updated 0, unchanged 0, rejected 0 (" in res.stdout and "papers/s" in res.stdout


def test_a_record_the_database_refuses_is_isolated(db: Database) -> None:
    """If the database rejects a batch, each record is retried alone: only the bad one is lost."""
    recs = [parse_kaggle(_kaggle(i)) for i in range(4)]

    def upsert(conn, items):  # type: ignore[no-untyped-def]
        counts = upsert_arxiv(conn, [r for r in items if r.title != "boom"])
        if any(r.title == "boom" for r in items):
            conn.execute(
                insert(papers).values(
                    id="0704.0001",
                    title="dup",
                    authors=[],
                    content_hash="x",
                    created_at=recs[0].published,
                    modified_at=recs[0].published,
                )
            )
        return counts

    bad = PaperRecord(id="0704.9999", title="boom")
    report = ImportReport(source="test")
    batch = [Located(f"f:{i}", r) for i, r in enumerate([*recs[:2], bad, *recs[2:]], 1)]
    write_batch(db, batch, upsert, report)
    assert report.inserted == 4 and report.rejected == 1
    assert report.messages[0].startswith("f:3: rejected: the database refused it:")
    assert count(db, "papers") == 4
    with pytest.raises(IntegrityError):  # a single record is not retried forever
        write_batch(db, [Located("f:1", bad)], upsert, ImportReport(source="t"))
    assert UpsertCounts().inserted == 0
