"""Derive simlab's import map from the sources: what each package imports, and the cycles.

    python scripts/import_layers.py            # print the generated tables
    python scripts/import_layers.py --check    # exit 1 if docs/architecture.md is out of date
    python scripts/import_layers.py --write    # rewrite the generated part of the page

The page's generated part sits between ``<!-- import-layers:start -->`` and
``<!-- import-layers:end -->``; ``tests/test_docs.py`` checks it, so the map of who imports
whom cannot go stale. Imports are read with :mod:`ast` (nothing is imported): a module-level
import is one that runs when the module is imported; a *deferred* one sits inside a function
(run on first use) or under ``if TYPE_CHECKING:`` (never run).
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "architecture.md"
START, END = "<!-- import-layers:start -->", "<!-- import-layers:end -->"
# source folder -> the package name it is imported as (pyproject.toml's package-dir)
FOLDERS = {
    "simlab": "simlab",
    "agents": "simlab.agents",
    "environments": "simlab.environments",
    "dashboard": "simlab.dashboard",
}
# the packages of the map, most specific first (a module belongs to the first that prefixes it)
PACKAGES = (
    "simlab.environments.gym",
    "simlab.environments.recsim_ng",
    "simlab.environments",
    "simlab.agents",
    "simlab.dashboard",
    "simlab.execution",
    "simlab.metrics",
    "simlab",
)


def modules(root: Path = ROOT) -> dict[str, Path]:
    """Every module of the four source folders: dotted name -> file."""
    out = {}
    for folder, package in FOLDERS.items():
        for path in sorted((root / folder).rglob("*.py")):
            parts = list(path.relative_to(root / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join([package, *parts])] = path
    return out


def package_of(module: str) -> str:
    """The map's package that holds ``module``."""
    return next(p for p in PACKAGES if module == p or module.startswith(p + "."))


NOW, LATER, TYPES = 0, 1, 2
"""How an import runs: when the module is imported, on first use (inside a function), or
never (under ``if TYPE_CHECKING:``, for annotations only)."""


def _kinds(tree: ast.Module) -> dict[int, int]:
    """Map the id of each import node inside a function or a ``TYPE_CHECKING`` block -> its kind."""
    out: dict[int, int] = {}
    for node in ast.walk(tree):
        kind = None
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            kind = LATER
        elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            kind = TYPES
        if kind is not None:
            for n in ast.walk(node):
                if isinstance(n, ast.Import | ast.ImportFrom):
                    out[id(n)] = max(out.get(id(n), NOW), kind)
    return out


