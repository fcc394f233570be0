"""The package's import graph has no cycles.

The rules (what this test enforces, read from the source with ``ast``, no import needed):

1. Import-time imports (module level and class bodies, including under ``try``/``if``, but not under
   ``if TYPE_CHECKING:``) form no cycle. Importing ``bpflink.a.b`` runs ``bpflink/a/__init__.py`` too, so it
   counts as an import of the package ``bpflink.a`` as well (except from inside ``bpflink.a``: a package is
   always initialised before its modules). A cycle here is a partially initialised module
   waiting to happen, whatever the import order.
2. Deferred imports (inside a function) and type-only imports (under ``if TYPE_CHECKING:``) count too: together
   with rule 1's they form no cycle either, except through the back edges listed in ``BACK_EDGES``. Each of
   those is a deferred import from a lower module up to the one implementing something it offers
   (``Link.ensure`` is ``lifecycle.ensure``), with its reason; it must stay deferred, never an import-time
   import, and an entry that no longer exists fails the test (the list only shrinks). A new cycle is broken
   by moving code down a layer, not by adding an entry, unless it is such a convenience.

The root package ``bpflink`` itself is left out: its ``__getattr__`` imports every public name on first use,
which by design points at everything.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest

from conftest import python_sources

pytestmark = pytest.mark.hostonly  # source layout only

SRC = Path(__file__).resolve().parents[1] / "src" / "bpflink"

#: (importer, imported): deferred imports from a lower layer up to the module implementing a convenience of it
BACK_EDGES: dict[tuple[str, str], str] = {
    ("bpflink.link", "bpflink.lifecycle"): "Link.ensure() is lifecycle.ensure()",
    ("bpflink.program", "bpflink.object"): "Program.from_object() opens an Object for one program",
    ("bpflink.object", "bpflink.attach.sections"): "Object.attach*() attach its programs by section name",
    ("bpflink.families.cgroup", "bpflink.query"): "opts.Cgroup ordering asks query() once (a kernel.trial) whether the "
                                             "kernel keeps cgroup revisions",
    ("bpflink.testing._names", "bpflink.testing._cgroup"): "sweep() removes a dead run's cgroups with Cgroup",
    ("bpflink.testing._names", "bpflink.testing._fs"): "sweep() removes a dead run's bpffs dirs with BpfDir",
    ("bpflink.testing._require", "bpflink.cli"): "bpf_requires takes the names `bpflink probe --require` takes "
                                                 "(the CLI's parser; to move below both)",
}


def _modules() -> dict[str, Path]:
    found = {}
    for path in python_sources(SRC):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _targets(name: str) -> Iterable[str]:
    """``name`` and the packages importing it runs (``bpflink.a.b`` -> ``bpflink.a.b``, ``bpflink.a``)."""
    parts = name.split(".")
    for end in range(len(parts), 1, -1):
        candidate = ".".join(parts[:end])
        if candidate in MODULES:
            yield candidate


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports(module: str) -> dict[str, str]:
    """``{imported module: kind}`` for one module; kind is "import" (rule 1), "deferred" or "typing"."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: dict[str, str] = {}
    rank = {"import": 0, "deferred": 1, "typing": 2}

    def add(name: str, kind: str) -> None:
        for target in _targets(name):  # the strongest kind wins: import, then deferred, then typing
            if module.startswith(target + "."):  # its own package: always initialised before it
                continue
            if target != module and (target not in found or rank[kind] < rank[found[target]]):
                found[target] = kind

    def visit(nodes: Iterable[ast.AST], kind: str) -> None:
        for node in nodes:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("bpflink."):
                        add(alias.name, kind)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[:len(package.split(".")) - node.level + 1]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                if not source.startswith("bpflink."):
                    continue
                for alias in node.names:  # `from .opts import mprog` imports the module bpflink.opts.mprog
                    add(f"{source}.{alias.name}" if f"{source}.{alias.name}" in MODULES else source, kind)
            elif isinstance(node, ast.If) and _is_type_checking(node):
                visit(node.body, "typing")
                visit(node.orelse, kind)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                visit(ast.iter_child_nodes(node), "deferred" if kind == "import" else kind)
            else:
                visit(ast.iter_child_nodes(node), kind)

    visit(ast.parse(path.read_text()).body, "import")
    return found


GRAPH = {module: imports(module) for module in MODULES if module != "bpflink"}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(edges)))
    for v in sorted(edges):
        if v not in index:
            strong(v)
    return found


def _explain(component: list[str], edges: dict[str, set[str]]) -> str:
    inside = set(component)
    return "; ".join(f"{m} -> {', '.join(sorted(edges[m] & inside))}" for m in component)


def test_import_time_imports_form_no_cycle() -> None:
    edges = {m: {t for t, kind in targets.items() if kind == "import"} for m, targets in GRAPH.items()}
    found = cycles(edges)
    assert not found, "import-time cycles: " + " | ".join(_explain(c, edges) for c in found)


def test_deferred_and_type_only_imports_form_no_cycle_but_the_listed_back_edges() -> None:
    edges = {m: {t for t in targets if (m, t) not in BACK_EDGES} for m, targets in GRAPH.items()}
    found = cycles(edges)
    assert not found, ("import cycles (break them, or list a convenience back edge in BACK_EDGES with its reason): "
                       + " | ".join(_explain(c, edges) for c in found))


def test_back_edges_exist_and_stay_deferred() -> None:
    for (importer, imported), why in BACK_EDGES.items():
        kind = GRAPH.get(importer, {}).get(imported)
        assert kind == "deferred", f"{importer} -> {imported} ({why}) is {kind or 'gone: drop it from BACK_EDGES'}"


def test_the_graph_sees_known_imports() -> None:
    """The walker itself: a module-level, a deferred, a type-only and a submodule-through-package import."""
    assert GRAPH["bpflink.create"]["bpflink.link"] == "import"
    assert GRAPH["bpflink.link"]["bpflink.lifecycle"] == "deferred"
    assert GRAPH["bpflink.usdt"]["bpflink.map"] == "typing"
    assert GRAPH["bpflink.perf"]["bpflink.opts"] == "import"  # via bpflink.opts._check: runs opts/__init__.py


def test_every_module_imports() -> None:
    """Each module imports in a fresh interpreter (after the ones before it in sorted order)."""
    names = sorted(m for m in MODULES if m not in ("bpflink", "bpflink.__main__"))
    code = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    res = subprocess.run([sys.executable, "-c", code, *names], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr


def test_probe_query_owners_are_callable_whatever_is_imported_first() -> None:
    """``import bpflink.probe`` used to leave ``bpflink.probe`` a function without ``.supports`` (the package's
    __setattr__ swapped the module for it); now the modules themselves are callable, the package is a plain
    module."""
    code = """
import types, sys
import bpflink.probe, bpflink.query, bpflink.owners
import bpflink
assert type(sys.modules["bpflink"]) is types.ModuleType
assert bpflink.probe.supports is bpflink.supports and bpflink.query.HookQuery is bpflink.HookQuery
(result,) = bpflink.probe(["CGROUP_INET_EGRESS"])
assert result is bpflink.probe.probe_attach_type("CGROUP_INET_EGRESS") and result.family == "cgroup"
from bpflink import owners, probe, query
from bpflink.query import query as query_function
assert query is bpflink.query and callable(query) and callable(owners) and callable(probe)
assert query_function.__name__ == "query" and callable(query_function)
"""
    for first in ("import bpflink", "from bpflink import probe, query, owners"):
        res = subprocess.run([sys.executable, "-c", first + "\n" + code], capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr
