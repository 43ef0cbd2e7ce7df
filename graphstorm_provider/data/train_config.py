"""
The GraphStorm YAML config for node classification on the synthetic ACM graph.

It holds what defines the task (encoder, target node type, label, features, how inference
runs); the hyperparameters the example DAG exposes (epochs, hidden size, layers, fan-out, batch
size, learning rate) are passed as GraphStorm command-line flags instead, as GraphStorm's
SageMaker examples do, and override anything here.
"""

from __future__ import annotations

from typing import Any

import yaml

from graphstorm_provider.data.synthetic_acm import FEATURE_NAME, LABEL_COL, TARGET_NTYPE

NODE_TYPES = ("paper", "author", "subject")


def node_classification_config(num_classes: int, *, target_ntype: str = TARGET_NTYPE) -> dict[str, Any]:
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer of at least 2, got {num_classes!r}")
    return {
        "version": 1.0,
        "gsf": {
            "basic": {"model_encoder_type": "rgcn", "backend": "gloo", "verbose": False},
            "gnn": {
                # Full-graph inference is what saves embeddings for every node (GraphStorm
                # does not save them with mini-batch inference).
                "use_mini_batch_infer": False,
            },
            "input": {
                "restore_model_path": None,
                "node_feat_name": [f"{ntype}:{FEATURE_NAME}" for ntype in NODE_TYPES],
            },
            "output": {"save_model_path": None, "save_embed_path": None},
            "hyperparam": {"dropout": 0.0, "wd_l2norm": 0, "eval_batch_size": 1024},
            "rgcn": {"num_bases": -1, "use_self_loop": True, "use_node_embeddings": False},
            "node_classification": {
                "target_ntype": target_ntype,
                "label_field": LABEL_COL,
                "multilabel": False,
                "num_classes": num_classes,
            },
        },
    }


def node_classification_yaml(num_classes: int, *, target_ntype: str = TARGET_NTYPE) -> str:
    return "---\n" + yaml.safe_dump(node_classification_config(num_classes, target_ntype=target_ntype), sort_keys=False)


def hyperparameter_args(
    *, num_epochs: int, hidden_size: int, num_layers: int, fanout: int, batch_size: int, lr: float
) -> list[str]:
    """GraphStorm flags for the exposed hyperparameters (fan-out repeated once per layer)."""
    return [
        "--num-epochs",
        str(num_epochs),
        "--hidden-size",
        str(hidden_size),
        "--num-layers",
        str(num_layers),
        "--fanout",
        ",".join([str(fanout)] * num_layers),
        "--batch-size",
        str(batch_size),
        "--lr",
        str(lr),
    ]
