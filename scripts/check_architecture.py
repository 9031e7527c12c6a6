"""Check deepsad's import architecture: no import cycles, no private names across modules.

Reads the source of ``src/deepsad`` (nothing is imported or executed) and reports

* every import cycle: a strongly connected component of more than one module in the
  import graph. The graph holds every ``import`` statement of a module, at any depth:
  an import inside a function runs when the function is called, so a circle through
  it is still a circle. ``from pkg import name`` is an edge to ``pkg.name`` when that
  is a module, else to ``pkg`` (its ``__init__``); so a module that imports a name
  from its own package's ``__init__`` closes a circle with the ``__init__`` that
  imports it, while one that imports a sibling module does not. Imports under
  ``if TYPE_CHECKING:`` count too: in an ``__init__`` they mirror the names it loads
  lazily at run time.
* every private name imported across modules: ``from A import _name`` where ``A`` is
  another deepsad module, and ``A._name`` read through an imported module. A private
  *module* (``pkg._mod``) is private to its package: modules inside ``pkg`` may import
  it, modules outside may not. The imported name is judged, not the alias it is bound
  to (``from m import Public as _Alias`` is fine).

Usage::

    python scripts/check_architecture.py [--src src] [--package deepsad] [--json]

Exit status 0 when nothing is found, 1 otherwise. Standard library only.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Edge:
    """One import of a package module by another, as written in the importer's source.

    Attributes
    ----------
    importer, target : str
        Dotted module names; ``target`` is the module the statement loads (a package's
        name stands for its ``__init__``).
    line : int
        Line of the import statement in the importer.
    lazy : bool
        Whether the statement sits inside a function (runs only when that is called).
    type_checking : bool
        Whether the statement sits under ``if TYPE_CHECKING:``.
    """

    importer: str
    target: str
    line: int
    lazy: bool = False
    type_checking: bool = False


@dataclass(frozen=True)
class PrivateImport:
    """A private name (or private module) one module takes from another.

    Attributes
    ----------
    importer : str
        The module doing the import.
    line : int
        Line of the statement or attribute access.
    source : str
        The module the name comes from.
    name : str
        The private name (for a private module, its dotted name).
    reason : str
        Why it is reported, in words.
    """

    importer: str
    line: int
    source: str
    name: str
    reason: str


@dataclass
class Report:
    """What :func:`check` found.

    Attributes
    ----------
    cycles : list of list of str
        The modules of each import cycle (strongly connected component), sorted.
    chains : list of list of str
        For each cycle, the shortest circular chains through its modules
        (``a -> b -> a``), one per module, without repeats.
    private_imports : list of PrivateImport
    """

    cycles: list[list[str]] = field(default_factory=list)
    chains: list[list[list[str]]] = field(default_factory=list)
    private_imports: list[PrivateImport] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.cycles and not self.private_imports

    def restricted_to(self, prefix: str) -> Report:
        """The findings that involve a module named ``prefix`` or inside it."""

        def inside(module: str) -> bool:
            return module == prefix or module.startswith(prefix + ".")

        keep = [i for i, cycle in enumerate(self.cycles) if any(inside(m) for m in cycle)]
        return Report(
            cycles=[self.cycles[i] for i in keep],
            chains=[self.chains[i] for i in keep],
            private_imports=[p for p in self.private_imports if inside(p.importer) or inside(p.source)],
        )

    def without(self, prefix: str) -> Report:
        """The findings that involve no module named ``prefix`` or inside it."""
        inside = self.restricted_to(prefix)
        return Report(
            cycles=[c for c in self.cycles if c not in inside.cycles],
            chains=[ch for c, ch in zip(self.cycles, self.chains) if c not in inside.cycles],
            private_imports=[p for p in self.private_imports if p not in inside.private_imports],
        )


def is_private(name: str) -> bool:
    """Whether ``name`` is private by convention (a leading underscore, not a dunder)."""
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def discover_modules(src: Path, package: str) -> dict[str, Path]:
    """Every module of ``package`` under the source root ``src``, by dotted name.

    A package's ``__init__.py`` is listed under the package's own name.
    """
    root = src / package
    modules: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _is_package(module: str, modules: dict[str, Path]) -> bool:
    return modules[module].name == "__init__.py"


def _resolve_relative(importer: str, level: int, module: str | None, modules: dict[str, Path]) -> str:
    """The absolute name of ``from <level dots><module> import ...`` written in ``importer``."""
    package = importer if _is_package(importer, modules) else importer.rpartition(".")[0]
    parts = package.split(".")
    base = parts[: len(parts) - (level - 1)] if level > 1 else parts
    return ".".join(base + ([module] if module else []))


def _longest_module(dotted: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of ``dotted`` that is a known module (None if none is)."""
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


