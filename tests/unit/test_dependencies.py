"""pyproject.toml says the truth about dependencies: what is imported is declared, and what is shipped runs on the
runtime dependencies alone.

- Every module imported (at the top or late, inside a function) by the shipped packages is a runtime dependency's or
  an extra's; every module the tests and benchmarks import is a runtime dependency's or the test extra's (with the
  extras it names). Modules map to distributions with ``importlib.metadata.packages_distributions()``.
- The shipped modules import in a fresh interpreter where every module outside the runtime dependencies (and what
  they require) is blocked, but the few that need an extra, which fail there; the containers' commands run in it, and
  the commands that need an extra refuse with a message naming it.
- The tools whose verdict gates ``make test`` are pinned exactly, and the installed versions are the pins.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final

import pytest
from packaging.requirements import Requirement

from tests.support.paths import ROOT
from tests.support.procs import clean_env

PYPROJECT: Final = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT: Final = PYPROJECT["project"]["name"]
SHIPPED: Final = ("config", "simulator", "bridge", "broker")
LOCAL: Final = frozenset({*SHIPPED, "tests", "bench"})
TEST_EXTRA: Final = "test"
# Tools whose output decides whether `make test` passes: a new release could fail unchanged code.
GATING_TOOLS: Final = ("ruff", "mypy", "check-jsonschema")
# Shipped modules that need an extra, and the extra (each command that loads them says so when it is missing).
NEEDS_EXTRA: Final = {
    "simulator.dataset.plot": "plot",
    "broker.embedded": "embedded",
    "broker.client_ids": "embedded",
}
TIMEOUT_S: Final = 120


def canonical(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements(*extras: str) -> list[Requirement]:
    """The runtime dependencies (no ``extras``) or those of the given extras, expanding ones that name this
    project's own extras."""
    texts = PYPROJECT["project"]["dependencies"] if not extras else []
    for extra in extras:
        texts = [*texts, *PYPROJECT["project"]["optional-dependencies"][extra]]
    found = []
    for text in texts:
        req = Requirement(text)
        if canonical(req.name) == canonical(PROJECT):
            found.extend(requirements(*sorted(req.extras)))
        else:
            found.append(req)
    return found


def declared(*extras: str) -> set[str]:
    """Canonical names of the distributions the runtime dependencies and ``extras`` declare directly."""
    return {canonical(req.name) for req in [*requirements(), *requirements(*extras)]}


def closure(reqs: Iterable[Requirement]) -> set[str]:
    """``reqs`` and everything they require, as installed here (canonical names)."""
    seen: set[tuple[str, str]] = set()
    names: set[str] = set()
    todo = [(req, "") for req in reqs]
    while todo:
        req, extra = todo.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": extra}):
            continue
        name = canonical(req.name)
        names.add(name)
        for wanted in ("", *sorted(req.extras)):
            if (name, wanted) in seen:
                continue
            seen.add((name, wanted))
            for text in importlib.metadata.requires(req.name) or []:
                todo.append((Requirement(text), wanted))
    return names


