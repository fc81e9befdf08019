"""What makes the "for you" ranker cheap must not change what it computes: the vectorised
category prior equals the plain definition, the shortlist computes the nearest-library
similarity exactly for the candidates the cheap components rank highest, and a persisted model
(``user_models``) comes back with every field and the same scores."""

from __future__ import annotations

import dataclasses
import types
from datetime import date, datetime

import numpy as np
import pytest
import scipy.sparse as sp
from sqlalchemy import update

from paperfeed.recs import model as m
from paperfeed.recs import persisted, runtime
from paperfeed.recs import ranker as ranker_module
from paperfeed.store import user_model_store
from paperfeed.store.db import Database
from paperfeed.store.schema import papers

from . import factories

CATS = ["cs.CL", "cs.LG", "cs.CV", "cs.AI", "stat.ML", "q-bio.NC"]


def _features(rng: np.random.Generator, n: int, prefix: str) -> m.Features:
    text = sp.random(n, m.TEXT_DIM, density=60 / m.TEXT_DIM, format="csr", dtype=np.float32, random_state=rng)
    text = sp.csr_matrix(sp.diags(1.0 / np.sqrt(np.asarray(text.multiply(text).sum(axis=1)).ravel())) @ text)
    emb = rng.standard_normal((n, 16)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    cats = [tuple(rng.choice(CATS, size=int(rng.integers(0, 3)), replace=False)) for _ in range(n)]
    return m.Features([f"{prefix}{i}" for i in range(n)], text, emb, cats)


def _model() -> tuple[m.UserModel, m.Features]:
    rng = np.random.default_rng(5)
    pos, bg, cands = _features(rng, 30, "p"), _features(rng, 200, "b"), _features(rng, 120, "c")
    # A category no Features has shown yet, only the library: it must still get a code.
    pos.categories[0] = ("never.seen.before",)
    return m.fit(pos, bg), cands


def test_category_prior_equals_its_definition() -> None:
    model, cands = _model()
    got = model.category(cands)
    floor = 0.5 / (max(len(model.category_share), 1) + 10)
    want = [np.log(max((model.category_share.get(c, 0.0) for c in cs), default=0.0) + floor) for cs in cands.categories]
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert "never.seen.before" in model.category_share


def test_shortlist_scores_the_cheap_top_exactly() -> None:
    model, cands = _model()
    exact = model.components(cands)
    assert all(np.array_equal(exact[k], v) for k, v in model.components(cands, shortlist=len(cands)).items())
    k = 40
    short = model.components(cands, shortlist=k)
    mean = {n: np.full(len(cands), model.parts[n].mean) for n in ("nearest_emb", "nearest_text")}
    cheap = model.blend({**exact, **mean})
    top = set(np.argsort(-cheap)[:k].tolist())
    for name in ("nearest_emb", "nearest_text"):
        rows = sorted(top)
        np.testing.assert_allclose(short[name][rows], exact[name][rows], rtol=1e-6)
        rest = [i for i in range(len(cands)) if i not in top]
        assert np.all(short[name][rest] == exact[name][rows].min())
    for name in ("classifier", "category", "negative"):
        assert np.array_equal(short[name], exact[name])
    assert np.array_equal(model.score(cands, shortlist=None), model.blend(exact))


# -- persisted models ---------------------------------------------------------------------------
def test_persisted_model_round_trips_every_field() -> None:
    model, cands = _model()
    neg_model = m.fit(model.pos, _features(np.random.default_rng(9), 100, "b"), neg=cands.take([0, 1]))
    for original in (model, neg_model):
        original.score(cands)  # derived caches set: they are not what is stored
        blob = persisted.dumps(original)
        every = m.Features.stack([original.pos] + ([original.neg] if original.neg is not None else []))
        where = {pid: r for r, pid in enumerate(every.ids)}
        back = persisted.loads(blob, lambda ids, f=every, w=where: f.take([w[i] for i in ids]))
        assert back is not None
        for f in dataclasses.fields(m.UserModel):
            if f.name.startswith("_"):
                continue
            a, b = getattr(original, f.name), getattr(back, f.name)
            if isinstance(a, m.Features) or a is None:
                assert (a is None and b is None) or (b is not None and a.ids == b.ids), f.name
            elif isinstance(a, np.ndarray):
                assert a.dtype == b.dtype and np.array_equal(a, b), f.name
            else:
                assert a == b, f.name
        assert np.array_equal(back.score(cands), original.score(cands))
    # A library paper that is gone: no model (the caller refits).
    assert persisted.loads(persisted.dumps(model), lambda ids: None) is None


def test_settings_key_follows_every_model_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    key = persisted.settings_key(2000, 60)
    assert persisted.settings_key(2000, 60) == key and persisted.settings_key(1000, 60) != key
    monkeypatch.setattr(m, "W_CATEGORY", m.W_CATEGORY + 0.1)
    assert persisted.settings_key(2000, 60) != key


def test_user_model_store_put_replace_and_unknown_user(any_db: Database) -> None:
    uid = factories.add_user(any_db, "stored")
    when = datetime(2026, 5, 1, 12, 0)
    with any_db.write() as conn:
        assert user_model_store.put_model(conn, uid, "a" * 64, date(2026, 4, 30), b"\x00first", when)
        assert user_model_store.put_model(conn, uid, "b" * 64, None, b"\x00second", when)
        assert not user_model_store.put_model(conn, uid + 1000, "c" * 64, None, b"x", when)
    with any_db.read() as conn:
        got = user_model_store.get_model(conn, uid)
        assert user_model_store.get_model(conn, uid + 1000) is None
    assert got == user_model_store.StoredModel("b" * 64, None, b"\x00second", when)
    with any_db.write() as conn:
        assert user_model_store.delete_model(conn, uid)
    with any_db.read() as conn:
        assert user_model_store.get_model(conn, uid) is None


def test_taken_rows_keep_their_category_codes() -> None:
    _, cands = _model()
    cands.category_codes()
    rows = [5, 0, 7, 7, 119]
    taken = cands.take(rows)
    assert taken._codes is not None
    fresh = m.Features(taken.ids, taken.text, taken.emb, taken.categories)
    assert all(np.array_equal(a, b) for a, b in zip(taken.category_codes(), fresh.category_codes(), strict=True))


def test_library_text_products_equal_the_plain_ones() -> None:
    model, cands = _model()
    plain = (cands.text @ model.pos.text.T).toarray()
    np.testing.assert_allclose(model._library_t().similarity(cands.text), plain, rtol=1e-6, atol=1e-7)
    empty = m.Features([], cands.text[:0], cands.emb[:0], [])
    assert model._library_t().similarity(empty.text).shape == (0, len(model.pos))


def test_candidate_lists_and_upvotes_are_reused_for_a_while_then_read_again(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = types.SimpleNamespace(monotonic=lambda: 1000.0)
    monkeypatch.setattr(runtime, "time", clock)  # the clock of the ranker's Recent caches
    day = date(2026, 3, 2)
    first = [factories.add_paper(db, listed=day)["id"] for _ in range(3)]
    r = ranker_module.Ranker(db, persist=False)
    cold = ranker_module.UserSignals(weights=ranker_module.Weights(popularity=1.0, recency=0.0))
    assert sorted(r.candidates()) == sorted(first)
    before = [p.paper_id for p in r.rank(cold, first)]
    late = factories.add_paper(db, listed=day)["id"]
    with db.write() as conn:
        conn.execute(update(papers).where(papers.c.id == first[2]).values(upvotes=40))
    assert sorted(r.candidates()) == sorted(first)  # within CANDIDATES_TTL: the list read before
    assert [p.paper_id for p in r.rank(cold, first)] == before  # within POPULARITY_TTL: the counts read before
    assert before[0] != first[2]
    clock.monotonic = lambda: 1000.0 + max(ranker_module.CANDIDATES_TTL, ranker_module.POPULARITY_TTL) + 1
    assert sorted(r.candidates()) == sorted([*first, late])
    assert r.rank(cold, first)[0].paper_id == first[2]
