"""The batch generator's I/O shell: append a dataset's tables chunk by chunk to CSV or Parquet files.

Each output is written to ``<name>.partial`` and renamed when complete, so a file with its final name is whole. A
``dataset.json`` beside the data records the plan (seed included), so the files can be regenerated exactly.

CSV: one header line (the seed layout's index column has an empty name, so its header starts with ``,``), no quoting,
missing values empty, floats in the shortest form that reads back exactly, always with a decimal point or exponent
(``0.0``, ``1.5``, ``2.6732655185893093``), so a reader infers float columns as the original's pandas files did.
Timestamps are ISO 8601 UTC (``2024-01-01 00:00:00Z``). Parquet: one row group per chunk, zstd.

CSV needs only the runtime dependencies. Parquet needs pyarrow and the progress bar tqdm, both in the ``dataset``
extra: without pyarrow a Parquet run is refused before it writes anything; without tqdm there is no bar.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Final, Protocol

import numpy as np

from config.run.extras import DATASET, install_hint, require
from simulator.dataset.csvtext import table_lines, table_text
from simulator.dataset.layouts import CLEAN, ERROR_TYPES, ERRORS, file_name, outputs, tables
from simulator.dataset.lines import counted_lines, splice
from simulator.dataset.plan import Chunk, DatasetPlan, chunks
from simulator.dataset.table import CodeColumn, FloatColumn, IntColumn, Table

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq

log = logging.getLogger(__name__)

MANIFEST: Final = "dataset.json"


class TableSink(Protocol):
    """An output file that takes tables with one schema, one after another."""

    def write(self, table: Table, text: bytes | memoryview | None = None) -> None:
        """Append ``table``'s rows (a CSV sink writes ``text`` if given: those rows' lines, made beforehand)."""
        ...

    def close(self) -> None:
        """Finish the file."""
        ...


class CsvSink:
    """A CSV file: the header once, then each table's rows (text built by ``csvtext``, one write per table)."""

    def __init__(self, path: Path) -> None:
        self._file: BinaryIO = path.open("wb")
        self._header = False

    def write(self, table: Table, text: bytes | memoryview | None = None) -> None:
        """Append ``table``'s rows (``text``: their lines, if already made)."""
        if not self._header:
            self._file.write((",".join(table.names) + "\n").encode())
            self._header = True
        self._file.write(table_text(table) if text is None else text)

    def close(self) -> None:
        """Flush and close the file."""
        self._file.close()


def arrow_table(table: Table) -> pa.Table:
    """``table`` as a pyarrow table: floats rounded (NaN -> null), codes as strings, instants as UTC seconds."""
    import pyarrow as pa  # Parquet only: a CSV run does not pay pyarrow's import
    import pyarrow.compute as pc

    arrays = []
    for column in table.columns:
        if isinstance(column, FloatColumn):
            rounded = np.round(np.ascontiguousarray(column.values, dtype=np.float64), column.decimals)
            arrays.append(pa.array(rounded, from_pandas=True))  # NaN -> null
        elif isinstance(column, IntColumn):
            arrays.append(pa.array(column.values))
        elif isinstance(column, CodeColumn):
            texts = pa.array(column.texts, type=pa.string())
            arrays.append(pc.take(texts, pa.array(np.asarray(column.codes).astype(np.int32))))
        else:
            arrays.append(pa.array(column.epoch_s, type=pa.timestamp("s", tz="UTC")))
    return pa.table(arrays, names=list(table.names))


