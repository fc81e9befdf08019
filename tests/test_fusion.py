"""Query-adaptive fusion (search/fusion.py) and long-query term selection (search/lexical_query.py):
pure functions on hand-made lists, plus the explanation a hybrid search attaches to each hit."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from paperfeed.search import fusion as fusion_mod
from paperfeed.search import lexical_query
from paperfeed.search.fusion import (
    COSINE_FLOOR,
    SMOOTHED,
    AdaptiveModel,
    Fusion,
    FusionDecision,
    decide,
    default_model,
    fuse,
    keyword_ceiling,
    normalise,
    query_features,
    smooth,
)
from paperfeed.search.lexical_query import MAX_QUERY_TERMS, PRUNED, QUERY_NOISE, TITLE_BOOST, TermStat, select_terms
from paperfeed.search.query import parse_query

LONG_QUERY_TERMS = PRUNED["LONG_QUERY_TERMS"]


@pytest.fixture
def pruned(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pruning setting found best on the tuning halves (not the default)."""
    for name, value in PRUNED.items():
        monkeypatch.setattr(lexical_query, name, value)

KW = [(f"k{i}", 20.0 - i) for i in range(12)]
SEM = [(f"s{i}", 0.9 - i * 0.01) for i in range(12)]


def stats(*pairs: tuple[str, int]) -> list[TermStat]:
    return [TermStat(t, df, True) for t, df in pairs]


# -- fuse / normalise ---------------------------------------------------------------------------------


def test_weight_extremes_follow_one_retriever() -> None:
    # The last of each list normalises to 0, where it ties with everything the other list found.
    assert [p for p, _ in fuse(KW, SEM, Fusion("score"), 0.0)][:11] == [p for p, _ in KW][:11]
    assert [p for p, _ in fuse(KW, SEM, Fusion("score"), 1.0)][:11] == [p for p, _ in SEM][:11]


def test_weight_override_changes_the_winner() -> None:
    kw = [("a", 10.0), ("b", 5.0), ("c", 1.0)]
    sem = [("b", 0.80), ("c", 0.79), ("a", 0.10)]
    assert fuse(kw, sem, Fusion("score"), 0.2)[0][0] == "a"
    assert fuse(kw, sem, Fusion("score"), 0.8)[0][0] == "b"


def test_normalise_is_min_max_over_the_list() -> None:
    assert normalise([10.0, 7.5, 5.0]) == [1.0, 0.5, 0.0]
    assert normalise([3.0, 3.0]) == [1.0, 1.0]
    assert normalise([]) == []


# -- features ---------------------------------------------------------------------------------------


def test_features_read_the_form_of_the_query() -> None:
    kw_list = parse_query("long-form video understanding, narrative evolution, cultural reasoning, MLLMs")
    f = query_features(kw_list, stats(("video", 50), ("narrat", 3)), 6000, KW, SEM)
    assert (f.keyword_list, f.question, f.form) == (True, False, "keyword list")
    q = parse_query("How can I make reinforcement learning sample efficient when rewards are sparse?")
    f = query_features(q, stats(("reward", 40)), 6000, KW, SEM)
    assert (f.question, f.keyword_list, f.form) == (True, False, "question-like query")
    assert f.words == 12
    short = query_features(parse_query("graph neural networks"), [], 6000, KW, SEM)
    assert (short.form, short.words) == ("short query", 3)
    assert query_features(parse_query('"state of the art" parsing'), [], 10, KW, SEM).exact
    assert query_features(parse_query("parsing author:lecun"), [], 10, KW, SEM).exact


def test_features_measure_rarity_peaks_and_agreement() -> None:
    pq = parse_query("dice offline rl")
    rare = query_features(pq, stats(("dice", 1), ("offlin", 1)), 10_000, KW, SEM)
    common = query_features(pq, stats(("dice", 5000), ("offlin", 9000)), 10_000, KW, SEM)
    assert rare.idf == pytest.approx(1.0)
    assert common.idf < 0.1
    assert rare.rare_terms == ("dice", "offlin") and common.rare_terms == ()
    assert rare.agree == 0.0
    shared = query_features(pq, [], 10, KW, [(p, 0.5) for p, _ in KW[:5]] + SEM[:5])
    assert shared.agree == 0.5
    peaked = query_features(pq, [], 10, [("a", 30.0)] + [(f"b{i}", 5.0) for i in range(9)], SEM)
    flat = query_features(pq, [], 10, [(f"b{i}", 5.0) for i in range(10)], SEM)
    assert peaked.kw_peak == pytest.approx(25 / 30) and flat.kw_peak == 0.0
    assert rare.sem_top == pytest.approx(0.9) and rare.sem_peak == pytest.approx(0.09)
    none = query_features(pq, [], 0, [], [])
    assert (none.kw_peak, none.sem_peak, none.sem_top, none.agree, none.idf) == (0.0, 0.0, 0.0, 0.0, 0.0)


