"""``paperfeed import hf-daily``: day files, JSON lines, directories, merge with arXiv, first day wins."""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import orjson
import pytest

from paperfeed.config import Settings
from paperfeed.ingest.arxiv_file import import_arxiv_file
from paperfeed.ingest.files import UnusableInput
from paperfeed.ingest.hf_daily import import_hf_daily
from paperfeed.ingest.report import ImportReport
from paperfeed.store.db import Database
from paperfeed.store.papers import get_daily_entry, get_paper

from .factories import add_daily
from .ingest_helpers import HF_DIR, HF_JSONL, LISTINGS, cli, count, other_db, snapshot

DAY1, DAY2 = HF_DIR / "2026-04-10.json", HF_DIR / "2026-04-16.json"
TWICE = "2604.07429"  # on the feed on both days: 2 upvotes on 04-10, 42 on 04-16


@pytest.fixture
def second_db(any_db: Database, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Database]:
    yield from other_db(any_db, tmp_path, request)


def _hf(db: Database, path: Path | str, **kw) -> ImportReport:
    return import_hf_daily(db, path, progress=False, **kw)


def _day(path: Path) -> list[dict]:
    return orjson.loads(path.read_bytes())


def test_one_day_file(any_db: Database) -> None:
    r = _hf(any_db, DAY1)
    assert (r.read, r.inserted, r.rejected, r.exit_code) == (35, 35, 0, 0)
    assert count(any_db, "daily_entries") == 35
    with any_db.read() as conn:
        p = get_paper(conn, "2604.08546")
        d = get_daily_entry(conn, "2604.08546")
    assert p and d
    assert (p["imported_upvotes"], p["github_repo"], p["github_stars"], p["project_page"]) == (
        88,
        "https://github.com/H-EmbodVis/NUMINA",
        15,
        "https://h-embodvis.github.io/NUMINA/",
    )
    assert p["published"] == date(2026, 4, 9) and p["arxiv_hash"] is None and p["hf_hash"]
    assert len(p["authors"]) == 7 and p["title"] and p["abstract"] and "\n" not in p["abstract"]
    assert p["listed"] is None and p["categories"] == "" and p["version"] == 1
    # The submitter is the Hub username; the display name is kept beside it.
    assert (d["feed_date"], d["source"], d["submitter"]) == (date(2026, 4, 10), "hf", "dkliang")
    assert d["submitter_fullname"] == "Dingkang Liang"
    assert d["submitted_at"] == datetime(2026, 4, 10, 1, 9, 4, 762000)
    # Every field of the entry is kept exactly as the Hub sent it.
    source = next(e for e in _day(DAY1) if e["paper"]["id"] == "2604.08546")
    assert d["hf_source"] == source and d["hf_hash"]
    assert d["published_at"] == datetime(2026, 4, 8, 20, 0)


def test_jsonl_days_first_day_wins_and_idempotence(any_db: Database) -> None:
    r = _hf(any_db, HF_JSONL)
    assert (r.read, r.inserted, r.updated, r.rejected) == (57, 56, 1, 0)
    assert count(any_db, "papers") == 56 and count(any_db, "daily_entries") == 56
    with any_db.read() as conn:
        p = get_paper(conn, TWICE)
        d = get_daily_entry(conn, TWICE)
    assert d and d["feed_date"] == date(2026, 4, 10) and d["submitter"] == "taesiri"
    # Counts keep the largest value; links come from the first day, later days fill gaps.
    assert p and (p["imported_upvotes"], p["github_stars"]) == (42, 2)
    assert (p["project_page"], p["github_repo"]) == (
        "https://gameworld-bench.github.io/",
        "https://github.com/gameworld-project/gameworld",
    )
    before = snapshot(any_db)
    again = _hf(any_db, HF_JSONL)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 57)
    assert snapshot(any_db) == before


def test_import_order_does_not_matter(any_db: Database, second_db: Database) -> None:
    """Days in either order, and the directory form, give the same database."""
    _hf(any_db, DAY2)
    _hf(any_db, DAY1)
    _hf(second_db, HF_DIR)
    assert snapshot(any_db) == snapshot(second_db)
    with any_db.read() as conn:
        assert get_daily_entry(conn, TWICE)["feed_date"] == date(2026, 4, 10)  # type: ignore[index]


def test_hf_and_arxiv_merge_in_both_orders(any_db: Database, second_db: Database) -> None:
    import_arxiv_file(any_db, LISTINGS, progress=False)
    _hf(any_db, HF_JSONL)
    _hf(second_db, HF_JSONL)
    r = import_arxiv_file(second_db, LISTINGS, progress=False)
    assert r.updated > 0  # papers HF created are now owned by arXiv data
    assert snapshot(any_db) == snapshot(second_db)
    with any_db.read() as conn:
        p = get_paper(conn, TWICE)
    assert p and p["arxiv_hash"] and p["hf_hash"] and p["listed"] and p["categories"].startswith("cs.")
    assert p["imported_upvotes"] == 42
    # A second pass in either order changes nothing.
    assert _hf(any_db, HF_JSONL).changed == 0
    assert import_arxiv_file(any_db, LISTINGS, progress=False).changed == 0


