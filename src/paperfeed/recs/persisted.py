"""A fitted :class:`~paperfeed.recs.model.UserModel` as bytes and back, for the ``user_models``
table: any process ranks with a user's model, and a digest run scores instead of refitting.

What is stored is what :func:`~paperfeed.recs.model.fit` learned - the text weights, the
embedding weights, the intercept, the category shares, the standardisation of each component,
the background's sorted blend (the relevance percentiles) - plus the *ids* of the library and
"not interested" papers and their weights. Their feature rows are not stored (the papers' text
and vectors are in the database already and every ranker process caches them): :func:`loads`
takes a function that gives them back, in the stored order.

The format is a NumPy ``.npz`` archive (no pickle: loading runs no code) with one JSON member
for the scalars and small mappings; the sorted text-weight buckets are stored as 16-bit deltas
(32-bit where a gap is wider). About 140 KB a user (20,000 text weights), read in about a
millisecond. :func:`settings_key` changes
whenever a model setting does (every upper-case number or string of
:mod:`paperfeed.recs.model`, plus the caller's background settings), so stored models of older
settings are refitted rather than misread.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from paperfeed.recs import model as m

FORMAT = 1

# Fields of UserModel and how they are stored; a field missing here fails loudly (tests check
# that every field round-trips), so a new model field cannot be silently dropped.
_ARRAYS = ("text_val", "coef_emb", "pos_weight", "background_blend")
_SCALARS = ("intercept", "category_share")
_FEATURES = ("pos", "neg")
_SPECIAL = ("text_idx", "parts")


def settings_key(*extra: object) -> str:
    """A short hash of every model setting (upper-case numbers and strings of the model module)
    and of ``extra`` (e.g. the background size and window): part of a stored model's
    fingerprint."""
    consts = {k: v for k, v in sorted(vars(m).items()) if k.isupper() and isinstance(v, (int, float, str))}
    return hashlib.sha256(json.dumps([FORMAT, consts, [str(e) for e in extra]]).encode()).hexdigest()[:16]


def _fields() -> list[str]:
    return [f.name for f in dataclasses.fields(m.UserModel) if not f.name.startswith("_")]


def dumps(model: m.UserModel) -> bytes:
    known = set(_ARRAYS) | set(_SCALARS) | set(_FEATURES) | set(_SPECIAL)
    unknown = [f for f in _fields() if f not in known]
    if unknown:
        raise TypeError(f"paperfeed.recs.persisted does not know how to store UserModel.{unknown[0]}")
    meta: dict[str, Any] = {k: getattr(model, k) for k in _SCALARS}
    meta["parts"] = {k: [c.mean, c.std] for k, c in model.parts.items()}
    meta["pos"] = list(model.pos.ids)
    meta["neg"] = None if model.neg is None else list(model.neg.ids)
    arrays: dict[str, Any] = {k: np.asarray(getattr(model, k)) for k in _ARRAYS}
    delta = np.diff(model.text_idx.astype(np.int64), prepend=0)
    arrays["text_idx_delta"] = delta.astype(np.uint16 if len(delta) and delta.max() < 2**16 else np.int32)
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # not compressed: inflating costs more than reading the extra bytes
    return buf.getvalue()


def loads(blob: bytes, features: Callable[[Sequence[str]], m.Features | None]) -> m.UserModel | None:
    """The model stored in ``blob``, with its library (and "not interested") rows from
    ``features(ids)``; None when those rows cannot all be had (a paper is gone): refit then."""
    with np.load(io.BytesIO(blob), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(arrays.pop("meta").tobytes().decode())
    pos = features(meta["pos"])
    if pos is None or pos.ids != meta["pos"]:
        return None
    neg = None
    if meta["neg"] is not None:
        neg = features(meta["neg"])
        if neg is None or neg.ids != meta["neg"]:
            return None
    return m.UserModel(
        text_idx=np.cumsum(arrays.pop("text_idx_delta"), dtype=np.int64).astype(np.int32),
        **{k: arrays[k] for k in _ARRAYS},
        intercept=float(meta["intercept"]),
        category_share={str(k): float(v) for k, v in meta["category_share"].items()},
        parts={k: m.Component(float(a), float(b)) for k, (a, b) in meta["parts"].items()},
        pos=pos,
        neg=neg,
    )
