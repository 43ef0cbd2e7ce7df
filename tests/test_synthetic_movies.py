"""The synthetic user/movie/genre graph (issue 9's shape): files, GConstruct config, splits."""

from __future__ import annotations

import json

import pyarrow.parquet as pq

from graphstorm_provider.data.synthetic_movies import (
    FEATURELESS_NTYPE,
    SPLIT_FILES,
    SyntheticMoviesSpec,
    edge_classification_config,
    generate_synthetic_movies,
    raw_test_edges,
)


def test_graph_has_a_featureless_type_and_explicit_disjoint_edge_splits(tmp_path):
    spec = SyntheticMoviesSpec(num_users=40, num_movies=30, ratings_per_user=5)
    graph = generate_synthetic_movies(f"file://{tmp_path}", spec)
    config = json.loads((tmp_path / "config.json").read_text())
    nodes = {n["node_type"]: n for n in config["nodes"]}
    assert "features" not in nodes[FEATURELESS_NTYPE]
    assert all("features" in nodes[t] for t in ("user", "movie"))
    assert pq.read_table(tmp_path / f"nodes/{FEATURELESS_NTYPE}.parquet").column_names == ["nid"]
    rates = pq.read_table(tmp_path / "edges/user_rates_movie.parquet").to_pydict()
    pairs = list(zip(rates["src_id"], rates["dst_id"]))
    assert len(pairs) == len(set(pairs)) == 40 * 5
    splits = {name: set(zip(*pq.read_table(tmp_path / rel).to_pydict().values())) for name, rel in SPLIT_FILES.items()}
    assert splits["train"] | splits["valid"] | splits["test"] == set(pairs)
    assert sum(map(len, splits.values())) == len(pairs)
    assert splits["test"] == raw_test_edges(graph)
    assert set(rates["rate"]) <= set(range(spec.num_classes))
    ec = edge_classification_config(spec.num_classes)["gsf"]["edge_classification"]
    assert ec["target_etype"] == ["user,rates,movie"]
    # Deterministic: the same spec writes the same graph.
    again = generate_synthetic_movies(f"file://{tmp_path}/again", spec)
    assert raw_test_edges(again) == raw_test_edges(graph)