def imported_modules(paths: Iterable[Path]) -> dict[str, set[str]]:
    """Top-level names of the absolute imports in the ``.py`` files under ``paths`` (module level or not), each
    with the files that import it."""
    found: dict[str, set[str]] = {}
    for root in paths:
        for path in sorted(root.rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
                    found.setdefault(name.split(".")[0], set()).add(str(where))
    return found


def undeclared(
    imports: Mapping[str, set[str]], allowed: set[str], distributions: Mapping[str, list[str]]
) -> dict[str, str]:
    """Imported third-party modules whose distribution is not in ``allowed``: module -> why, with its importers."""
    problems = {}
    for module, files in sorted(imports.items()):
        if module in sys.stdlib_module_names or module in LOCAL or module == "__future__":
            continue
        dists = {canonical(name) for name in distributions.get(module, [])}
        if not dists:
            problems[module] = f"not installed by any distribution (imported by {sorted(files)})"
        elif not dists & allowed:
            problems[module] = f"from {sorted(dists)}, not declared (imported by {sorted(files)})"
    return problems


def test_shipped_imports_are_runtime_dependencies_or_extras() -> None:
    """config/, simulator/, bridge/, broker/ import only what pyproject.toml declares (runtime or an extra)."""
    extras = [name for name in PYPROJECT["project"]["optional-dependencies"] if name != TEST_EXTRA]
    problems = undeclared(
        imported_modules(ROOT / name for name in SHIPPED),
        declared(*extras),
        importlib.metadata.packages_distributions(),
    )
    assert not problems, problems


# Runtime dependencies no module imports by name: zoneinfo reads tzdata's files.
DATA_ONLY: Final = frozenset({"tzdata"})


def test_every_runtime_dependency_is_imported_by_shipped_code() -> None:
    """No runtime dependency is there for nothing: each provides a module that config/, simulator/, bridge/ or
    broker/ imports (the image installs them all)."""
    distributions = importlib.metadata.packages_distributions()
    imported = {
        canonical(dist)
        for module in imported_modules(ROOT / name for name in SHIPPED)
        for dist in distributions.get(module, [])
    }
    unused = {canonical(req.name) for req in requirements()} - imported - DATA_ONLY
    assert not unused, f"runtime dependencies no shipped module imports (an extra?): {sorted(unused)}"


def test_test_and_bench_imports_are_declared_in_the_test_extra() -> None:
    """tests/ and bench/ import only what the runtime dependencies and the test extra declare."""
    problems = undeclared(
        imported_modules([ROOT / "tests", ROOT / "bench"]),
        declared(TEST_EXTRA),
        importlib.metadata.packages_distributions(),
    )
    assert not problems, problems


def test_the_check_catches_an_undeclared_and_an_unknown_import(tmp_path: Path) -> None:
    """The check above, on a file importing a declared, an undeclared and an uninstalled module."""
    (tmp_path / "sample.py").write_text(
        "import json\nimport numpy\nfrom yaml import safe_load\n\ndef f():\n    import no_such_module_here\n"
    )
    imports = imported_modules([tmp_path])
    assert set(imports) == {"json", "numpy", "yaml", "no_such_module_here"}
    problems = undeclared(imports, {"numpy"}, {"numpy": ["numpy"], "yaml": ["PyYAML"]})
    assert set(problems) == {"yaml", "no_such_module_here"}
    assert "pyyaml" in problems["yaml"]


def test_closure_follows_extras_and_markers() -> None:
    """gunicorn[gevent] brings gevent (and greenlet through it); plain gunicorn does not."""
    with_gevent = closure([Requirement("gunicorn[gevent]")])
    assert {"gunicorn", "gevent", "greenlet"} <= with_gevent
    assert "gevent" not in closure([Requirement("gunicorn")])


def test_gating_tools_are_pinned_exactly_and_installed_at_the_pin() -> None:
    """ruff, mypy and check-jsonschema: ``==X.Y.Z`` in the test extra, and this environment has that version."""
    pins = {canonical(req.name): req for req in requirements(TEST_EXTRA)}
    for tool in GATING_TOOLS:
        specifiers = list(pins[tool].specifier)
        assert len(specifiers) == 1, f"{tool}: {pins[tool]}"
        assert specifiers[0].operator == "==", f"{tool} is not pinned exactly: {pins[tool]}"
        assert "*" not in specifiers[0].version, f"{tool}: {pins[tool]}"
        installed = importlib.metadata.version(tool)
        assert installed == specifiers[0].version, f"{tool} {installed} installed, {specifiers[0].version} pinned"


# --- The shipped modules with the runtime dependencies alone ------------------------------------------------------


def blocked_modules() -> list[str]:
    """Top-level modules installed here that no runtime dependency (nor what it requires) provides."""
    allowed = closure(requirements()) | {canonical(PROJECT)}
    return sorted(
        module
        for module, dists in importlib.metadata.packages_distributions().items()
        if module not in LOCAL and not {canonical(name) for name in dists} & allowed
    )


# Run in a fresh interpreter: imports of blocked modules fail as if they were not installed.
_PRELUDE: Final = """
import importlib.abc, sys
BLOCKED = frozenset({blocked})
class _Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked: not a runtime dependency)", name=name)
        return None
sys.meta_path.insert(0, _Blocker())
"""


def run_runtime_only(code: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``code`` in a fresh interpreter that cannot import anything outside the runtime dependencies."""
    return subprocess.run(
        [sys.executable, "-c", _PRELUDE.format(blocked=json.dumps(blocked_modules())) + code],
        cwd=ROOT,
        env=clean_env(env),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


def run_command_runtime_only(
    package: str, args: list[str], env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m package args`` with the runtime dependencies alone."""
    code = f"import runpy\nsys.argv = {[package, *args]!r}\nrunpy.run_module({package!r}, run_name='__main__')\n"
    return run_runtime_only(code, env)


def test_the_blocker_blocks_the_extras() -> None:
    """The fresh interpreter above cannot import the extras' packages, but can import the runtime ones."""
    blocked = set(blocked_modules())
    assert {"amqtt", "pyarrow", "tqdm", "matplotlib", "pandas", "pytest"} <= blocked
    assert not {"numpy", "flask", "gunicorn", "gevent", "bcrypt", "prometheus_client"} & blocked
    result = run_runtime_only(
        "import numpy, flask\ntry:\n    import amqtt\nexcept ImportError:\n    print('blocked')\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "blocked"


def shipped_modules() -> list[str]:
    """Every module of the shipped packages, dotted."""
    names = []
    for package in SHIPPED:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_shipped_modules_import_with_the_runtime_dependencies_alone() -> None:
    """Each shipped module imports without any extra, but those of NEEDS_EXTRA, which fail there (so the list is
    exact)."""
    modules = shipped_modules()
    assert set(NEEDS_EXTRA) <= set(modules)
    code = (
        "import importlib, json\nresult = {}\n"
        f"for name in {modules!r}:\n"
        "    try:\n        importlib.import_module(name)\n        result[name] = None\n"
        "    except ImportError as exc:\n        result[name] = str(exc)\n"
        "print(json.dumps(result))\n"
    )
    result = run_runtime_only(code)
    assert result.returncode == 0, result.stderr
    outcome: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    failing = {name: error for name, error in outcome.items() if error is not None}
    assert set(failing) == set(NEEDS_EXTRA), failing


def test_container_commands_run_with_the_runtime_dependencies_alone(tmp_path: Path) -> None:
    """What the image runs works without extras: ``--help`` of the simulator and the bridge, the mqtt-auth
    service's ``python -m broker mosquitto-auth``, and a CSV dataset."""
    for package in ("simulator", "bridge", "broker"):
        result = run_command_runtime_only(package, ["--help"])
        assert result.returncode == 0, f"{package}: {result.stderr}"
    env = {"FLEET_MQTT_SECRET": str(tmp_path / "secret"), "FLEET_HOUSEHOLDS": "A,B,C"}
    result = run_command_runtime_only("broker", ["mosquitto-auth", "--out", str(tmp_path / "auth")], env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "auth" / "dynsec.json").is_file()
    out = tmp_path / "csv"
    result = run_command_runtime_only("simulator", ["generate", "--days", "1", "--households", "A", "--out", str(out)])
    assert result.returncode == 0, result.stderr
    assert [path.suffix for path in out.iterdir() if path.name != "dataset.json"] == [".csv"]


@pytest.mark.parametrize(
    ("package", "args", "extra"),
    [
        ("broker", [], "embedded"),
        ("simulator", ["generate", "--days", "1", "--households", "A", "--format", "parquet"], "dataset"),
        ("simulator", ["plot", "--household", "A", "--date", "2024-01-01"], "plot"),
    ],
    ids=["embedded-broker", "parquet", "plot"],
)
def test_commands_that_need_an_extra_name_it(package: str, args: list[str], extra: str, tmp_path: Path) -> None:
    """Without its extra a command exits 2 with a configuration error that says what to install, and writes
    nothing."""
    out = tmp_path / "out"
    words = [*args, "--out", str(out / "x.png" if "plot" in args else out)] if package == "simulator" else args
    env = {"FLEET_MQTT_SECRET": str(tmp_path / "secret"), "FLEET_MQTT_PORT": "1"}
    result = run_command_runtime_only(package, words, env)
    assert result.returncode == 2, f"{result.stdout}{result.stderr}"
    assert f"pip install '{PROJECT}[{extra}]'" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert not out.exists()
