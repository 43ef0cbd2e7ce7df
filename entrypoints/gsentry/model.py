"""
Layout of GraphStorm model artifacts: which saved checkpoint is the model.

``--save-model-path`` receives one folder per checkpoint (``epoch-<E>`` or
``epoch-<E>-iter-<I>``), written by GraphStorm 0.5's ``GSgnnTrainer.save_model``: rank 0 saves
``model.bin`` (``torch.save`` of the dense weights: never zero bytes) and ``optimizers.bin``, and
every trainer rank saves its slice of each learnable node embedding as
``<ntype>/sparse_emb_<rank, 5 digits>.pt``. Top-level config files may sit beside the checkpoints.
The whole tree goes to ``--model-artifact-s3``; the newest *complete* checkpoint is what
inference restores and what lands in ``/opt/ml/model``.

Hosts share no filesystem: each host's save folder holds only its own ranks' files. So
``/opt/ml/model`` (which SageMaker packs from the leader only) is filled by the leader from the
model prefix once every host's upload is in (:func:`plan_model_dir`), not from its own folder.

A checkpoint is **complete** when it has ``model.bin``, no file of it is empty, and the sparse
embedding files of each node type are numbered ``0 .. n-1`` without a gap (GraphStorm's loader
reads ``sparse_emb_<i>.pt`` for every ``i`` below the number of files).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gsentry.manifest import FileEntry

CHECKPOINT_DIR = re.compile(r"^epoch-(\d+)(?:-iter-(\d+))?$")
MODEL_FILE = "model.bin"
# The folder of a host's work directory that GraphStorm saves checkpoints into.
SAVE_MODEL_DIR = "model_checkpoints"
CONFIG_SUFFIXES = (".yaml", ".yml", ".json")
_SPARSE_EMB = re.compile(r"^sparse_emb_(\d+)\.pt$")


def make_save_model_path(work: Path) -> Path:
    """
    Create and return the host's ``--save-model-path`` folder, before GraphStorm starts.

    Every GraphStorm process of a host (its DistDGL servers and trainers) builds a ``GSConfig``,
    which probes a missing ``save_model_path`` by creating and removing it, then creates it with
    ``os.makedirs(exist_ok=True)``. Run side by side, one process's probe removes the folder
    between another's ``mkdir`` and its ``isdir`` check, and that process dies with
    ``FileExistsError`` (seen on a 2-host training). An existing folder is probed with a temporary
    file instead, so nothing races.
    """
    path = work / SAVE_MODEL_DIR
    path.mkdir(parents=True, exist_ok=True)
    return path


def checkpoint_key(name: str) -> tuple[int, int] | None:
    match = CHECKPOINT_DIR.match(name)
    if not match:
        return None
    return int(match.group(1)), int(match.group(2) or 0)


def latest_checkpoint(names: Iterable[str]) -> str | None:
    """Return the newest ``epoch-*`` name (GraphStorm's ordering: epoch, then iteration)."""
    keyed = [(checkpoint_key(n), n) for n in names]
    keyed = [(k, n) for k, n in keyed if k is not None]
    return max(keyed)[1] if keyed else None


def incomplete_reason(files: Mapping[str, int]) -> str | None:
    """Why the checkpoint with ``files`` (``{path relative to it: size}``) is not complete, or None."""
    if MODEL_FILE not in files:
        return f"no {MODEL_FILE}"
    empty = sorted(rel for rel, size in files.items() if size <= 0)
    if empty:
        return f"empty file {empty[0]}"
    sparse: dict[str, set[int]] = {}
    for rel in files:
        parts = PurePosixPath(rel).parts
        match = _SPARSE_EMB.match(parts[-1]) if len(parts) == 2 else None
        if match:
            sparse.setdefault(parts[0], set()).add(int(match.group(1)))
    for ntype, ranks in sorted(sparse.items()):
        if ranks != set(range(len(ranks))):
            missing = min(set(range(max(ranks) + 1)) - ranks)
            return f"sparse embedding file {ntype}/sparse_emb_{missing:05d}.pt missing"
    return None


@dataclass(frozen=True)
class ModelChoice:
    """
    What to restore from a model prefix.

    The checkpoint folder (``""`` when the prefix is the checkpoint itself), the files to download
    (relative to the prefix), and why the newer checkpoints were skipped (``{name: reason}``).
    """

    checkpoint: str
    files: list[str]
    skipped: dict[str, str]


def choose_checkpoint(sizes: Mapping[str, int]) -> ModelChoice | None:
    """
    Pick the newest complete checkpoint among ``sizes`` (``{relative path: size}`` under a model prefix).

    The prefix itself is the checkpoint when it has ``model.bin`` at its top (``.../epoch-2/``);
    else the newest complete ``epoch-*`` folder, with the top-level config files. None: no
    complete checkpoint (``skipped`` reasons are then lost; use :func:`describe_incomplete`).
    """
    top = {rel: size for rel, size in sizes.items() if "/" not in rel}
    if MODEL_FILE in top:
        if incomplete_reason(sizes) is None:
            return ModelChoice("", sorted(sizes), {})
        return None
    skipped: dict[str, str] = {}
    for name in _checkpoints_newest_first(sizes):
        inside = {rel[len(name) + 1 :]: size for rel, size in sizes.items() if rel.startswith(name + "/")}
        reason = incomplete_reason(inside)
        if reason is None:
            files = sorted(f"{name}/{rel}" for rel in inside)
            files += sorted(rel for rel in top if rel.endswith(CONFIG_SUFFIXES))
            return ModelChoice(name, files, skipped)
        skipped[name] = reason
    return None


def describe_incomplete(sizes: Mapping[str, int]) -> str:
    """Why no checkpoint under a prefix is complete (for the one-sentence error)."""
    if not sizes:
        return "it holds no files"
    if MODEL_FILE in sizes:
        return f"its {MODEL_FILE} checkpoint is incomplete ({incomplete_reason(sizes)})"
    reasons = []
    for name in _checkpoints_newest_first(sizes)[:3]:
        inside = {rel[len(name) + 1 :]: size for rel, size in sizes.items() if rel.startswith(name + "/")}
        reasons.append(f"{name}: {incomplete_reason(inside)}")
    if not reasons:
        return "it has no model.bin and no epoch-* checkpoint folder"
    return "no checkpoint is complete (" + "; ".join(reasons) + ")"


def _checkpoints_newest_first(sizes: Mapping[str, int]) -> list[str]:
    dirs = {PurePosixPath(rel).parts[0] for rel in sizes if "/" in rel}
    named = [(checkpoint_key(d), d) for d in dirs]
    return [d for k, d in sorted(((k, d) for k, d in named if k is not None), reverse=True)]


def model_dir_path(checkpoint: str, path: str) -> str:
    """Where ``path`` (under a model prefix) goes in SageMaker's model dir: a checkpoint's files at its top."""
    inside = f"{checkpoint}/"
    return path[len(inside) :] if checkpoint and path.startswith(inside) else path


@dataclass(frozen=True)
class ModelDirPlan:
    """
    How the leader fills SageMaker's model dir (``/opt/ml/model``, packed as ``model.tar.gz``).

    ``checkpoint``: the folder chosen under the model prefix. ``own``: ``{path in the model dir: path
    under the prefix}`` of the files this host wrote itself (the same path in its save folder);
    ``others``: ``{path in the model dir: the manifest's entry}`` of those only another host had.
    """

    checkpoint: str
    own: dict[str, str]
    others: dict[str, FileEntry]


def plan_model_dir(
    files: Iterable[FileEntry], own: Iterable[FileEntry], exclude: Collection[str] = ()
) -> ModelDirPlan | None:
    """
    Plan SageMaker's model dir from a complete model prefix's ``files`` (every host's, as its manifest lists them).

    The newest complete checkpoint (:func:`choose_checkpoint`, the one inference restores) and the
    prefix's top-level config files, laid out as GraphStorm's own SageMaker training script lays
    them out from one shared folder: the checkpoint's files at the top, the configs beside them (a
    config wins a name clash: it is copied last there). A file that this host uploaded (``own``)
    with the listed size and SHA-256 is taken from its disk; every other one from the prefix.
    ``exclude``: paths under the prefix that are no part of the model (``metrics.json``).
    None: no complete checkpoint.
    """
    listed = {entry.path: entry for entry in files if entry.path not in exclude}
    choice = choose_checkpoint({path: entry.size for path, entry in listed.items()})
    if choice is None or not choice.checkpoint:
        return None
    targets: dict[str, str] = {}
    for path in choice.files:  # the checkpoint's files, then the configs
        targets[model_dir_path(choice.checkpoint, path)] = path
    mine = set(own)
    return ModelDirPlan(
        choice.checkpoint,
        {target: path for target, path in targets.items() if listed[path] in mine},
        {target: listed[path] for target, path in targets.items() if listed[path] not in mine},
    )