def _is_type_checking_test(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST, lazy: bool = False, type_checking: bool = False) -> Iterator[tuple[ast.AST, bool, bool]]:
    """Every node under ``node`` with whether it is inside a function / a TYPE_CHECKING block."""
    for child in ast.iter_child_nodes(node):
        child_lazy = lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        yield child, lazy, type_checking
        if isinstance(child, ast.If) and _is_type_checking_test(child.test):
            for stmt in child.body:
                yield stmt, child_lazy, True
                yield from _walk(stmt, child_lazy, True)
            for stmt in child.orelse:
                yield stmt, child_lazy, type_checking
                yield from _walk(stmt, child_lazy, type_checking)
        else:
            yield from _walk(child, child_lazy, type_checking)


@dataclass
class _ModuleScan:
    edges: list[Edge] = field(default_factory=list)
    private: list[PrivateImport] = field(default_factory=list)


def _private_module_violation(importer: str, target: str) -> str | None:
    """The first private module on ``target``'s dotted path that ``importer`` may not import.

    ``pkg._mod`` (and anything below it) is private to ``pkg``: modules named ``pkg`` or
    ``pkg.<...>`` may import it.
    """
    parts = target.split(".")
    for i, part in enumerate(parts):
        if is_private(part):
            owner = ".".join(parts[:i])
            if not (importer == owner or importer.startswith(owner + ".")):
                return ".".join(parts[: i + 1])
    return None


