"""
DGL's chunked graph format: the metadata JSON, parsed and checked against its files.

The format (DGL's "chunked graph data" specification)::

    graph_name, node_type [ntype...], num_nodes_per_chunk [[n...] per ntype],
    edge_type ["src:rel:dst"...], num_edges_per_chunk [[n...] per etype],
    edges {etype: {format: {name: csv, delimiter} | {name: parquet}, data: [files]}},
    node_data {ntype: {feat: {format: {name: numpy | parquet}, data: [files]}}},
    edge_data {etype: {feat: {...}}}

File paths are relative to the metadata file's folder. Every check here runs before any
work, and a failure is one sentence naming the metadata file and the field.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from gsentry.errors import InputError

EDGE_FORMATS = ("csv", "parquet")
FEATURE_FORMATS = ("numpy", "parquet")
DEFAULT_CSV_DELIMITER = " "


@dataclass(frozen=True)
class Chunks:
    """The files of one edge list or feature, in order, with their row counts."""

    field: str  # where the metadata names them, for error messages
    format: str  # csv | parquet | numpy
    files: tuple[str, ...]  # paths relative to the metadata folder
    delimiter: str = DEFAULT_CSV_DELIMITER

    def offsets(self, counts: tuple[int, ...]) -> tuple[int, ...]:
        out, total = [0], 0
        for n in counts:
            total += n
            out.append(total)
        return tuple(out)


@dataclass(frozen=True)
class EdgeType:
    """One canonical edge type of the chunked graph (``src:rel:dst``) and its edge files."""

    name: str  # "src:rel:dst"
    src: str
    rel: str
    dst: str
    chunk_rows: tuple[int, ...]
    edges: Chunks

    @property
    def canonical(self) -> tuple[str, str, str]:
        return (self.src, self.rel, self.dst)

    @property
    def num_edges(self) -> int:
        return sum(self.chunk_rows)


@dataclass(frozen=True)
class ChunkedGraph:
    """A parsed metadata file (IDs: per-type, 0-based, in chunk order)."""

    path: str  # the metadata file name, for messages
    graph_name: str
    ntypes: tuple[str, ...]
    num_nodes: dict[str, int]
    node_chunk_rows: dict[str, tuple[int, ...]]
    etypes: tuple[EdgeType, ...]
    node_data: dict[str, dict[str, Chunks]]
    edge_data: dict[str, dict[str, Chunks]]

    def files(self) -> list[str]:
        """Every file the metadata names (relative paths), in a stable order."""
        out: list[str] = []
        for et in self.etypes:
            out += et.edges.files
        for feats in (*self.node_data.values(), *self.edge_data.values()):
            for chunks in feats.values():
                out += chunks.files
        return list(dict.fromkeys(out))

    def etype(self, name: str) -> EdgeType:
        return next(et for et in self.etypes if et.name == name)


class _Reader:
    def __init__(self, name: str, data: Any):
        self.name = name
        self.data = data

    def fail(self, field: str, why: str) -> InputError:
        return InputError(f"{self.name}: field {field} {why}.")

    def get(
        self, obj: Any, key: str, field: str, kind: type | tuple[type, ...], required: bool = True, default: Any = None
    ) -> Any:
        if not isinstance(obj, dict) or key not in obj:
            if required:
                raise self.fail(field, "is missing")
            return default
        value = obj[key]
        if not isinstance(value, kind) or isinstance(value, bool):
            names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            raise self.fail(field, f"must be a {names}, got {type(value).__name__}")
        return value

    def counts(self, value: Any, field: str) -> tuple[int, ...]:
        if (
            not isinstance(value, list)
            or not value
            or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in value)
        ):
            raise self.fail(field, "must be a non-empty list of non-negative integers (one per chunk)")
        return tuple(value)

    def chunks(self, spec: Any, field: str, formats: tuple[str, ...]) -> Chunks:
        fmt = self.get(spec, "format", f"{field}.format", dict)
        name = self.get(fmt, "name", f"{field}.format.name", str)
        if name not in formats:
            raise self.fail(f"{field}.format.name", f"is {name!r}, not one of {', '.join(formats)}")
        delimiter = self.get(
            fmt, "delimiter", f"{field}.format.delimiter", str, required=False, default=DEFAULT_CSV_DELIMITER
        )
        if name == "csv" and len(delimiter) != 1:
            raise self.fail(f"{field}.format.delimiter", f"must be one character, got {delimiter!r}")
        files = self.get(spec, "data", f"{field}.data", list)
        if not files:
            raise self.fail(f"{field}.data", "lists no files")
        for i, rel in enumerate(files):
            if not isinstance(rel, str) or not rel:
                raise self.fail(f"{field}.data[{i}]", "must be a file path")
            path = PurePosixPath(rel)
            if path.is_absolute() or ".." in path.parts:
                raise self.fail(f"{field}.data[{i}]", f"must be a path relative to the metadata folder, got {rel!r}")
        # As paths under --graph-data-s3, what reads them wants.
        return Chunks(
            field=field, format=name, files=tuple(beside(self.name, rel) for rel in files), delimiter=delimiter
        )


def beside(metadata_name: str, rel: str) -> str:
    """``rel``, relative to the metadata file's folder (DGL's format), as a path under the input prefix."""
    folder = PurePosixPath(metadata_name).parent
    return rel if folder == PurePosixPath(".") else (folder / rel).as_posix()


def is_graph_name(text: str) -> bool:
    """GraphStorm's graph-name rule (``graphstorm.utils.check_graph_name``): an identifier, '-' allowed, digits first too."""
    return text.isascii() and text.lstrip("0123456789").replace("-", "_").isidentifier()


