"""The import graph of ``src/paperfeed`` runs one way, as the README's architecture section draws it.

A small AST walk, no third-party tool: every ``import``/``from ... import`` of a paperfeed module,
at module level, inside a function or under ``TYPE_CHECKING``, is an arrow. The test fails when
an arrow points from a lower layer to a higher one, between two independent packages of the same
layer, or when arrows form a cycle (an import moved into a function still counts, so a cycle
cannot be hidden that way; a function-level import is only fine for deferring a heavy module).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "paperfeed"

# Bottom to top. A module may import its own component and any component of a lower layer;
# components of the same layer are independent of each other. A component is the first name
# below ``paperfeed`` (a subpackage or a top-level module); ``paperfeed`` itself is its
# ``__init__`` (the version).
LAYERS: list[set[str]] = [
    {"paperfeed", "config", "records", "latex", "latex_text", "periods", "ranking"},  # pure code, settings; base
    {"store"},  # the only code that runs SQL
    {"ingest", "search", "mail", "cards"},
    {"recs"},  # the "for you" ranker: store/ (and search/) only
    {"community"},
    {"personal"},  # follows, claims, private feed tokens, personal views: acts for a community User
    {"digest", "library"},  # digest: its personal sections read the personal layer; library: acts for a User
    # the self-running pipeline (leader election, scheduled harvest, embedding, digest passes)
    # drives ingest, search and digest.
    {"pipeline"},
    {"web"},
    {"cli"},
    {"__main__"},
]
BASE = LAYERS[0]  # the base modules may use each other (records and latex do not need config, but may)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if "migrations" not in p.parts}


def component(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def layer(module: str) -> int:
    for i, names in enumerate(LAYERS):
        if component(module) in names:
            return i
    raise AssertionError(f"{module} is in no layer: add its package to LAYERS (and the README picture)")


def imports(module: str, path: Path, known: set[str]) -> Iterator[tuple[str, int]]:
    """(imported paperfeed module, line) for every import statement in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "paperfeed":
                    yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            if base.split(".")[0] != "paperfeed":
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                yield (sub if sub in known else base), node.lineno


def graph() -> dict[str, dict[str, int]]:
    mods = modules()
    known = set(mods)
    return {m: dict(imports(m, p, known)) for m, p in mods.items()}


def test_readme_draws_every_component() -> None:
    """The README's architecture picture names every package and top-level module of a layer."""
    readme = (SRC.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Architecture", 1)[1].split("\n## ", 1)[0]
    present = {component(m) for m in modules()} - {"paperfeed", "__main__"}
    missing = [c for c in sorted(present) if f"{c}/" not in section and f"{c}.py" not in section]
    assert not missing, f"README's architecture section does not mention: {missing}"


def test_every_module_is_in_a_layer() -> None:
    for module in modules():
        layer(module)


def test_no_arrow_points_up_or_sideways() -> None:
    bad = []
    for src, targets in graph().items():
        for dst, line in targets.items():
            if component(src) == component(dst) or (component(src) in BASE and component(dst) in BASE):
                continue
            if layer(dst) >= layer(src):
                why = "a higher layer" if layer(dst) > layer(src) else "an independent package of the same layer"
                bad.append(f"{src}:{line} imports {dst} ({why})")
    assert not bad, "imports against the layers:\n" + "\n".join(bad)


def strongly_connected(g: dict[str, dict[str, int]]) -> list[list[str]]:
    """Tarjan's algorithm; the components with more than one module are import cycles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in g.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in g:
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles() -> None:
    g = graph()
    cycles = strongly_connected(g)
    lines = [
        " <-> ".join(c) + ": " + "; ".join(f"{s}:{g[s][d]} -> {d}" for s in c for d in g[s] if d in c) for c in cycles
    ]
    assert not cycles, "import cycles:\n" + "\n".join(lines)


@pytest.mark.parametrize(
    ("src", "dst", "ok"),
    [
        ("paperfeed.store.papers", "paperfeed.records", True),
        ("paperfeed.store.papers", "paperfeed.ingest.pipeline", False),
        ("paperfeed.community.comments", "paperfeed.web.render", False),
        ("paperfeed.community.accounts", "paperfeed.digest.send", False),
        ("paperfeed.web.pages", "paperfeed.search.hybrid", True),
        ("paperfeed.pipeline.runner", "paperfeed.digest.schedule", True),
        ("paperfeed.digest.schedule", "paperfeed.pipeline.runner", False),
        ("paperfeed.pipeline.runner", "paperfeed.web.app", False),
    ],
)
def test_layer_rule_itself(src: str, dst: str, ok: bool) -> None:
    assert (layer(dst) < layer(src)) is ok
