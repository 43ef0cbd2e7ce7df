"""
A small synthetic user/movie/genre graph for edge classification, with a featureless node type.

The shape of the graph that made 2-host inference flaky (issue 9): edge classification on
``user,rates,movie``, a ``genre`` node type with no features (GraphStorm gives it learnable
embeddings), string node IDs, and explicit train/val/test edge splits (GConstruct's random
split is not seeded), so a test knows exactly which edges must get a prediction.

* users and movies each belong to one of ``num_groups`` taste groups; features are the group's
  centroid plus noise; a rating's class is ``(user group + movie group) % num_classes``, so the
  label is learnable from the endpoints' features;
* every movie has 1-2 genres; genres carry no feature.

Layout under the output path (paths in ``config.json`` are relative to it)::

    config.json
    nodes/{user,movie,genre}.parquet     nid: string (+ feat: list<float32> for user and movie)
    edges/<src>_<rel>_<dst>.parquet      src_id, dst_id (+ rate: int32 on user_rates_movie)
    splits/{train,val,test}.parquet      src_id, dst_id (user_rates_movie edges)

Only numpy and pyarrow: the Airflow side never imports GraphStorm.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from graphstorm_provider.data import storage

GRAPH_CONFIG_FILE = "config.json"
TARGET_ETYPE = ("user", "rates", "movie")
REVERSE_ETYPE = ("movie", "rated-by", "user")
LABEL_COL = "rate"
FEATURE_NAME = "feat"
ID_COL = "nid"
SPLIT_FILES = {"train": "splits/train.parquet", "valid": "splits/val.parquet", "test": "splits/test.parquet"}
FEATURED_NTYPES = ("user", "movie")
FEATURELESS_NTYPE = "genre"
RELATIONS: tuple[tuple[str, str, str], ...] = (
    TARGET_ETYPE,
    REVERSE_ETYPE,
    ("movie", "has-genre", "genre"),
    ("genre", "genre-of", "movie"),
)


@dataclass(frozen=True)
class SyntheticMoviesSpec:
    """Sizes and seed of the synthetic user/movie/genre graph."""

    num_users: int = 300
    num_movies: int = 200
    num_genres: int = 8
    ratings_per_user: int = 10
    num_classes: int = 3
    num_groups: int = 3
    feat_dim: int = 16
    seed: int = 7

    def validate(self) -> None:
        for name in ("num_users", "num_movies", "num_genres", "ratings_per_user", "feat_dim", "num_groups"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {self.num_classes!r}")
        if self.ratings_per_user > self.num_movies:
            raise ValueError("ratings_per_user cannot exceed num_movies")


@dataclass(frozen=True)
class MoviesGraph:
    """The generated movies graph: node IDs, features and the rating edges (with their classes)."""

    node_ids: dict[str, list[str]]
    features: dict[str, np.ndarray]
    ratings: tuple[np.ndarray, np.ndarray, np.ndarray]  # user index, movie index, class
    genres: tuple[np.ndarray, np.ndarray]  # movie index, genre index
    splits: dict[str, np.ndarray]  # split name -> indices into ratings


def _ids(prefix: str, count: int) -> list[str]:
    width = len(str(count))
    return [f"{prefix}{i:0{width}d}" for i in range(count)]


def build_graph(spec: SyntheticMoviesSpec) -> MoviesGraph:
    spec.validate()
    rng = np.random.default_rng(spec.seed)
    centroids = rng.normal(size=(spec.num_groups, spec.feat_dim)) * 1.5
    user_group = rng.integers(0, spec.num_groups, spec.num_users)
    movie_group = rng.integers(0, spec.num_groups, spec.num_movies)
    feats = {
        "user": (centroids[user_group] + rng.normal(size=(spec.num_users, spec.feat_dim))).astype(np.float32),
        "movie": (centroids[movie_group] + rng.normal(size=(spec.num_movies, spec.feat_dim))).astype(np.float32),
    }
    users = np.repeat(np.arange(spec.num_users), spec.ratings_per_user)
    movies = np.concatenate(
        [rng.choice(spec.num_movies, spec.ratings_per_user, replace=False) for _ in range(spec.num_users)]
    )
    rates = ((user_group[users] + movie_group[movies]) % spec.num_classes).astype(np.int32)
    genre_movies, genre_ids = [], []
    for movie in range(spec.num_movies):
        for genre in rng.choice(spec.num_genres, int(rng.integers(1, 3)), replace=False):
            genre_movies.append(movie)
            genre_ids.append(int(genre))
    order = rng.permutation(users.shape[0])
    n_train, n_val = int(0.7 * len(order)), int(0.1 * len(order))
    splits = {
        "train": np.sort(order[:n_train]),
        "valid": np.sort(order[n_train : n_train + n_val]),
        "test": np.sort(order[n_train + n_val :]),
    }
    node_ids = {
        "user": _ids("u", spec.num_users),
        "movie": _ids("m", spec.num_movies),
        FEATURELESS_NTYPE: _ids("g", spec.num_genres),
    }
    return MoviesGraph(
        node_ids, feats, (users, movies, rates), (np.asarray(genre_movies), np.asarray(genre_ids)), splits
    )


def edge_file(relation: tuple[str, str, str]) -> str:
    return f"edges/{'_'.join(relation)}.parquet"


def gconstruct_config() -> dict[str, Any]:
    nodes = []
    for ntype in (*FEATURED_NTYPES, FEATURELESS_NTYPE):
        node: dict[str, Any] = {
            "node_type": ntype,
            "format": {"name": "parquet"},
            "files": [f"nodes/{ntype}.parquet"],
            "node_id_col": ID_COL,
        }
        if ntype in FEATURED_NTYPES:
            node["features"] = [{"feature_col": FEATURE_NAME, "feature_name": FEATURE_NAME}]
        nodes.append(node)
    edges = []
    for rel in RELATIONS:
        edge: dict[str, Any] = {
            "relation": list(rel),
            "format": {"name": "parquet"},
            "files": [edge_file(rel)],
            "source_id_col": "src_id",
            "dest_id_col": "dst_id",
        }
        if rel == TARGET_ETYPE:
            edge["labels"] = [
                {
                    "label_col": LABEL_COL,
                    "task_type": "classification",
                    "custom_split_filenames": {**SPLIT_FILES, "column": ["src_id", "dst_id"]},
                    "label_stats_type": "frequency_cnt",
                }
            ]
        edges.append(edge)
    return {"version": "gconstruct-v0.1", "nodes": nodes, "edges": edges}


def _feature_array(feat: np.ndarray) -> pa.Array[Any]:
    return pa.FixedSizeListArray.from_arrays(pa.array(feat.reshape(-1), type=pa.float32()), feat.shape[1])


def write_graph(graph: MoviesGraph, out_dir: Path) -> None:
    def put(table: pa.Table, rel: str) -> None:
        path = out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path)

    for ntype, ids in graph.node_ids.items():
        columns: dict[str, pa.Array[Any]] = {ID_COL: pa.array(ids, type=pa.string())}
        if ntype in graph.features:
            columns[FEATURE_NAME] = _feature_array(graph.features[ntype])
        put(pa.table(columns), f"nodes/{ntype}.parquet")
    user_ids = np.asarray(graph.node_ids["user"], dtype=object)
    movie_ids = np.asarray(graph.node_ids["movie"], dtype=object)
    genre_ids = np.asarray(graph.node_ids[FEATURELESS_NTYPE], dtype=object)
    users, movies, rates = graph.ratings
    u, m = user_ids[users], movie_ids[movies]
    put(pa.table({"src_id": u, "dst_id": m, LABEL_COL: pa.array(rates, type=pa.int32())}), edge_file(TARGET_ETYPE))
    put(pa.table({"src_id": m, "dst_id": u}), edge_file(REVERSE_ETYPE))
    gm, gg = movie_ids[graph.genres[0]], genre_ids[graph.genres[1]]
    put(pa.table({"src_id": gm, "dst_id": gg}), edge_file(RELATIONS[2]))
    put(pa.table({"src_id": gg, "dst_id": gm}), edge_file(RELATIONS[3]))
    for split, rel in SPLIT_FILES.items():
        idx = graph.splits[split]
        put(pa.table({"src_id": u[idx], "dst_id": m[idx]}), rel)
    (out_dir / GRAPH_CONFIG_FILE).write_text(json.dumps(gconstruct_config(), indent=2) + "\n", encoding="utf-8")


def generate_synthetic_movies(output_path: str, spec: SyntheticMoviesSpec | None = None) -> MoviesGraph:
    """Write the raw graph under ``output_path`` (a directory or ``file://`` URI); returns it."""
    spec = spec or SyntheticMoviesSpec()
    graph = build_graph(spec)
    out_dir = storage.local_path(output_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_graph(graph, out_dir)
    return graph


def raw_test_edges(graph: MoviesGraph) -> set[tuple[str, str]]:
    """Return the raw ``(user, movie)`` IDs of the test edges: each must get a prediction."""
    users, movies, _ = graph.ratings
    idx = graph.splits["test"]
    return {(graph.node_ids["user"][u], graph.node_ids["movie"][m]) for u, m in zip(users[idx], movies[idx])}


def edge_classification_config(num_classes: int) -> dict[str, Any]:
    return {
        "version": 1.0,
        "gsf": {
            "basic": {"model_encoder_type": "rgcn", "backend": "gloo", "verbose": False},
            "gnn": {"use_mini_batch_infer": False},
            "input": {
                "restore_model_path": None,
                "node_feat_name": [f"{ntype}:{FEATURE_NAME}" for ntype in FEATURED_NTYPES],
            },
            "output": {"save_model_path": None, "save_embed_path": None},
            "hyperparam": {"dropout": 0.0, "wd_l2norm": 0, "eval_batch_size": 1024},
            "rgcn": {"num_bases": -1, "use_self_loop": True, "use_node_embeddings": False},
            "edge_classification": {
                "target_etype": [",".join(TARGET_ETYPE)],
                "reverse_edge_types_map": [f"{TARGET_ETYPE[0]},{TARGET_ETYPE[1]},{REVERSE_ETYPE[1]},{TARGET_ETYPE[2]}"],
                "label_field": LABEL_COL,
                "multilabel": False,
                "num_classes": num_classes,
                "exclude_training_targets": True,
            },
        },
    }


def edge_classification_yaml(num_classes: int) -> str:
    return "---\n" + yaml.safe_dump(edge_classification_config(num_classes), sort_keys=False)