def is_file_name(text: str) -> bool:
    """Whether ``text`` can be one file name in a folder: no separator or control character, not '.' or '..'."""
    return text not in (".", "..") and not any(ch in "/\\" or ord(ch) < 32 or ord(ch) == 127 for ch in text)


def parse_metadata(name: str, text: str) -> ChunkedGraph:
    """Parse and check the metadata's own consistency (no file is opened)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(f"{name} is not valid JSON: {err}.") from err
    r = _Reader(name, data)
    if not isinstance(data, dict):
        raise InputError(f"{name} must hold a JSON object.")
    graph_name = r.get(data, "graph_name", "graph_name", str)
    if not is_graph_name(graph_name):  # it names the partition config file
        raise r.fail(
            "graph_name", f"is {graph_name!r}, not a GraphStorm graph name (ASCII letters, digits, '_' and '-')"
        )
    ntypes = tuple(r.get(data, "node_type", "node_type", list))
    if not ntypes or not all(isinstance(t, str) and t for t in ntypes) or len(set(ntypes)) != len(ntypes):
        raise r.fail("node_type", "must be a non-empty list of distinct node type names")
    for i, ntype in enumerate(ntypes):
        if not is_file_name(ntype):  # it names the node type's assignment file
            raise r.fail(
                f"node_type[{i}]",
                f"is {ntype!r}, which cannot name a file (no '/', '\\', control characters, '.' or '..')",
            )
    per_chunk = r.get(data, "num_nodes_per_chunk", "num_nodes_per_chunk", list)
    if len(per_chunk) != len(ntypes):
        raise r.fail("num_nodes_per_chunk", f"has {len(per_chunk)} entries for {len(ntypes)} node types")
    node_chunk_rows = {
        t: r.counts(c, f"num_nodes_per_chunk[{i}] ({t})") for i, (t, c) in enumerate(zip(ntypes, per_chunk))
    }
    num_nodes = {t: sum(c) for t, c in node_chunk_rows.items()}
    given = data.get("num_nodes_per_type")
    if given is not None and list(given) != [num_nodes[t] for t in ntypes]:
        raise r.fail(
            "num_nodes_per_type", f"is {given}, but num_nodes_per_chunk adds up to {[num_nodes[t] for t in ntypes]}"
        )

    etype_names = r.get(data, "edge_type", "edge_type", list)
    if not etype_names or len(set(map(str, etype_names))) != len(etype_names):
        raise r.fail("edge_type", "must be a non-empty list of distinct edge types")
    edge_chunks = r.get(data, "num_edges_per_chunk", "num_edges_per_chunk", list)
    if len(edge_chunks) != len(etype_names):
        raise r.fail("num_edges_per_chunk", f"has {len(edge_chunks)} entries for {len(etype_names)} edge types")
    edges = r.get(data, "edges", "edges", dict)
    etypes = []
    for i, et in enumerate(etype_names):
        parts = et.split(":") if isinstance(et, str) else []
        if len(parts) != 3 or not all(parts):
            raise r.fail(f"edge_type[{i}]", f"must be 'src:rel:dst', got {et!r}")
        for end in (parts[0], parts[2]):
            if end not in ntypes:
                raise r.fail(f"edge_type[{i}]", f"({et}) names node type {end!r}, which node_type does not list")
        rows = r.counts(edge_chunks[i], f"num_edges_per_chunk[{i}] ({et})")
        chunks = r.chunks(r.get(edges, et, f"edges.{et}", dict), f"edges.{et}", EDGE_FORMATS)
        if len(chunks.files) != len(rows):
            raise r.fail(
                f"edges.{et}.data",
                f"lists {len(chunks.files)} file(s) but num_edges_per_chunk[{i}] has {len(rows)} chunk(s)",
            )
        etypes.append(EdgeType(et, parts[0], parts[1], parts[2], rows, chunks))
    for et in edges:
        if et not in etype_names:
            raise r.fail(f"edges.{et}", "is not an edge type listed in edge_type")

    node_data = _features(r, data, "node_data", {t: node_chunk_rows[t] for t in ntypes}, "node_type")
    edge_data = _features(r, data, "edge_data", {et.name: et.chunk_rows for et in etypes}, "edge_type")
    return ChunkedGraph(name, graph_name, ntypes, num_nodes, node_chunk_rows, tuple(etypes), node_data, edge_data)


def _features(
    r: _Reader, data: dict[str, Any], key: str, rows_by_type: dict[str, tuple[int, ...]], list_field: str
) -> dict[str, dict[str, Chunks]]:
    section = r.get(data, key, key, dict, required=False, default={})
    out: dict[str, dict[str, Chunks]] = {}
    for typ, feats in section.items():
        if typ not in rows_by_type:
            raise r.fail(f"{key}.{typ}", f"has feature chunks for {typ!r}, which {list_field} does not list")
        if not isinstance(feats, dict):
            raise r.fail(f"{key}.{typ}", "must map feature names to {format, data}")
        out[typ] = {}
        for feat, spec in feats.items():
            field = f"{key}.{typ}.{feat}"
            if "/" in feat:
                raise r.fail(field, "is a feature name with '/', which DGL's partition format cannot store")
            out[typ][feat] = r.chunks(spec, field, FEATURE_FORMATS)
    return out


def check_files(graph: ChunkedGraph, resolve: Callable[[str], Path | None]) -> None:
    """Every chunk file exists and holds the rows the metadata says (one sentence otherwise)."""
    from gsentry.partition.readers import count_rows

    def check(chunks: Chunks, expected: tuple[int, ...], counts_field: str) -> None:
        for i, rel in enumerate(chunks.files):
            path = resolve(rel)
            if path is None or not path.is_file():
                raise InputError(f"{graph.path}: field {chunks.field}.data[{i}] names {rel}, which does not exist.")
            n = count_rows(path, chunks)
            want = expected[i] if i < len(expected) else None
            if n != want:
                raise InputError(
                    f"{graph.path}: field {counts_field} says {want} row(s) for chunk {i} "
                    f"but {rel} ({chunks.field}) has {n}."
                )

    for i, et in enumerate(graph.etypes):
        check(et.edges, et.chunk_rows, f"num_edges_per_chunk[{i}] ({et.name})")
    for key, data, rows in (
        ("node_data", graph.node_data, graph.node_chunk_rows),
        ("edge_data", graph.edge_data, {et.name: et.chunk_rows for et in graph.etypes}),
    ):
        for typ, feats in data.items():
            for chunks in feats.values():
                expected = rows[typ]
                if len(chunks.files) != len(expected):
                    raise InputError(
                        f"{graph.path}: field {chunks.field}.data lists {len(chunks.files)} file(s) "
                        f"but {typ} has {len(expected)} chunk(s)."
                    )
                counts_field = ("num_nodes_per_chunk" if key == "node_data" else "num_edges_per_chunk") + f" ({typ})"
                check(chunks, expected, counts_field)
