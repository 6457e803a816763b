"""config.run.extras and the commands' fallbacks when an extra is missing (its modules made unimportable in-process)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from config.errors import ConfigError
from config.run.extras import DATASET, install_hint, require
from simulator.dataset import writers
from simulator.dataset.plan import DatasetPlan


def test_require_passes_for_an_installed_module() -> None:
    """An importable module: nothing happens."""
    require("json", DATASET, "--format")


def test_require_names_the_key_and_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """A missing module: a ConfigError naming the key, the module and the pip command of the extra."""
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # None in sys.modules: the import raises ImportError
    with pytest.raises(ConfigError, match=r"needs pyarrow") as caught:
        require("pyarrow", DATASET, "--format")
    assert caught.value.key == "--format"
    assert "pip install 'smart-meter-fleet[dataset]'" in str(caught.value)
    assert install_hint("plot") == "pip install 'smart-meter-fleet[plot]'"


def test_parquet_without_pyarrow_is_refused_before_any_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """write_dataset refuses a Parquet plan without pyarrow and creates nothing."""
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match=r"\[dataset\]"):
        writers.write_dataset(DatasetPlan(households=("A",), fmt="parquet"), out)
    assert not out.exists()


def test_no_progress_bar_without_tqdm(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """On a terminal without tqdm the chunks pass through unchanged, and one line says how to get the bar."""
    monkeypatch.setitem(sys.modules, "tqdm", None)
    items = iter([])
    with caplog.at_level(logging.INFO, logger="simulator.dataset.writers"):
        assert writers._progress(items, 0, show=True) is items
    assert any("tqdm is not installed" in r.message and "[dataset]" in r.message for r in caplog.records)


def test_progress_bar_with_tqdm() -> None:
    """With tqdm (the test extra has it) the chunks are wrapped, and all of them still come through."""
    items = iter([])
    wrapped = writers._progress(items, 0, show=True)
    assert wrapped is not items
    assert list(wrapped) == []
