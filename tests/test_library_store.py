"""The library's storage and service layer on SQLite and PostgreSQL: the default Saved collection,
named collections with notes, public share URLs, ownership, limits, feedback with undo, and the
signals the for-you ranker reads (``library_store.user_signals``)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import func, select

from paperfeed.community import votes
from paperfeed.community.errors import CommunityError, NotFound, NotSignedIn
from paperfeed.config import Settings
from paperfeed.library import collections as lib
from paperfeed.library import feedback
from paperfeed.store import library_store
from paperfeed.store.db import Database
from paperfeed.store.schema import collection_items, collections, paper_feedback

from . import factories as f
from .community_util import FakeClock, community, make_user


@pytest.fixture
def world(any_db: Database, settings: Settings):  # type: ignore[no-untyped-def]
    clock = FakeClock()
    c = community(settings, any_db, clock)
    papers = [f.add_paper(any_db)["id"] for _ in range(4)]
    return c, clock, make_user(c, "alice"), make_user(c, "bob"), papers


def test_save_toggle_collections_notes_and_ownership(world) -> None:  # type: ignore[no-untyped-def]
    c, clock, alice, bob, (p1, p2, p3, _p4) = world
    state = lib.toggle_saved(c, alice, p1)
    assert (state.saved, state.changed, state.collection.slug, state.collection.name) == (True, True, "saved", "Saved")
    assert lib.saved_among(c, alice, [p1, p2]) == {p1}
    assert lib.saved_among(c, bob, [p1, p2]) == set()
    assert lib.toggle_saved(c, alice, p1).saved is False
    assert lib.saved_among(c, alice, [p1]) == set()

    reading = lib.create_collection(c, alice, "  Reading   group ")
    assert (reading.name, reading.slug, reading.public, reading.public_url) == ("Reading group", "reading-group",
                                                                                 False, None)
    assert lib.create_collection(c, alice, "Reading group!").slug == "reading-group-2"
    assert lib.create_collection(c, bob, "Reading group").slug == "reading-group"  # slugs are per user
    lib.add_paper(c, alice, p2, "reading-group", note="read §3 first")
    clock.advance(minutes=1)
    lib.add_paper(c, alice, p3, "reading-group")
    lib.set_note(c, alice, p3, "reading-group", "  the baseline  ")
    shown = lib.items(c, lib.owned(c, alice, "reading-group"), limit=10)
    assert [(i.paper_id, i.note) for i in shown] == [(p3, "the baseline"), (p2, "read §3 first")]
    assert shown[0].paper is not None and shown[0].paper["id"] == p3
    # Adding again keeps the paper once; a note given replaces the old one.
    again = lib.add_paper(c, alice, p2, "reading-group", note="")
    assert again.changed is False
    assert [m["note"] for m in lib.memberships(c, alice, p2)] == [None]
    # Bob cannot see, change or delete Alice's collection: the same 404 as a missing one.
    for act in (lambda: lib.owned(c, bob, "reading-group-2"), lambda: lib.add_paper(c, bob, p1, "reading-group-2"),
                lambda: lib.delete_collection(c, bob, "reading-group-2")):  # fmt: skip
        with pytest.raises(NotFound):
            act()
    with pytest.raises(NotSignedIn):
        lib.toggle_saved(c, None, p1)
    with pytest.raises(NotFound):
        lib.add_paper(c, alice, "2501.99999")
    with pytest.raises(CommunityError) as err:
        lib.delete_collection(c, alice, "saved")
    assert err.value.status == 409
    assert [col.slug for col in lib.list_collections(c, alice)] == ["saved", "reading-group", "reading-group-2"]
    lib.delete_collection(c, alice, "reading-group")
    with c.db.read() as conn:
        left = conn.scalar(select(func.count()).select_from(collection_items).where(collection_items.c.paper_id == p3))
    assert left == 0


def test_public_url_is_unguessable_and_dies_when_private(world) -> None:  # type: ignore[no-untyped-def]
    c, _clock, alice, _bob, (p1, *_rest) = world
    col = lib.create_collection(c, alice, "To share")
    lib.add_paper(c, alice, p1, col.slug)
    shared = lib.set_public(c, alice, col.slug, True)
    assert shared.public_url is not None and len(shared.share_token or "") >= 32
    assert lib.shared(c, shared.share_token or "").id == col.id
    lib.set_public(c, alice, col.slug, False)
    with pytest.raises(NotFound):
        lib.shared(c, shared.share_token or "")
    again = lib.set_public(c, alice, col.slug, True)
    assert again.share_token != shared.share_token
    with pytest.raises(NotFound):
        lib.shared(c, "not-a-token")


def test_limits_give_clear_errors_and_write_nothing(world) -> None:  # type: ignore[no-untyped-def]
    c, _clock, alice, _bob, (p1, p2, *_rest) = world
    tight = replace(lib.LIMITS, collections_per_user=2, items_per_collection=1, note_chars=10, name_chars=5)
    lib.create_collection(c, alice, "one", tight)  # + Saved = 2
    with pytest.raises(CommunityError, match="at most 5 characters") as err:
        lib.create_collection(c, alice, "longer", tight)
    assert err.value.status == 422
    with pytest.raises(CommunityError, match="2 collections") as err:
        lib.create_collection(c, alice, "two", tight)
    assert err.value.status == 409
    with pytest.raises(CommunityError, match="at most 10 characters"):
        lib.add_paper(c, alice, p1, note="x" * 11, limits=tight)
    lib.add_paper(c, alice, p1, limits=tight)
    with pytest.raises(CommunityError, match="holds 1 papers"):
        lib.add_paper(c, alice, p2, limits=tight)
    with pytest.raises(CommunityError, match="Give the collection a name"):
        lib.create_collection(c, alice, " \x00 ", tight)
    with c.db.read() as conn:
        assert conn.scalar(select(func.count()).select_from(collections)) == 2
        assert conn.scalar(select(func.count()).select_from(collection_items)) == 1


def test_feedback_undo_and_signals(world) -> None:  # type: ignore[no-untyped-def]
    c, clock, alice, bob, (p1, p2, p3, p4) = world
    lib.add_paper(c, alice, p1)
    clock.advance(minutes=1)
    votes.set_vote(c, alice, p2, True)
    clock.advance(minutes=1)
    on = feedback.set_feedback(c, alice, p3, "not_interested", True)
    assert on.as_json() == {"paperId": p3, "kind": "not_interested", "active": True, "changed": True,
                            "undo": {"kind": "not_interested", "on": False}}  # fmt: skip
    assert feedback.set_feedback(c, alice, p3, "not_interested", True).changed is False
    feedback.set_feedback(c, alice, p4, "hidden", True)
    assert feedback.feedback_among(c, alice, [p3, p4, p1]) == {p3: {"not_interested"}, p4: {"hidden"}}
    assert feedback.feedback_among(c, bob, [p3, p4]) == {}
    with pytest.raises(CommunityError) as err:
        feedback.set_feedback(c, alice, p1, "meh", True)
    assert err.value.status == 422

    with c.db.read() as conn:
        sig = library_store.user_signals(conn, alice.id)
    assert [s.paper_id for s in sig.saved] == [p1]
    assert [s.paper_id for s in sig.upvoted] == [p2]
    assert [s.paper_id for s in sig.not_interested] == [p3]
    assert [s.paper_id for s in sig.hidden] == [p4]
    assert sig.positive_ids == [p2, p1]
    assert sig.excluded_ids == {p1, p4}
    assert sig.saved[0].at < sig.upvoted[0].at < sig.not_interested[0].at

    memo: dict[str, object] = {}
    assert lib.reader_state(c, alice, p1, memo) == {"saved"}
    assert lib.reader_state(c, alice, p4, memo) == {"hidden"}
    assert lib.reader_state(c, alice, p2, memo) == set()  # upvoted only: the vote button shows that
    assert lib.reader_state(c, bob, p4, {}) == set()  # bob has no Saved collection yet: feedback only

    undo = feedback.set_feedback(c, alice, p4, "hidden", False)
    assert (undo.active, undo.changed) == (False, True)
    with c.db.read() as conn:
        assert library_store.user_signals(conn, alice.id).hidden == ()
        assert conn.scalar(select(func.count()).select_from(paper_feedback)) == 1
        # The feed filter: a paper query with not_hidden_for(user) drops what the user hid.
        assert library_store.user_signals(conn, bob.id).positive_ids == []