class ParquetSink:
    """A Parquet file: one row group per table, zstd."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._writer: pq.ParquetWriter | None = None

    def write(self, table: Table, text: bytes | memoryview | None = None) -> None:
        """Append ``table`` as a row group (``text`` is for CSV sinks: ignored)."""
        import pyarrow.parquet as pq  # Parquet only

        arrow = arrow_table(table)
        if self._writer is None:
            self._writer = pq.ParquetWriter(str(self._path), arrow.schema, compression="zstd")
        self._writer.write_table(arrow)

    def close(self) -> None:
        """Write the footer."""
        if self._writer is not None:
            self._writer.close()


def seed_texts(chunk_tables: dict[str, Table]) -> dict[str, bytes | memoryview]:
    """The seed layout's three CSV texts of one chunk, the two derived ones spliced.

    The with-errors file is the clean file but on the rows where a value has an error (every 25th second, ...), and
    the error-types file is ``index,none,none,...`` but on those rows: only those rows are formatted, and the rest is
    copied. Without errors, or if the index is not the plain count this assumes, every table is formatted.
    """
    clean = table_lines(chunk_tables[CLEAN])
    texts: dict[str, bytes | memoryview] = {CLEAN: clean.text}
    types = chunk_tables.get(ERROR_TYPES)
    if types is None or ERRORS not in chunk_tables:
        return texts
    index, *codes = types.columns
    if not isinstance(index, IntColumn) or not all(isinstance(c, CodeColumn) and c.texts[0] for c in codes):
        return texts
    first, count = int(index.values[0]), len(index.values)
    if not np.array_equal(index.values, np.arange(first, first + count)):
        return texts
    faulted = np.zeros(count, dtype=bool)  # where a value has an error: in place, no array per column
    for column in codes:
        if isinstance(column, CodeColumn):
            np.logical_or(faulted, column.codes, out=faulted)
    changed = np.flatnonzero(faulted)
    texts[ERRORS] = splice(clean, changed, table_lines(chunk_tables[ERRORS].take(changed)))
    nones = "".join(f",{c.texts[0]}" for c in codes if isinstance(c, CodeColumn))
    texts[ERROR_TYPES] = splice(
        counted_lines(first, count, f"{nones}\n".encode()), changed, table_lines(types.take(changed))
    )
    return texts


def open_sink(path: Path, fmt: str) -> TableSink:
    """A sink of format ``csv`` or ``parquet`` at ``path``."""
    return CsvSink(path) if fmt == "csv" else ParquetSink(path)


def manifest(plan: DatasetPlan, files: list[Path]) -> dict[str, Any]:
    """What ``dataset.json`` records: the plan and the files."""
    faults = plan.faults
    return {
        "generator": "python -m simulator generate",
        "profile": plan.profile,
        "households": list(plan.households),
        "fleet_size": plan.fleet_size,
        "meters": len(plan.specs()),
        "tz": plan.tz,
        "seed": plan.seed,
        "start_date": plan.start_date.isoformat(),
        "days": plan.days,
        "layout": plan.layout,
        "format": plan.fmt,
        "errors": None
        if faults is None
        else {
            "every_s": faults.every_s,
            "probability": faults.probability,
            "types": [t.label for t in faults.types],
            "stuck_s": list(faults.stuck_s),
        },
        "files": [path.name for path in files],
    }


def _progress(items: Iterator[Chunk], total: int, show: bool) -> Iterator[Chunk]:
    """``items``, with a progress bar on a terminal (tqdm is imported only then: 0.1 s of a short run's start)."""
    if not show:
        return items
    try:
        from tqdm import tqdm
    except ImportError:
        log.info("no progress bar: tqdm is not installed (%s)", install_hint(DATASET))
        return items

    return iter(tqdm(items, total=total, unit="chunk"))


def _ahead(items: Iterator[Chunk]) -> Iterator[Chunk]:
    """``items``, the next one computed in a thread while the caller formats and writes this one (numpy releases the
    GIL in its loops: generating and formatting overlap on a second core). At most two chunks are in memory."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="chunks") as pool:
        upcoming = pool.submit(next, items, None)
        while (item := upcoming.result()) is not None:
            upcoming = pool.submit(next, items, None)
            yield item


def write_dataset(plan: DatasetPlan, out_dir: Path, progress: bool = False) -> list[Path]:
    """Generate ``plan`` into ``out_dir`` chunk by chunk; returns the data files written."""
    if plan.fmt == "parquet":
        require("pyarrow", DATASET, "--format")  # before any file is made
    out_dir.mkdir(parents=True, exist_ok=True)
    kinds = outputs(plan.layout, plan.faults is not None)
    final = [out_dir / file_name(plan.layout, kind, plan.fmt) for kind in kinds]
    partial = [path.with_name(path.name + ".partial") for path in final]
    sinks = {kind: open_sink(path, plan.fmt) for kind, path in zip(kinds, partial, strict=True)}
    origin_s = plan.origin_s()
    try:
        for chunk in _progress(_ahead(chunks(plan)), plan.chunk_count(), progress):
            chunk_tables = tables(plan.layout, chunk, origin_s)
            texts = seed_texts(chunk_tables) if plan.layout == "seed" and plan.fmt == "csv" else {}
            for kind, table in chunk_tables.items():
                sinks[kind].write(table, texts.get(kind))
    except BaseException:
        for sink in sinks.values():
            sink.close()
        for path in partial:
            path.unlink(missing_ok=True)
        raise
    for sink in sinks.values():
        sink.close()
    for done, path in zip(partial, final, strict=True):
        done.replace(path)
    (out_dir / MANIFEST).write_text(json.dumps(manifest(plan, final), indent=2) + "\n")
    return final
