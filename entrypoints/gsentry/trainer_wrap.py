"""
Run a GraphStorm script seeded and with per-epoch metrics: ``python trainer_wrap.py [--local-rank=N] <script> <args>``.

The train entry point starts GraphStorm's DGL servers and ``torch.distributed.launch`` trainer
group with this file in front of GraphStorm's script (``torch.distributed.launch`` puts its
``--local-rank=N`` before the script path). GraphStorm 0.5 has no seed option, so with
``GSENTRY_SEED`` set this seeds Python's, NumPy's, PyTorch's and DGL's generators before the
script runs (model initialisation, mini-batch order and neighbour sampling); with
``GSENTRY_METRICS_FILE`` set, rank 0 collects per-epoch metrics there (:mod:`gsentry.metrics`).
Then the script runs as ``__main__``, exactly as if started directly.
"""

from __future__ import annotations

import os
import runpy
import sys
from pathlib import Path

SEED_ENV = "GSENTRY_SEED"
METRICS_FILE_ENV = "GSENTRY_METRICS_FILE"
LOCAL_RANK_FLAGS = ("--local-rank", "--local_rank")


def split_argv(argv: list[str]) -> tuple[list[str], str, list[str]]:
    """``(launcher flags before the script, script, script args)``."""
    leading = []
    for i, token in enumerate(argv):
        if token.split("=", 1)[0] in LOCAL_RANK_FLAGS:
            leading.append(token)
            continue
        return leading, token, argv[i + 1 :]
    raise SystemExit("trainer_wrap.py: no GraphStorm script given")


def seed_everything(seed: int) -> None:
    import random

    import dgl
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    dgl.seed(seed)


def is_rank_zero() -> bool:
    # torch.distributed.launch sets RANK for trainers; DGL servers have DGL_ROLE=server.
    return os.environ.get("DGL_ROLE") != "server" and os.environ.get("RANK", "0") == "0"


def main() -> None:
    leading, script, rest = split_argv(sys.argv[1:])
    seed = os.environ.get(SEED_ENV)
    if seed:
        seed_everything(int(seed))
    metrics_file = os.environ.get(METRICS_FILE_ENV)
    if metrics_file and is_rank_zero():
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from gsentry.metrics import install

        install(Path(metrics_file), int(seed) if seed else None)
        sys.path.pop(0)
    sys.argv = [script, *leading, *rest]
    sys.path[0] = str(Path(script).resolve().parent)  # as if the script had been started itself
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
