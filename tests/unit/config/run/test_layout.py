"""config.run.layout: the README's Layout section is what the packages' docstrings say, every module named, none
extra."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from config.run.layout import BEGIN, END, NAME_WIDTH, PACKAGES, layout, summary, with_layout
from tests.support.paths import ROOT


def _readme_section() -> str:
    readme = (ROOT / "README.md").read_text()
    return readme[readme.index(BEGIN) : readme.index(END) + len(END)]


def test_readme_layout_is_generated_from_the_packages() -> None:
    """Stale? Run `python -m config.run.layout --write` (after giving a new module its docstring)."""
    assert _readme_section() == layout(ROOT)


def test_readme_layout_names_every_module_and_only_those() -> None:
    """The same check by names, for a readable failure: a module missing from the README, or a name left over."""
    modules = {
        (path.parent.relative_to(ROOT).as_posix(), path.stem)
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if path.name != "__init__.py" and "__pycache__" not in path.parts
    }
    listed: set[tuple[str, str]] = set()
    folders: list[str] = []  # the package of each indent depth
    for line in _readme_section().splitlines()[2:-2]:
        match = re.match(r"( *)([A-Za-z_][A-Za-z0-9_]*)(/?)(?: |$)", line)
        if match is None or len(match.group(1)) >= NAME_WIDTH:
            continue  # a summary's continuation line
        depth, name, is_package = len(match.group(1)) // 2, match.group(2), match.group(3)
        if is_package:
            folders[depth:] = [name]
        else:
            listed.add(("/".join(folders[:depth]), name))
    assert modules - listed == set(), "modules the README's Layout does not name"
    assert listed - modules == set(), "names in the README's Layout that are no module"


def test_summary_is_the_first_sentence_as_plain_text() -> None:
    source = '"""The ``x`` clock, e.g. a pure one. More here.\n\nAnd a second paragraph."""\n'
    assert summary(source, "m.py") == "The x clock, e.g. a pure one."
    assert summary('"""One line without a full stop"""', "m.py") == "One line without a full stop"
    with pytest.raises(ValueError, match=r"m\.py: no module docstring"):
        summary("import os\n", "m.py")


def test_a_new_module_changes_the_section(tmp_path: Path) -> None:
    for package in PACKAGES:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text(f'"""The {package} package."""\n')
    before = layout(tmp_path)
    (tmp_path / "bridge" / "novel.py").write_text('"""A novel module: what it is."""\n')
    after = layout(tmp_path)
    assert "novel" not in before
    assert "  novel           A novel module: what it is." in after.splitlines()
    assert with_layout(f"intro\n{before}\nrest\n", after) == f"intro\n{after}\nrest\n"
    with pytest.raises(ValueError, match="markers"):
        with_layout("no markers here", after)
