"""Reading chunk files: edge lists (csv, parquet) and feature rows (numpy, parquet)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gsentry.errors import InputError

if TYPE_CHECKING:
    from gsentry.partition.metadata import Chunks

_BLOCK = 1 << 22


def count_rows(path: Path, chunks: Chunks) -> int:
    """Rows in one chunk file, without parsing it."""
    try:
        if chunks.format == "csv":
            return _count_lines(path)
        if chunks.format == "numpy":
            return int(np.load(path, mmap_mode="r").shape[0])
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    except (ValueError, OSError) as err:
        if isinstance(err, FileNotFoundError):
            raise
        raise InputError(f"{chunks.field}: {path.name} is not a readable {chunks.format} file ({err}).") from err
    except Exception as err:  # pyarrow's errors are not OSError subclasses everywhere
        if type(err).__module__.startswith("pyarrow"):
            raise InputError(f"{chunks.field}: {path.name} is not a readable {chunks.format} file ({err}).") from err
        raise


def _count_lines(path: Path) -> int:
    lines, last = 0, b"\n"
    with open(path, "rb") as handle:
        while block := handle.read(_BLOCK):
            lines += block.count(b"\n")
            last = block[-1:]
    return lines + (last != b"\n")


def read_edges(path: Path, chunks: Chunks) -> tuple[np.ndarray, np.ndarray]:
    """``(src, dst)`` per-type node IDs of one edge chunk (the first two columns)."""
    if chunks.format == "csv":
        import pyarrow as pa
        import pyarrow.csv as pa_csv

        table = pa_csv.read_csv(
            path,
            read_options=pa_csv.ReadOptions(autogenerate_column_names=True),
            parse_options=pa_csv.ParseOptions(delimiter=chunks.delimiter),
            convert_options=pa_csv.ConvertOptions(column_types={"f0": pa.int64(), "f1": pa.int64()}),
        )
    else:
        import pyarrow.parquet as pq

        table = pq.read_table(path)
    if table.num_columns < 2:
        raise InputError(f"{chunks.field}: {path.name} must have a source and a destination column.")
    src = table.column(0).to_numpy().astype(np.int64, copy=False)
    dst = table.column(1).to_numpy().astype(np.int64, copy=False)
    return src, dst


def read_feature(path: Path, chunks: Chunks) -> np.ndarray:
    """One feature chunk as an array of rows (1-D for scalars, 2-D for vectors)."""
    if chunks.format == "numpy":
        loaded: np.ndarray = np.load(path, mmap_mode="r")
        return loaded
    import pyarrow.parquet as pq
    import pyarrow.types as pt

    table = pq.read_table(path)
    columns = []
    for column in table.columns:
        if pt.is_list(column.type) or pt.is_fixed_size_list(column.type) or pt.is_large_list(column.type):
            # A list column combines into a ListArray (or FixedSizeListArray), which has flatten();
            # pyarrow-stubs types combine_chunks() as the base Array.
            values = column.combine_chunks().flatten().to_numpy(zero_copy_only=False)  # type: ignore[attr-defined]
            if len(column) and len(values) % len(column):
                raise InputError(f"{chunks.field}: {path.name} has feature vectors of different lengths.")
            columns.append(values.reshape(len(column), -1))
        else:
            columns.append(column.to_numpy())
    if len(columns) == 1:
        only: np.ndarray = columns[0]
        return only
    return np.column_stack(columns)


def read_rows(
    chunks: Chunks, chunk_rows: tuple[int, ...], rows: np.ndarray, resolve: Callable[[str], Path]
) -> np.ndarray:
    """Return the feature rows ``rows`` (sorted, global across chunks), reading only the chunks they fall in."""
    offsets = np.asarray(chunks.offsets(chunk_rows))
    pieces = []
    bounds = np.searchsorted(rows, offsets)
    for i, rel in enumerate(chunks.files):
        lo, hi = bounds[i], bounds[i + 1]
        if lo == hi:
            continue
        data = read_feature(resolve(rel), chunks)
        pieces.append(np.asarray(data[rows[lo:hi] - offsets[i]]))
    if not pieces:
        first = np.asarray(read_feature(resolve(chunks.files[0]), chunks))
        return first[:0]
    return np.concatenate(pieces)