# -- the model ----------------------------------------------------------------------------------------


def test_model_weight_follows_its_coefficients_and_clips() -> None:
    f_short = query_features(parse_query("gnn"), [], 10, KW, SEM)
    f_long = query_features(parse_query(" ".join(["word"] * 40)), [], 10, KW, SEM)
    m = AdaptiveModel(bias=0.0, coef={"log_words": 1.0}, mean={"log_words": 3.0}, scale={"log_words": 1.0})
    assert m.weight(f_long) > 0.5 > m.weight(f_short)
    steep = AdaptiveModel(bias=0.0, coef={"log_words": 50.0}, mean={"log_words": 3.0}, scale={"log_words": 1.0})
    assert steep.weight(f_long) == 0.95 and steep.weight(f_short) == 0.05
    assert AdaptiveModel().weight(f_short) == pytest.approx(0.45, abs=0.001)  # the prior: the old fixed weight


def test_exact_phrases_shift_weight_to_keyword() -> None:
    m = AdaptiveModel(bias=0.0)
    plain = query_features(parse_query("state of the art parsing"), [], 10, KW, SEM)
    quoted = query_features(parse_query('"state of the art" parsing'), [], 10, KW, SEM)
    assert m.weight(quoted) < m.weight(plain) == 0.5


def test_model_json_round_trip_and_shipped_model() -> None:
    m = AdaptiveModel(bias=0.3, coef={"idf": -1.5}, mean={"idf": 0.5}, scale={"idf": 0.2}, fitted_on="x")
    assert AdaptiveModel.from_json(json.loads(json.dumps(m.to_json()))) == m
    shipped = default_model()
    assert fusion_mod.MODEL_FILE.exists()
    assert shipped.fitted_on and set(shipped.coef) <= set(fusion_mod.FITTED)


def test_decide_explains_adaptive_and_fixed_weights() -> None:
    pq = parse_query("How do large language model agents plan over long horizons in web environments?")
    model = AdaptiveModel(bias=1.386)  # sigmoid = 0.80
    d = decide(Fusion("adaptive"), pq, stats(("agent", 10)), 20_000, KW, SEM, model)
    assert d.method == "adaptive" and d.semantic_weight == pytest.approx(0.8, abs=0.001)
    text = d.explain()
    assert text.startswith("question-like query, 13 words; rare terms agent; lists agree 0/10")
    assert text.endswith("semantic 0.80 / keyword 0.20 (adapted to the query)")
    fixed = decide(Fusion("score", 0.45), pq, stats(("agent", 10)), 20_000, KW, SEM, model)
    assert fixed.semantic_weight == 0.45  # the model is not consulted
    assert fixed.explain() == (
        "question-like query, 13 words; rare terms agent; lists agree 0/10: semantic 0.45 / keyword 0.55 (fixed)"
    )
    assert FusionDecision(0.3, "rrf").explain() == "semantic 0.30 / keyword 0.70 (rank fusion)"


def test_default_fusion_is_the_fixed_weight() -> None:
    assert Fusion() == Fusion("score", 0.45, 60)


# -- long-query term selection -----------------------------------------------------------------------


def test_short_queries_keep_every_term() -> None:
    stems = ["graph", "neural", "network"]
    out = select_terms(stems, {"graph": 900, "neural": 5000, "network": 8000}, 10_000)
    assert [s.kept for s in out] == [True, True, True]
    assert [s.df for s in out] == [900, 5000, 8000]


def test_by_default_only_the_32_term_cap_applies() -> None:
    stems = [*sorted(QUERY_NOISE)[:5], *(f"t{i:02d}" for i in range(30))]
    df = {t: 900_000 for t in stems} | {f"t{i:02d}": i + 1 for i in range(30)}
    out = select_terms(stems, df, 1_000_000)
    kept = [s.term for s in out if s.kept]
    assert len(kept) == MAX_QUERY_TERMS and set(kept) >= {f"t{i:02d}" for i in range(30)}
    short = select_terms(stems[:MAX_QUERY_TERMS], df, 1_000_000)
    assert all(s.kept for s in short)


