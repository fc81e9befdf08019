"""``paperfeed eval --set NAME|all``: score every mode on the evaluation sets kept in ``data/eval/``.

Runs on demand only. Each set's corpus is indexed with the product's own pipeline under a work folder
(reused on later runs) and queried through the same ``SearchService`` the site uses, top 100:

* ``scifact`` and ``known-item``: BEIR-style folders (:mod:`paperfeed.search.eval_runner`);
* ``judged``: a home holding the judged corpus (``--home``), or one the caller builds from ``../shared/data``
  with the ordinary importers and indexer (``paperfeed eval`` does: :mod:`paperfeed.cli.search`).

Besides the plain modes it scores ``hybrid-adaptive`` (the fitted per-query weight) and ``hybrid-smoothed``
(bounded fusion with similar results lifting each other), neither the default, so they can be compared with
the default fixed weight, and checks the targets of issue 16 on the test halves
(:func:`targets`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from paperfeed.config import Settings
from paperfeed.search.eval_runner import prepare, run_queries, score
from paperfeed.search.eval_sets import SETS, EvalQueries, load_split, materialize_known_item
from paperfeed.search.evaluate import judged_at_k, ndcg_at_k, precision_at_k
from paperfeed.search.fusion import SMOOTHED, Fusion
from paperfeed.search.hybrid import MODES, SearchService
from paperfeed.search.lexical import LexicalIndex
from paperfeed.store.db import Database

ADAPTIVE = Fusion("adaptive")
VARIANTS = {"hybrid-adaptive": ADAPTIVE, "hybrid-smoothed": SMOOTHED}  # hybrid with another fusion
SUITE_MODES = (*MODES, *VARIANTS)


def judged_scores(run: dict[str, list[str]], qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    return {
        "ndcg@5": round(ndcg_at_k(run, qrels, 5), 4),
        "ndcg@10": round(ndcg_at_k(run, qrels, 10), 4),
        "p@5(2)": round(precision_at_k(run, qrels, 5, 2), 4),
        "p@5(1+)": round(precision_at_k(run, qrels, 5, 1), 4),
        "judged@5": round(judged_at_k(run, qrels, 5), 4),
    }


BuildHome = Callable[[Path], None]


def open_set(
    name: str,
    data_dir: Path,
    shared: Path,
    workdir: Path,
    *,
    home: Path | None = None,
    build_home: BuildHome | None = None,
    progress: bool = True,
) -> tuple[Settings, Database]:
    """An indexed database for set ``name`` (built under ``workdir`` on first use). The judged corpus is a
    paperfeed home: ``home``, or ``workdir/judged`` made by ``build_home`` (the importers live in a layer
    this module may not import; the CLI passes them in)."""
    if name == "scifact":
        return prepare(shared / "scifact", workdir / "scifact", progress=progress)
    if name == "known-item":
        beir = materialize_known_item(data_dir, shared, workdir / "known-item-beir")
        return prepare(beir, workdir / "known-item", progress=progress)
    if home is None:
        home = workdir / "judged"
        if not (home / "paperfeed.db").exists():
            if build_home is None:
                raise FileNotFoundError(f"{home}: no judged corpus there; pass --home or let paperfeed eval build it")
            build_home(home)
    settings = replace(Settings(home=home), secret_key="eval")
    db = Database(settings.db_url)
    LexicalIndex(settings).update(db, progress=progress)  # a no-op unless the index format changed
    return settings, db


def score_split(
    service: SearchService, variants: dict[str, SearchService], qs: EvalQueries, modes: Iterable[str]
) -> dict[str, dict[str, float]]:
    """Scores of each mode; ``variants`` holds a service per :data:`VARIANTS` mode."""
    out: dict[str, dict[str, float]] = {}
    for mode in modes:
        svc, real_mode = (variants[mode], "hybrid") if mode in variants else (service, mode)
        run = run_queries(svc, qs.queries, real_mode)
        out[mode] = judged_scores(run, qs.qrels) if qs.name == "judged" else score(run, qs.qrels)
        out[mode]["queries"] = float(len(qs.queries))
    return out


def evaluate_sets(
    names: Iterable[str],
    *,
    splits: Iterable[str] = ("test",),
    modes: Iterable[str] = SUITE_MODES,
    data_dir: Path = Path("data/eval"),
    shared: Path = Path("../shared/data"),
    workdir: Path = Path("/tmp/paperfeed-eval"),
    home: Path | None = None,
    build_home: BuildHome | None = None,
    progress: bool = True,
    on_result: Callable[[str, str, str, dict[str, float]], Any] | None = None,
) -> dict[str, dict[str, dict[str, dict[str, float]]]]:
    """``{set: {split: {mode: metrics}}}``; ``home`` is the judged set's corpus when given."""
    results: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    modes = list(modes)
    for name in names:
        if name not in SETS:
            raise ValueError(f"unknown evaluation set {name!r}; choose from {', '.join(SETS)}")
        splits_q = [load_split(name, split, data_dir, shared) for split in splits]
        settings, db = open_set(name, data_dir, shared, workdir, home=home, build_home=build_home, progress=progress)
        service = SearchService(settings, db)
        variants = {m: SearchService(settings, db, fusion=f) for m, f in VARIANTS.items() if m in modes}
        for qs in splits_q:
            scores = score_split(service, variants, qs, modes)
            results.setdefault(name, {})[qs.split] = scores
            if on_result:
                for mode, metrics in scores.items():
                    on_result(name, qs.split, mode, metrics)
        db.dispose()
    return results


def targets(results: dict[str, dict[str, dict[str, dict[str, float]]]]) -> list[tuple[str, bool, str]]:
    """Issue 16's targets on the test halves that ``results`` hold: ``(target, met, figures)``."""
    out: list[tuple[str, bool, str]] = []
    for name, splits in results.items():
        test = splits.get("test")
        if not test or not {"keyword", "semantic", "hybrid"} <= test.keys():
            continue
        metric = "ndcg@5" if name == "judged" else "ndcg@10"
        kw, sem, hyb = (test[m][metric] for m in ("keyword", "semantic", "hybrid"))
        out.append((f"{name}: hybrid >= best part ({metric})", hyb >= max(kw, sem), f"{hyb:.4f} vs {max(kw, sem):.4f}"))
        if name == "scifact":
            out.append(("scifact: hybrid nDCG@10 >= 0.74", hyb >= 0.74, f"{hyb:.4f}"))
        if name == "judged":
            out.append(("judged: hybrid nDCG@5 >= semantic + 0.05", hyb >= sem + 0.05, f"{hyb:.4f} vs {sem:.4f}"))
    return out
