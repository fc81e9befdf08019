"""A recursive diff of paperfeed's Hugging Face-shaped JSON against the Hub's own responses.

Used by the fidelity tests: every key, value, type and key presence/absence is compared (``1``
and ``1.0``, ``0`` and ``False``, a missing key and ``null`` are all different). The documented
allow-list (docs/hf-compat.md, "Intended differences") is applied by the callers, not here.
"""

from __future__ import annotations

from typing import Any

_MISSING = object()


def diff(ours: Any, theirs: Any, path: str = "$") -> list[str]:
    """Every difference between two JSON values, as ``path: ours != theirs`` lines."""
    if type(ours) is not type(theirs):
        return [f"{path}: {_show(ours)} != {_show(theirs)}"]
    if isinstance(ours, dict):
        out: list[str] = []
        for key in dict.fromkeys([*theirs, *ours]):
            a, b = ours.get(key, _MISSING), theirs.get(key, _MISSING)
            if a is _MISSING or b is _MISSING:
                out.append(f"{path}.{key}: {_show(a)} != {_show(b)}")
            else:
                out.extend(diff(a, b, f"{path}.{key}"))
        return out
    if isinstance(ours, list):
        if len(ours) != len(theirs):
            return [f"{path}: {len(ours)} items != {len(theirs)} items"]
        return [d for i, (a, b) in enumerate(zip(ours, theirs, strict=True)) for d in diff(a, b, f"{path}[{i}]")]
    return [] if ours == theirs else [f"{path}: {_show(ours)} != {_show(theirs)}"]


def _show(value: Any) -> str:
    if value is _MISSING:
        return "(absent)"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