def test_long_queries_drop_noise_and_common_terms_and_keep_rare_ones(pruned: None) -> None:
    noise = sorted(QUERY_NOISE)[:4]
    common = [f"common{i}" for i in range(LONG_QUERY_TERMS)]  # long enough to be pruned
    rare = ["dice", "orthogon", "offlin"]
    stems = [*noise, *common, *rare, "unseen"]
    df = {**{t: 20 for t in noise}, **{t: 6000 for t in common}, "dice": 3, "orthogon": 40, "offlin": 90}
    out = {s.term: s.kept for s in select_terms(stems, df, 10_000)}
    assert all(out[t] for t in rare)
    assert not any(out[t] for t in noise + common)
    assert out["unseen"] is False  # in no paper: cannot help


def test_long_queries_keep_the_rarest_and_never_prune_to_nothing(pruned: None) -> None:
    stems = [f"t{i:02d}" for i in range(40)]
    df = {t: i + 1 for i, t in enumerate(stems)}
    kept = [s.term for s in select_terms(stems, df, 1_000_000) if s.kept]
    assert kept == stems[: len(kept)] and 3 <= len(kept) <= 32
    everywhere = {t: 900_000 for t in stems}
    everywhere["t07"] = 800_000
    kept = [s.term for s in select_terms(stems, everywhere, 1_000_000) if s.kept]
    assert "t07" in kept and len(kept) >= 3


def test_phrase_terms_are_never_pruned(pruned: None) -> None:
    stems = [f"w{i}" for i in range(LONG_QUERY_TERMS)] + ["state", "art"]
    df = {**{f"w{i}": 5 for i in range(LONG_QUERY_TERMS)}, "state": 90_000, "art": 80_000}
    out = {s.term: s.kept for s in select_terms(stems, df, 100_000, frozenset({"state", "art"}))}
    assert out["state"] and out["art"]


# -- Fusion("smoothed"): bounded normalisation and similar results lifting each other ---------------------


def test_keyword_ceiling_is_the_saturated_bm25_of_the_terms_used() -> None:
    n = 1_000
    terms = [TermStat("rare", 9, True), TermStat("common", 500, True), TermStat("pruned", 3, False)]
    idf = math.log(1 + (n - 9 + 0.5) / 9.5) + math.log(1 + (n - 500 + 0.5) / 500.5)
    assert keyword_ceiling(terms, n) == pytest.approx(idf * 2.2 * (1 + TITLE_BOOST))
    assert keyword_ceiling([TermStat("unseen", 0, True)], n) == 0.0


def test_smoothed_fusion_keeps_a_weak_best_keyword_match_weak() -> None:
    kw = [("a", 2.0)]  # the only keyword hit, a tenth of what the query could score
    sem = [("b", 0.50), ("c", 0.20)]
    assert fuse(kw, sem, Fusion("score", 0.4))[0][0] == "a"  # min-max makes any best match 1.0
    out = dict(fuse(kw, sem, SMOOTHED, ceiling=20.0))
    assert out["a"] == pytest.approx(0.6 * 0.1)
    assert out["b"] == pytest.approx(0.4 * (0.50 - COSINE_FLOOR) / (1 - COSINE_FLOOR))
    assert out["b"] > out["a"] and out["c"] == 0.0  # at or below the floor: no semantic evidence
    assert dict(fuse([("a", 50.0)], [], SMOOTHED, ceiling=20.0))["a"] == pytest.approx(0.6)  # capped at 1


def test_smooth_lifts_papers_similar_to_strong_results() -> None:
    vec = {
        "top": np.array([1.0, 0.0, 0.0]),
        "twin": np.array([0.9, math.sqrt(1 - 0.81), 0.0]),  # cosine 0.9 to "top"
        "other": np.array([0.0, 1.0, 0.0]),
        "far": np.array([0.0, 0.0, 1.0]),
    }
    ranked = [("top", 1.0), ("other", 0.55), ("twin", 0.5), ("novec", 0.45), ("far", 0.1), ("tail", 0.05)]
    out, lifts = smooth(ranked, vec, depth=5, k=1, weight=0.3)
    scores = dict(out)
    assert [p for p, _ in out][:2] == ["top", "twin"]  # lifted past "other" by its strong twin
    assert scores["twin"] == pytest.approx(0.5 + 0.3 * 1.0)
    assert lifts["twin"].neighbour == "top" and lifts["twin"].similarity == pytest.approx(0.9)
    assert scores["other"] == pytest.approx(0.55 + 0.3 * 0.5)  # its closest candidate is "twin"
    assert scores["novec"] == 0.45 and "novec" not in lifts  # no vector: unchanged
    assert out[-1] == ("tail", 0.05)  # below the smoothed depth: unchanged, still last
    assert smooth(ranked, {"top": vec["top"]}) == (ranked, {})  # nothing to compare with
