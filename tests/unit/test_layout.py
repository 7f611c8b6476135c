"""The architecture, kept: the protocol core does no I/O, and nothing imports in a circle.

Read from the source (AST), never by importing it, so an import hidden in a
function or under TYPE_CHECKING counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "freevrrpd"
FORBIDDEN = {"socket", "select", "selectors", "threading", "time", "subprocess", "os",
             "asyncio", "pyroute2"}


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports(name: str, path: Path, known: set[str]) -> tuple[set[str], set[str]]:
    """(project modules, other top-level modules) that ``name`` imports anywhere."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    internal, external = set(), set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            targets = [base, *(f"{base}.{a.name}" for a in node.names)]
        else:
            continue
        for target in targets:
            if target in known:
                internal.add(target)
            elif target.split(".")[0] != "freevrrpd":
                external.add(target.split(".")[0])
    internal.discard(name)
    return internal, external


def graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    mods = modules()
    edges, outside = {}, {}
    for name, path in mods.items():
        edges[name], outside[name] = imports(name, path, set(mods))
        # A package importing its own children is how it re-exports them.
        edges[name] = {m for m in edges[name] if not m.startswith(name + ".")}
    return edges, outside


def test_the_core_imports_no_io_directly_or_through_another_module() -> None:
    edges, outside = graph()
    bad = []
    for start in (n for n in edges if n == "freevrrpd.core" or n.startswith("freevrrpd.core.")):
        seen, todo = set(), [start]
        while todo:
            mod = todo.pop()
            if mod not in seen:
                seen.add(mod)
                bad += [f"{start} -> {mod} imports {e}" for e in outside[mod] & FORBIDDEN]
                todo += edges[mod]
    assert bad == []


def test_no_import_cycle() -> None:
    edges, _ = graph()
    cycles = []

    def visit(mod: str, path: list[str]) -> None:
        for nxt in sorted(edges[mod]):
            if nxt in path:
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in done:
                visit(nxt, [*path, nxt])
        done.add(mod)

    done: set[str] = set()
    for mod in sorted(edges):
        if mod not in done:
            visit(mod, [mod])
    assert cycles == []


def test_layers_import_downwards_only() -> None:
    """core <- config, net <- vrid <- daemon <- cli/ctl (docs: README, Layout)."""
    rank = {"core": 0, "config": 1, "net": 1, "vrid": 2, "daemon": 3, "cli": 4, "ctl": 4}
    edges, _ = graph()
    upward = []
    for mod, targets in edges.items():
        layer = mod.split(".")[1] if "." in mod else None
        for target in targets:
            other = target.split(".")[1] if "." in target else None
            if layer in rank and other in rank and rank[other] > rank[layer]:
                upward.append(f"{mod} -> {target}")
            if layer in ("config", "net") and other in ("config", "net") and layer != other:
                upward.append(f"{mod} -> {target}")
    assert upward == []


def test_the_package_holds_no_harness() -> None:
    assert not [n for n in modules() if n.startswith(("freevrrpd.lab", "freevrrpd.demo"))]


def test_no_module_is_over_400_lines() -> None:
    long = {n: len(p.read_text().splitlines()) for n, p in modules().items()}
    assert {n: lines for n, lines in long.items() if lines > 400} == {}