def test_hf_never_overwrites_arxiv_fields(db: Database, tmp_path: Path) -> None:
    import_arxiv_file(db, LISTINGS, progress=False)
    with db.read() as conn:
        before = get_paper(conn, TWICE)
    day = _day(DAY1)
    for e in day:
        e["paper"]["title"] = "A different title from HF"
        e["paper"]["summary"] = "Another summary."
        e["paper"]["authors"] = [{"name": "Somebody Else"}]
    changed = tmp_path / "2026-04-10.json"
    changed.write_bytes(orjson.dumps(day))
    _hf(db, changed)
    with db.read() as conn:
        after = get_paper(conn, TWICE)
    assert before and after
    for f in ("title", "abstract", "authors", "published", "content_hash", "arxiv_hash", "listed", "categories"):
        assert after[f] == before[f], f
    assert after["project_page"] == "https://gameworld-bench.github.io/" and after["imported_upvotes"] == 2


def test_earlier_hf_day_moves_a_later_entry_and_keeps_moderation(db: Database) -> None:
    import_arxiv_file(db, LISTINGS, progress=False)
    add_daily(db, TWICE, date(2026, 4, 20), submitter="alice", source="local", featured=True)
    r = _hf(db, DAY2)  # 04-16 is earlier than the local 04-20 entry
    assert r.exit_code == 0
    with db.read() as conn:
        d = get_daily_entry(conn, TWICE)
    assert d and (d["feed_date"], d["source"], d["submitter"], d["featured"]) == (
        date(2026, 4, 16),
        "hf",
        "yyyang",  # the username (the display name is "yyyang404")
        True,
    )


def test_date_option_and_name(db: Database, settings: Settings, tmp_path: Path) -> None:
    anonymous = tmp_path / "daily.json"
    shutil.copy(DAY1, anonymous)
    res = cli(settings, db, "import", "hf-daily", str(anonymous), "--quiet")
    assert res.exit_code == 2 and "cannot tell which day" in res.stderr
    res = cli(settings, db, "import", "hf-daily", str(anonymous), "--date", "2026-04-11", "--quiet")
    assert res.exit_code == 0 and "read 35, inserted 35" in res.stdout
    with db.read() as conn:
        assert get_daily_entry(conn, TWICE)["feed_date"] == date(2026, 4, 11)  # type: ignore[index]
    res = cli(settings, db, "import", "hf-daily", str(anonymous), "--date", "April 11")
    assert res.exit_code == 2 and "is not a date" in res.stderr
    res = cli(settings, db, "import", "hf-daily", str(HF_JSONL), "--date", "2026-04-11")
    assert res.exit_code == 2 and "--date only applies" in res.stderr
    gz = tmp_path / "2026-04-16.json.gz"
    gz.write_bytes(gzip.compress(DAY2.read_bytes()))
    assert _hf(db, gz).read == 22


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("2026-04-10.json", b'{"status": "ok", "date": "2026-04-10", "data": []}', "JSON object (status, date, data)"),
        ("2026-04-11.json", b'{\n  "error": "Invalid date",\n  "code": 400\n}\n', "a JSON object where"),
        ("2026-04-12.json", b"<html><body>Rate limited</body></html>", "looks like HTML/XML"),
        ("2026-04-13.csv", b"date,id,upvotes\n2026-04-13,2604.1,3\n", "looks like CSV/TSV text"),
        ("2026-04-14.json", b'[{"paper": {"id": "2604.07429"', "not valid JSON"),
        ("2026-04-15.json.gz", gzip.compress(b'[{"paper": {"id": "2604.07429"}}]')[:20], "ends early or is corrupt"),
    ],
)
def test_unusable_files_exit_2(
    db: Database, settings: Settings, tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    res = cli(settings, db, "import", "hf-daily", str(path), "--quiet")
    assert res.exit_code == 2, res.output
    assert message in res.stderr and "Traceback" not in res.output
    assert count(db, "papers") == 0


def test_missing_path(db: Database, tmp_path: Path) -> None:
    with pytest.raises(UnusableInput, match="no such file"):
        _hf(db, tmp_path / "nothing.json")
    empty = tmp_path / "empty_dir"
    empty.mkdir()
    with pytest.raises(UnusableInput, match="no .json"):
        _hf(db, empty)


def test_bad_entries_are_rejected_and_the_rest_kept(any_db: Database, settings: Settings, tmp_path: Path) -> None:
    day = _day(DAY1)
    day[1]["paper"]["id"] = "not-an-id"
    del day[2]["paper"]["title"]
    day[2]["title"] = ""
    day[3]["paper"]["submittedOnDailyAt"] = "10/04/2026"
    day[4]["paper"]["upvotes"] = "many"
    day[5] = "a string, not an entry"
    path = tmp_path / "2026-04-10.json"
    path.write_bytes(orjson.dumps(day))
    res = cli(settings, any_db, "import", "hf-daily", str(path), "--quiet")
    assert res.exit_code == 3, res.output
    err = res.stderr
    assert f"{path} entry 2 (not-an-id): rejected: not a valid arXiv id: 'not-an-id'" in err
    assert f"{path} entry 3 ({day[2]['paper']['id']}): rejected: missing title" in err
    assert "entry 4 (" in err and "bad timestamp in paper.submittedOnDailyAt: '10/04/2026'" in err
    assert "entry 5 (" in err and "bad paper.upvotes: 'many'" in err
    assert f"{path} entry 6: rejected: expected an object with a 'paper' object" in err
    assert "read 35, inserted 30, updated 0, unchanged 0, rejected 5" in res.stdout
    assert count(any_db, "daily_entries") == 30


def test_bad_jsonl_lines(db: Database, settings: Settings, tmp_path: Path) -> None:
    good = gzip.decompress(HF_JSONL.read_bytes()).splitlines()
    path = tmp_path / "days.jsonl"
    path.write_bytes(
        b"\n".join(
            [
                good[0],
                b'{"date": "2026-04-31", "papers": []}',
                b'{"date": "2026-04-12", "papers": [',
                b'{"date": "2026-04-13", "papers": {"not": "a list"}}',
                b'{"day": "2026-04-14"}',
                good[1],
            ]
        )
        + b"\n"
    )
    res = cli(settings, db, "import", "hf-daily", str(path), "--quiet")
    assert res.exit_code == 3
    err = res.stderr
    assert f"{path}:2: rejected: bad date in date: '2026-04-31'" in err
    assert f"{path}:3: rejected: malformed JSON" in err
    assert f"{path}:4: rejected: expected a list of papers, got dict" in err
    assert f"{path}:5: rejected: expected an object with 'date' and 'papers'" in err
    assert count(db, "daily_entries") == 56


def test_directory_with_a_stray_file(db: Database, settings: Settings, tmp_path: Path) -> None:
    d = tmp_path / "days"
    d.mkdir()
    shutil.copy(DAY1, d / "2026-04-10.json")
    shutil.copy(DAY2, d / "2026-04-16.json")
    (d / "2026-04-17.json").write_bytes(b"<html>oops</html>")
    (d / "notes.txt").write_text("ignored: not a .json file")
    res = cli(settings, db, "import", "hf-daily", str(d))
    assert res.exit_code == 3
    assert f"{d / '2026-04-17.json'}: rejected: this looks like HTML/XML" in res.stderr
    assert "read 58, inserted 56, updated 1, unchanged 0, rejected 1" in res.stdout


def test_every_field_is_kept_and_hidden_authors_are_stored_but_not_shown(any_db: Database, tmp_path: Path) -> None:
    """Fields paperfeed has no column for (also ones a newer Hub adds) survive the import; an author
    the Hub marks hidden is kept in the source with its flag but never enters ``authors``, not even
    when an arXiv record lists the name."""
    day = _day(DAY1)
    entry = next(e for e in day if e["paper"]["id"] == TWICE)
    entry["aNewHubField"] = {"nested": [1, 2.5, None, "x"]}
    entry["paper"]["anotherNewField"] = True
    hidden_name = entry["paper"]["authors"][1]["name"]
    entry["paper"]["authors"][1]["hidden"] = True
    path = tmp_path / "2026-04-10.json"
    path.write_bytes(orjson.dumps(day))
    r = _hf(any_db, path)
    assert r.rejected == 0
    with any_db.read() as conn:
        p, d = get_paper(conn, TWICE), get_daily_entry(conn, TWICE)
    assert p and d
    assert d["hf_source"] == entry and d["hf_source"]["paper"]["authors"][1]["hidden"] is True
    assert hidden_name not in p["authors"] and p["hidden_authors"] == [hidden_name]
    assert p["ai_summary"] == entry["paper"]["ai_summary"] and p["ai_keywords"] == entry["paper"]["ai_keywords"]
    # An arXiv record (which lists every author) does not bring the hidden name back.
    import_arxiv_file(any_db, LISTINGS, progress=False)
    with any_db.read() as conn:
        p2 = get_paper(conn, TWICE)
    assert p2 and p2["arxiv_hash"] and hidden_name not in p2["authors"] and len(p2["authors"]) >= 2
    # Re-importing the same file changes nothing.
    before = snapshot(any_db)
    again = _hf(any_db, path)
    assert (again.inserted, again.updated) == (0, 0)
    assert snapshot(any_db) == before
