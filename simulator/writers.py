"""The batch generator's I/O shell: append a dataset's tables chunk by chunk to CSV or Parquet files.

Each output is written to ``<name>.partial`` and renamed when complete, so a file with its final name is whole. A
``dataset.json`` beside the data records the plan (seed included), so the files can be regenerated exactly.

CSV: one header line (the seed layout's index column has an empty name, so its header starts with ``,``), no quoting,
missing values empty, floats in the shortest form that reads back exactly, always with a decimal point or exponent
(``0.0``, ``1.5``, ``2.6732655185893093``), so a reader infers float columns as the original's pandas files did.
Timestamps are ISO 8601 UTC (``2024-01-01 00:00:00Z``). Parquet: one row group per chunk, zstd.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from tqdm import tqdm

from simulator.dataset import DatasetPlan, chunks
from simulator.layouts import file_name, outputs, tables

MANIFEST: Final = "dataset.json"


class TableSink(Protocol):
    """An output file that takes tables with one schema, one after another."""

    def write(self, table: pa.Table) -> None:
        """Append ``table``'s rows."""
        ...

    def close(self) -> None:
        """Finish the file."""
        ...


def float_text(values: pa.Array) -> pa.Array:
    """Doubles as CSV text: shortest round-trip form with a decimal point (``0.0``, not arrow's ``0``); null stays.

    A column of few distinct values (AC and Geyser levels) is formatted once per value: a third of the time.
    """
    head = values.slice(0, _SAMPLE).to_numpy(zero_copy_only=False)
    if len(np.unique(head[~np.isnan(head)])) <= _FEW:
        encoded = pc.dictionary_encode(values)
        return pc.take(_text(encoded.dictionary), encoded.indices)
    return _text(values)


_SAMPLE: Final = 2048
_FEW: Final = 64


def _text(values: pa.Array) -> pa.Array:
    text = pc.cast(values, pa.string())
    numbers = values.to_numpy(zero_copy_only=False)
    whole = np.isfinite(numbers) & (np.trunc(numbers) == numbers)
    if not whole.any():
        return text
    # Few values are whole (0.0, 3.0): mend just those rather than rewrite the column.
    found = text.take(pa.array(np.flatnonzero(whole))).to_pylist()
    mended = [s if "e" in s else s + ".0" for s in found]  # "1e+14" needs no ".0"
    return pc.replace_with_mask(text, pa.array(whole), pa.array(mended, type=pa.string()))


class CsvSink:
    """A CSV file: the header once, then each table's rows."""

    def __init__(self, path: Path) -> None:
        self._file = pa.OSFile(str(path), "wb")
        self._writer: pacsv.CSVWriter | None = None

    def write(self, table: pa.Table) -> None:
        """Append ``table``'s rows (float columns formatted by ``float_text``)."""
        columns = [
            float_text(column.combine_chunks()) if pa.types.is_floating(column.type) else column
            for column in table.columns
        ]
        text = pa.table(columns, names=table.column_names)
        if self._writer is None:
            self._file.write((",".join(table.column_names) + "\n").encode())
            options = pacsv.WriteOptions(include_header=False, quoting_style="none")
            self._writer = pacsv.CSVWriter(self._file, text.schema, write_options=options)
        self._writer.write_table(text)

    def close(self) -> None:
        """Flush and close the file."""
        if self._writer is not None:
            self._writer.close()
        if not self._file.closed:
            self._file.close()


class ParquetSink:
    """A Parquet file: one row group per table."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._writer: pq.ParquetWriter | None = None

    def write(self, table: pa.Table) -> None:
        """Append ``table`` as a row group."""
        if self._writer is None:
            self._writer = pq.ParquetWriter(str(self._path), table.schema, compression="zstd")
        self._writer.write_table(table)

    def close(self) -> None:
        """Write the footer."""
        if self._writer is not None:
            self._writer.close()


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


def write_dataset(plan: DatasetPlan, out_dir: Path, progress: bool = False) -> list[Path]:
    """Generate ``plan`` into ``out_dir`` chunk by chunk; returns the data files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    kinds = outputs(plan.layout, plan.faults is not None)
    final = [out_dir / file_name(plan.layout, kind, plan.fmt) for kind in kinds]
    partial = [path.with_name(path.name + ".partial") for path in final]
    sinks = {kind: open_sink(path, plan.fmt) for kind, path in zip(kinds, partial, strict=True)}
    origin_s = plan.origin_s()
    try:
        # One thread per file: arrow formats and writes without the GIL. Each chunk is written before the next is
        # computed (overlapping them starves the writers of the GIL), so one chunk is in memory at a time.
        with ThreadPoolExecutor(max_workers=len(sinks), thread_name_prefix="writer") as pool:
            for chunk in tqdm(chunks(plan), total=plan.chunk_count(), unit="chunk", disable=not progress):
                writes = [
                    pool.submit(sinks[kind].write, table)
                    for kind, table in tables(plan.layout, chunk, origin_s).items()
                ]
                for write in writes:
                    write.result()
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
