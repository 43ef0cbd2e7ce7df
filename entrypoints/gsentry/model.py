"""Layout of GraphStorm model artifacts: which saved checkpoint is the model.

``--save-model-path`` receives one folder per checkpoint (``epoch-<E>`` or
``epoch-<E>-iter-<I>``) holding ``model.bin`` (dense weights, rank 0) and per-rank sparse
embedding files, plus top-level config files. The whole tree goes to ``--model-artifact-s3``;
the latest checkpoint is what inference restores and what lands in ``/opt/ml/model``.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path, PurePosixPath
from typing import Iterable

CHECKPOINT_DIR = re.compile(r"^epoch-(\d+)(?:-iter-(\d+))?$")
MODEL_FILE = "model.bin"
CONFIG_SUFFIXES = (".yaml", ".yml", ".json")


def checkpoint_key(name: str) -> tuple[int, int] | None:
    match = CHECKPOINT_DIR.match(name)
    if not match:
        return None
    return int(match.group(1)), int(match.group(2) or 0)


def latest_checkpoint(names: Iterable[str]) -> str | None:
    """The newest ``epoch-*`` name (GraphStorm's ordering: epoch, then iteration)."""
    keyed = [(checkpoint_key(n), n) for n in names]
    keyed = [(k, n) for k, n in keyed if k is not None]
    return max(keyed)[1] if keyed else None


def files_to_restore(relative_files: list[str]) -> tuple[str, list[str]]:
    """Given every file under a model artifact prefix, pick the checkpoint to restore.

    Returns ``(checkpoint_dir, files)``: ``""`` when the prefix itself is a checkpoint (has
    ``model.bin`` at its top, e.g. ``.../epoch-2/``), else the latest ``epoch-*`` folder; files are
    that checkpoint's files plus top-level config files.
    """
    top = [f for f in relative_files if "/" not in f]
    if MODEL_FILE in top or not relative_files:
        return "", list(relative_files) if MODEL_FILE in top else []
    dirs = {PurePosixPath(f).parts[0] for f in relative_files if "/" in f}
    chosen = latest_checkpoint(dirs)
    if chosen is None:
        return "", list(relative_files)
    wanted = [f for f in relative_files if f.startswith(chosen + "/")]
    wanted += [f for f in top if f.endswith(CONFIG_SUFFIXES)]
    return chosen, wanted


def copy_latest_to(save_model_path: Path, model_dir: Path) -> str | None:
    """Copy the latest checkpoint and top-level configs into SageMaker's model dir."""
    if not save_model_path.is_dir():
        return None
    chosen = latest_checkpoint(p.name for p in save_model_path.iterdir() if p.is_dir())
    if chosen is None:
        return None
    model_dir.mkdir(parents=True, exist_ok=True)
    shutil.copytree(save_model_path / chosen, model_dir, dirs_exist_ok=True)
    for item in save_model_path.iterdir():
        if item.is_file() and item.suffix in CONFIG_SUFFIXES:
            shutil.copy2(item, model_dir / item.name)
    return chosen