def scan_module(module: str, modules: dict[str, Path], package: str) -> _ModuleScan:
    """The package-internal imports of ``module`` and the private names it takes."""
    path = modules[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    scan = _ModuleScan()
    # local names bound to package modules, for reading ``module._name`` attributes
    bound: dict[str, str] = {}

    def add_target(target: str, line: int, lazy: bool, type_checking: bool) -> None:
        if target != module:
            scan.edges.append(Edge(module, target, line, lazy, type_checking))
        bad = _private_module_violation(module, target)
        if bad is not None:
            scan.private.append(
                PrivateImport(module, line, bad.rpartition(".")[0], bad, f"private module {bad} imported from outside its package")
            )

    def in_package(name: str) -> bool:
        return name == package or name.startswith(package + ".")

    nodes = list(_walk(tree))
    for node, lazy, type_checking in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if not in_package(alias.name):
                    continue
                target = _longest_module(alias.name, modules)
                if target is None:
                    continue
                add_target(target, node.lineno, lazy, type_checking)
                if alias.asname:
                    bound[alias.asname] = target
                else:
                    bound[alias.name.split(".")[0]] = alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            source = _resolve_relative(module, node.level, node.module, modules) if node.level else node.module
            if source is None or not in_package(source):
                continue
            source_module = _longest_module(source, modules)
            if source_module is None:
                continue
            for alias in node.names:
                submodule = f"{source_module}.{alias.name}"
                if submodule in modules:
                    add_target(submodule, node.lineno, lazy, type_checking)
                    bound[alias.asname or alias.name] = submodule
                    continue
                add_target(source_module, node.lineno, lazy, type_checking)
                if is_private(alias.name) and source_module != module:
                    scan.private.append(
                        PrivateImport(
                            module, node.lineno, source_module, alias.name, f"private name imported from {source_module}"
                        )
                    )
    # ``mod._name`` through a module bound above: the same rule as ``from mod import _name``
    for node, _lazy, _type_checking in nodes:
        if not isinstance(node, ast.Attribute) or not is_private(node.attr):
            continue
        owner = _dotted_module(node.value, bound, modules)
        if owner is None or owner == module:
            continue
        attribute = f"{owner}.{node.attr}"
        if attribute in modules:
            bad = _private_module_violation(module, attribute)
            if bad is not None:
                scan.private.append(
                    PrivateImport(module, node.lineno, owner, bad, f"private module {bad} used from outside its package")
                )
        else:
            scan.private.append(
                PrivateImport(module, node.lineno, owner, node.attr, f"private name read from module {owner}")
            )
    return scan


def _dotted_module(node: ast.expr, bound: dict[str, str], modules: dict[str, Path]) -> str | None:
    """The package module an expression like ``name`` or ``name.sub.mod`` denotes, if any."""
    if isinstance(node, ast.Name):
        return bound.get(node.id)
    if isinstance(node, ast.Attribute):
        owner = _dotted_module(node.value, bound, modules)
        if owner is not None and f"{owner}.{node.attr}" in modules:
            return f"{owner}.{node.attr}"
    return None


def import_edges(modules: dict[str, Path], package: str) -> list[Edge]:
    """Every package-internal import edge of every module."""
    return [edge for module in modules for edge in scan_module(module, modules, package).edges]


def strongly_connected_components(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iteratively (import graphs can be deep); components sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
    return sorted(components)


def _shortest_cycle(start: str, graph: dict[str, set[str]], members: set[str]) -> list[str]:
    """The shortest chain ``start -> ... -> start`` inside one component (breadth first)."""
    previous: dict[str, str] = {}
    queue = deque([start])
    seen = {start}
    while queue:
        node = queue.popleft()
        for child in sorted(graph[node] & members):
            if child == start:
                path = [node]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return [*reversed(path), start]
            if child not in seen:
                seen.add(child)
                previous[child] = node
                queue.append(child)
    return [start]  # unreachable for a true component


def find_cycles(edges: Iterable[Edge]) -> tuple[list[list[str]], list[list[list[str]]]]:
    """The import cycles among ``edges`` and, for each, its shortest chains (see :class:`Report`)."""
    graph: dict[str, set[str]] = {}
    for edge in edges:
        graph.setdefault(edge.importer, set()).add(edge.target)
        graph.setdefault(edge.target, set())
    cycles = [c for c in strongly_connected_components(graph) if len(c) > 1]
    chains = []
    for cycle in cycles:
        members = set(cycle)
        found: list[list[str]] = []
        covered: set[tuple[str, str]] = set()
        for module in cycle:
            chain = _shortest_cycle(module, graph, members)
            links = set(zip(chain, chain[1:]))
            if not links <= covered:
                found.append(chain)
                covered |= links
        chains.append(found)
    return cycles, chains


def check(src: Path = REPO_ROOT / "src", package: str = "deepsad") -> Report:
    """Scan ``package`` under ``src`` for import cycles and private cross-module imports."""
    modules = discover_modules(src, package)
    edges: list[Edge] = []
    private: list[PrivateImport] = []
    for module in modules:
        scan = scan_module(module, modules, package)
        edges += scan.edges
        private += scan.private
    cycles, chains = find_cycles(edges)
    private = sorted(set(private), key=lambda p: (p.importer, p.line, p.name))
    return Report(cycles=cycles, chains=chains, private_imports=private)


def _edge_notes(edges: list[Edge]) -> dict[tuple[str, str], str]:
    notes: dict[tuple[str, str], str] = {}
    for edge in sorted(edges, key=lambda e: e.line):
        kind = "lazy " if edge.lazy else ""
        kind += "TYPE_CHECKING " if edge.type_checking else ""
        notes.setdefault((edge.importer, edge.target), f"{kind}line {edge.line}")
    return notes


def format_report(report: Report, edges: list[Edge] | None = None) -> str:
    """The report in words: each cycle as module chains, each private import with its line."""
    notes = _edge_notes(edges or [])
    lines = []
    if report.cycles:
        lines.append(f"{len(report.cycles)} import cycle(s):")
        for cycle, chains in zip(report.cycles, report.chains):
            lines.append(f"  cycle of {len(cycle)} modules: {', '.join(cycle)}")
            for chain in chains:
                steps = [chain[0]]
                for a, b in zip(chain, chain[1:]):
                    note = notes.get((a, b))
                    steps.append(f"-> {b}" + (f" ({a}: {note})" if note else ""))
                lines.append("    " + " ".join(steps))
    else:
        lines.append("no import cycles")
    if report.private_imports:
        lines.append(f"{len(report.private_imports)} private import(s) across modules:")
        for item in report.private_imports:
            lines.append(f"  {item.importer}:{item.line}: {item.name} ({item.reason})")
    else:
        lines.append("no private imports across modules")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", type=Path, default=REPO_ROOT / "src", help="source root (default: src/)")
    parser.add_argument("--package", default="deepsad", help="top-level package (default: deepsad)")
    parser.add_argument("--json", action="store_true", help="print the findings as JSON")
    args = parser.parse_args(argv)
    report = check(args.src, args.package)
    if args.json:
        print(
            json.dumps(
                {
                    "cycles": [{"modules": c, "chains": ch} for c, ch in zip(report.cycles, report.chains)],
                    "private_imports": [asdict(p) for p in report.private_imports],
                },
                indent=2,
            )
        )
    else:
        print(format_report(report, import_edges(discover_modules(args.src, args.package), args.package)))
    return 0 if report.clean else 1


if __name__ == "__main__":
    sys.exit(main())
