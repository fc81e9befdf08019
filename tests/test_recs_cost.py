"""What makes the "for you" ranker cheap must not change what it computes: the vectorised
category prior equals the plain definition, and the shortlist computes the nearest-library
similarity exactly for the candidates the cheap components rank highest."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from paperfeed.recs import model as m

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