def imports(name: str, path: Path, known: set[str]) -> dict[str, int]:
    """Map each simlab module that ``name`` imports to how: ``NOW``, ``LATER`` or ``TYPES``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    kinds = _kinds(tree)
    is_pkg = path.name == "__init__.py"
    found: dict[str, int] = {}
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_pkg else 0)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            # `from pkg import sub` names a submodule when one exists
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in known else mod for a in node.names]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                kind = kinds.get(id(node), NOW)
                found[target] = min(found.get(target, TYPES), kind)
    return found


def graph(root: Path = ROOT) -> dict[str, dict[str, int]]:
    """Map each module to {imported simlab module: how it is imported}."""
    mods = modules(root)
    known = set(mods)
    return {name: imports(name, path, known) for name, path in mods.items()}


def cycles(g: dict[str, dict[str, int]], upto: int = LATER) -> list[list[str]]:
    """Strongly connected components (of more than one module) of the imports of kind <= upto.

    With ``upto=LATER`` (the default) these are the runtime dependency cycles: modules that
    need each other, whether the import runs at import time or on first use.
    """
    edges = {m: sorted(t for t, k in ts.items() if k <= upto and t in g) for m, ts in g.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:  # Tarjan, recursive (the graph is small)
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10_000))
    try:
        for v in sorted(edges):
            if v not in index:
                visit(v)
    finally:  # the caller's limit back (a test process that imports this script goes on)
        sys.setrecursionlimit(limit)
    return sorted(out)


def levels(g: dict[str, dict[str, int]]) -> dict[str, int]:
    """Each module's import level: 0 imports no simlab module; k imports only levels below k.

    Counts module-level and first-use imports. The modules of a runtime cycle share a level
    (the cycle is one node), the level above everything any of them imports.
    """
    comp_of = {m: (m,) for m in g}
    for comp in cycles(g, LATER):
        for m in comp:
            comp_of[m] = tuple(comp)
    deps: dict[tuple, set[tuple]] = defaultdict(set)
    for m, ts in g.items():
        for t, k in ts.items():
            if k <= LATER and t in g and comp_of[t] != comp_of[m]:
                deps[comp_of[m]].add(comp_of[t])
    memo: dict[tuple, int] = {}

    def level(c: tuple) -> int:
        if c not in memo:
            memo[c] = 1 + max((level(d) for d in deps[c]), default=-1)
        return memo[c]

    return {m: level(comp_of[m]) for m in g}


def _short(module: str) -> str:
    return module.removeprefix("simlab.") if module != "simlab" else module


def tables(root: Path = ROOT) -> str:
    """The generated markdown: the package table and the import cycles."""
    g = graph(root)
    members: dict[str, list[str]] = defaultdict(list)
    by_kind: dict[str, dict[str, int]] = defaultdict(dict)
    for mod, targets in g.items():
        pkg = package_of(mod)
        members[pkg].append(mod)
        for target, kind in targets.items():
            other = package_of(target)
            if other != pkg:
                by_kind[pkg][other] = min(by_kind[pkg].get(other, TYPES), kind)
    out = [
        "| package | modules | imports when imported | imports on first use "
        "| for annotations only |",
        "|---|---:|---|---|---|",
    ]
    for pkg in PACKAGES:
        cells = []
        for kind in (NOW, LATER, TYPES):
            names = sorted(p for p, k in by_kind[pkg].items() if k == kind)
            cells.append(", ".join(f"`{p}`" for p in names) or "—")
        out.append(f"| `{pkg}` | {len(members[pkg])} | {' | '.join(cells)} |")
    lv = levels(g)
    in_cycle = {m for comp in cycles(g, LATER) for m in comp}
    out += [
        "",
        "Import levels (module-level and first-use imports; a module imports only modules of "
        "lower levels, except within a runtime cycle, marked ↻):",
        "",
        "| level | modules |",
        "|---:|---|",
    ]
    for k in range(max(lv.values()) + 1):
        names = sorted(m for m in lv if lv[m] == k)
        cell = ", ".join(f"`{_short(m)}`" + (" ↻" if m in in_cycle else "") for m in names)
        out.append(f"| {k} | {cell} |")
    sections = (
        (NOW, "Import cycles at import time (module-level imports)"),
        (LATER, "Runtime dependency cycles (module-level and first-use imports)"),
        (TYPES, "Cycles counting annotation-only imports too"),
    )
    for upto, title in sections:
        out += ["", f"{title}:", ""]
        found = cycles(g, upto)
        out += [f"- {' ↔ '.join(f'`{_short(m)}`' for m in comp)}" for comp in found] or ["- none"]
    return "\n".join(out) + "\n"


def main() -> int:
    """Print, check or write the generated part of docs/architecture.md."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    text = tables()
    if not (args.check or args.write):
        sys.stdout.write(text)
        return 0
    page = PAGE.read_text(encoding="utf-8")
    head, _, rest = page.partition(START)
    _, _, tail = rest.partition(END)
    new = f"{head}{START}\n{text}{END}{tail}"
    if args.write:
        PAGE.write_text(new, encoding="utf-8")
        return 0
    if new != page:
        print("docs/architecture.md: import map out of date: run scripts/import_layers.py --write")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
