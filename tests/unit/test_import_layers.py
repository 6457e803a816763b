"""The layers of the product packages, read from their imports with ``ast`` (every import, at module level, under
``if TYPE_CHECKING:`` or late inside a function; relative imports resolved): no import cycle among product modules,
simulator and bridge never import each other, config and broker import neither of them (config imports no broker
either: simulator -> config <- bridge, broker -> config), and no product module is longer than ``MAX_LINES``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Final

import pytest

from config.run.layout import PACKAGES
from tests.support.paths import ROOT

MAX_LINES: Final = 350
# Cycles allowed: none (issue #15 removed the last one, simulator.meters.fleet <-> simulator.profiles.realistic,
# through MeterSpec).
KNOWN_CYCLES: Final[frozenset[frozenset[str]]] = frozenset()
# Which product packages each package may import (besides itself).
MAY_IMPORT: Final[Mapping[str, frozenset[str]]] = {
    "config": frozenset(),
    "broker": frozenset({"config"}),
    "simulator": frozenset({"config"}),
    "bridge": frozenset({"config"}),
}


def module_files(root: Path, packages: Iterable[str] = PACKAGES) -> dict[str, Path]:
    """Every module of ``packages`` under ``root``, by dotted name (a package by its own name, for its ``__init__``)."""
    found: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            parts = path.relative_to(root).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _known(target: str, modules: Mapping[str, Path]) -> str | None:
    """The longest prefix of dotted ``target`` that is one of ``modules`` (importing ``a.b.c`` runs ``a.b.c``)."""
    parts = target.split(".")
    for end in range(len(parts), 0, -1):
        name = ".".join(parts[:end])
        if name in modules:
            return name
    return None


def imports_of(name: str, path: Path, modules: Mapping[str, Path]) -> set[str]:
    """The modules of ``modules`` that module ``name`` (at ``path``) imports, anywhere in its code."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = name.split(".") if is_package else name.split(".")[:-1]
                base = package[: len(package) - (node.level - 1)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            # ``from a import b`` imports the module a.b when there is one, else a name of module a
            targets = [f"{module}.{alias.name}" for alias in node.names]
        for target in targets:
            known = _known(target, modules)
            if known is not None and known != name:
                found.add(known)
    return found


def import_graph(root: Path, packages: Iterable[str] = PACKAGES) -> dict[str, set[str]]:
    """Module -> the product modules it imports."""
    modules = module_files(root, packages)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def tangles(graph: Mapping[str, Iterable[str]]) -> list[frozenset[str]]:
    """The strongly connected components of ``graph`` that hold a cycle (several modules, or one importing itself)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm; recursion as deep as the longest import chain
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in graph.get(node, ()):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component: set[str] = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                found.append(frozenset(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found, key=min)


def cycle_path(graph: Mapping[str, Iterable[str]], tangle: frozenset[str]) -> list[str]:
    """A shortest cycle through the smallest name of ``tangle``, as a path ``[a, b, ..., a]`` (breadth first)."""
    start = min(tangle)
    parent: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for succ in sorted(graph.get(node, ())):
                if succ == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parent[path[-1]])
                    return [*reversed(path), start]
                if succ in tangle and succ not in parent:
                    parent[succ] = node
                    following.append(succ)
        frontier = following
    raise ValueError(f"{start} is on no cycle")


def cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """One cycle path per tangle of ``graph``, in the order of their smallest names."""
    return [cycle_path(graph, tangle) for tangle in tangles(graph)]


# --- the repository's product modules -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph(ROOT)


def test_the_graph_reads_the_real_imports(graph: dict[str, set[str]]) -> None:
    """A sanity check of the reader on known edges, so that an empty graph cannot pass the tests below."""
    assert "config.errors" in graph["config.wire"]
    assert "config.mqtt.session" in graph["config.mqtt.connection"]  # an absolute import
    assert "config.parsing" in graph["config.options"]  # ``from config import parsing``: the module, not the package
    assert len(graph) > 50


def test_no_import_cycle_among_product_modules(graph: dict[str, set[str]]) -> None:
    found = tangles(graph)
    unknown = [" -> ".join(cycle_path(graph, tangle)) for tangle in found if tangle not in KNOWN_CYCLES]
    assert unknown == [], "import cycles among product modules"
    gone = KNOWN_CYCLES - set(found)
    assert gone == set(), "KNOWN_CYCLES names a cycle that no longer exists: remove it"


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_imports_only_the_layers_below_it(graph: dict[str, set[str]], package: str) -> None:
    allowed = {package, *MAY_IMPORT[package]}
    wrong = sorted(
        f"{module} -> {target}"
        for module, targets in graph.items()
        if module.split(".")[0] == package
        for target in targets
        if target.split(".")[0] not in allowed
    )
    assert wrong == [], f"{package} may import only {sorted(allowed)}"


# Inside a package, its layers from the bottom up: a module imports its own layer and those below it, never above.
SUBLAYERS: Final[dict[str, tuple[str, ...]]] = {
    "bridge": ("windows", "ingest", "services", "republish", "runtime", "http", "__main__"),
    # dataset (the batch generator) and live (the meters on MQTT) are peers: neither imports the other.
    "simulator": ("seeds", "localday", "profiles", "meters", "dataset", "live", "cli", "commands", "__main__"),
}


def upward_imports(graph: Mapping[str, set[str]], package: str, layers: tuple[str, ...]) -> list[str]:
    """The imports inside ``package`` that go up its ``layers`` (or touch a module no layer names)."""

    def layer(module: str) -> int:
        parts = module.split(".")
        return -1 if len(parts) == 1 else layers.index(parts[1]) if parts[1] in layers else len(layers)

    return sorted(
        f"{module} -> {target}"
        for module, targets in graph.items()
        if module.split(".")[0] == package
        for target in targets
        if target.split(".")[0] == package and (layer(target) > layer(module) or layer(module) == len(layers))
    )


@pytest.mark.parametrize("package", SUBLAYERS)
def test_each_layer_of_a_package_imports_only_the_layers_below_it(graph: dict[str, set[str]], package: str) -> None:
    layers = SUBLAYERS[package]
    assert upward_imports(graph, package, layers) == [], f"{package}'s layers, bottom up: {layers}"
    parts = {
        path.stem
        for path in (ROOT / package).iterdir()
        if (path.suffix == ".py" and path.name != "__init__.py") or (path / "__init__.py").is_file()
    }
    assert parts - set(layers) == set(), "a subpackage or module that no layer names"


def test_upward_imports_are_found() -> None:
    graph = {"p.low.a": {"p.high.b"}, "p.high.b": {"p.low.a", "q.x"}, "p.other.c": {"p.low.a"}, "p": {"p.high.b"}}
    found = upward_imports(graph, "p", ("low", "high"))
    assert found == ["p -> p.high.b", "p.low.a -> p.high.b", "p.other.c -> p.low.a"]


def test_no_product_module_is_longer_than_the_limit() -> None:
    lengths = {
        path.relative_to(ROOT).as_posix(): len(path.read_text().splitlines()) for path in module_files(ROOT).values()
    }
    long = sorted(f"{name}: {n} lines" for name, n in lengths.items() if n > MAX_LINES)
    assert long == [], f"modules over {MAX_LINES} lines: split them along a real seam"


# --- the reader and the cycle finder on small synthetic trees -----------------------------------------------------


def test_cycles_finds_each_cycle_with_its_path() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}, "f": {"a"}}
    assert cycles(graph) == [["a", "b", "c", "a"], ["e", "e"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set(), "d": {"a", "c"}}) == []


def test_cycles_gives_one_path_per_tangle() -> None:
    graph = {"a": {"b", "c"}, "b": {"a"}, "c": {"a"}}  # two loops through a: one component, one path
    assert cycles(graph) == [["a", "b", "a"]]


def test_reader_resolves_relative_type_checking_and_late_imports(tmp_path: Path) -> None:
    files = {
        "pkg/__init__.py": "from . import low\n",
        "pkg/low.py": "import os\n",
        "pkg/sub/__init__.py": "",
        "pkg/sub/mid.py": (
            "from typing import TYPE_CHECKING\n"
            "from .. import low\n"
            "from ..low import os\n"
            "if TYPE_CHECKING:\n"
            "    from pkg.sub.top import Top\n"
        ),
        "pkg/sub/top.py": "def late() -> None:\n    import pkg.sub.mid\n",
        "other/__init__.py": "from pkg.sub import mid, nothing_such\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    graph = import_graph(tmp_path, ("pkg", "other"))
    assert graph == {
        "pkg": {"pkg.low"},
        "pkg.low": set(),
        "pkg.sub": set(),
        "pkg.sub.mid": {"pkg.low", "pkg.sub.top"},
        "pkg.sub.top": {"pkg.sub.mid"},
        "other": {"pkg.sub.mid", "pkg.sub"},
    }
    assert cycles(graph) == [["pkg.sub.mid", "pkg.sub.top", "pkg.sub.mid"]]
