"""Property tests: whatever shape a record has, a parser either returns a record or raises
RecordError (a clean rejection) - never another exception, which would be a traceback."""

from __future__ import annotations

from datetime import date
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paperfeed.ingest.arxiv_file import parse_line
from paperfeed.ingest.hf_daily import parse_entry
from paperfeed.records import PaperRecord, RecordError, parse_arxiv_id

json_scalar = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30)
json_value = st.recursive(
    json_scalar, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)  # fmt: skip
plausible = {
    "id": st.sampled_from(["2405.15738", "2405.15738v2", "hep-th/9901001", "x", ""]) | json_value,
    "title": st.text(max_size=40) | json_value,
    "abstract": st.text(max_size=40) | json_value,
    "authors": st.text(max_size=40) | json_value,
    "authors_list": st.lists(st.text(max_size=10), max_size=3) | json_value,
    "authors_parsed": st.lists(st.lists(st.text(max_size=8), max_size=4), max_size=3) | json_value,
    "categories": st.sampled_from(["cs.LG cs.AI", "68T45 I.2;", ""]) | json_value,
    "versions": st.lists(
        st.fixed_dictionaries({"version": st.sampled_from(["v1", "v2", "v0", "x"]) | json_value,
                               "created": st.sampled_from(["Mon, 2 Apr 2007 19:18:42 GMT", "nope"]) | json_value}),
        max_size=3,
    ) | json_value,
    "listing_dates": st.lists(st.sampled_from(["2026-04-10", "2026-02-30", "x"]), max_size=3) | json_value,
    "update_date": st.sampled_from(["2026-04-10", "bad"]) | json_value,
    "comments": json_value, "doi": json_value, "journal-ref": json_value, "license": json_value,
    "submitter": json_value,
}  # fmt: skip
arxiv_line = st.fixed_dictionaries({}, optional=plausible) | json_value

hf_paper = st.fixed_dictionaries(
    {},
    optional={
        "id": st.sampled_from(["2604.07429", "bad"]) | json_value,
        "title": st.text(max_size=20) | json_value,
        "summary": st.text(max_size=20) | json_value,
        "authors": st.lists(st.fixed_dictionaries({}, optional={"name": json_value, "hidden": json_value}))
        | json_value,
        "publishedAt": st.sampled_from(["2026-04-08T00:00:00.000Z", "x"]) | json_value,
        "submittedOnDailyAt": st.sampled_from(["2026-04-10T00:58:14.251Z", "10/04"]) | json_value,
        "submittedOnDailyBy": st.fixed_dictionaries({}, optional={"fullname": json_value, "name": json_value})
        | json_value,
        "upvotes": st.integers(-2, 300) | json_value,
        "githubStars": st.integers(-2, 300) | json_value,
        "githubRepo": st.sampled_from(["https://github.com/a/b", "javascript:alert(1)"]) | json_value,
        "projectPage": json_value,
    },
)  # fmt: skip
hf_entry = st.fixed_dictionaries({}, optional={"paper": hf_paper, "title": json_value, "publishedAt": json_value,
                                               "submittedBy": json_value}) | json_value  # fmt: skip

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(arxiv_line)
def test_arxiv_lines_never_crash(obj: Any) -> None:
    try:
        rec = parse_line(obj)
    except RecordError:
        return
    assert isinstance(rec, PaperRecord) and rec.title and parse_arxiv_id(rec.id)[0] == rec.id
    rec.arxiv_hash()


@FUZZ
@given(hf_entry)
def test_hf_entries_never_crash(obj: Any) -> None:
    try:
        e = parse_entry(obj, date(2026, 4, 10))
    except RecordError:
        return
    assert e.paper.title and e.feed_date == date(2026, 4, 10) and e.paper.imported_upvotes >= 0
    if e.paper.github_repo is not None:  # absent, or a web link (never javascript: or a bare name)
        assert e.paper.github_repo.startswith(("http://", "https://")), e.paper.github_repo
    e.paper.hf_hash()


@FUZZ
@given(st.text(max_size=60))
def test_arxiv_ids_never_crash(text: str) -> None:
    try:
        pid, version = parse_arxiv_id(text)
    except ValueError:
        return
    assert parse_arxiv_id(pid) == (pid, None)
    if version is not None:  # "v0" is not a version
        assert version >= 1, (text, version)
