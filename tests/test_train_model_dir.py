"""SageMaker's model dir (``/opt/ml/model``, packed as ``model.tar.gz``) after multi-host training.

GraphStorm saves a checkpoint as if every trainer wrote into one shared folder: rank 0 the dense
model, each rank its slice of every learnable node embedding (``<ntype>/sparse_emb_<rank>.pt``).
Our hosts share no filesystem, so each host's save folder holds only its own ranks' files; SageMaker
packs only the leader's ``/opt/ml/model``. The leader used to copy its own checkpoint folder there:
``model.tar.gz`` of a 2-host model with a featureless node type lacked the other host's
``sparse_emb_*.pt`` (the model folder under ``--model-artifact-s3`` had them all).

Here two real entry-point processes (``gsentry``, the code ``train_entry.py`` runs after GraphStorm)
save what GraphStorm's trainers save on two hosts with two trainers each, and the leader's model dir
must be what GraphStorm itself would give on one shared filesystem. The same in real containers,
with real GraphStorm: ``tests/test_compose_model_tar.py``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ENTRYPOINTS = Path(__file__).resolve().parents[1] / "entrypoints"
sys.path.insert(0, str(ENTRYPOINTS))

from gsentry.cluster import Cluster  # noqa: E402
from gsentry.contract import read_container_env  # noqa: E402
from gsentry.errors import EntryError  # noqa: E402
from gsentry.job import HostJob  # noqa: E402
from gsentry.manifest import FileEntry, file_entries, merge_entries  # noqa: E402
from gsentry.model import plan_model_dir  # noqa: E402
from gsentry.transfer import Transfer, parse_uri  # noqa: E402

HOSTS = ("algo-1", "algo-2")
BUCKET = "gs-model-dir"
RUNTIME_CONFIG = "GRAPHSTORM_RUNTIME_UPDATED_TRAINING_CONFIG.yaml"  # every GraphStorm process writes it
GCONSTRUCT_CONFIG = "data_transform_new.json"  # rank 0 copies it
METRICS = "metrics.json"  # the leader's, uploaded beside the model: not part of the model dir
DRIVER_TIMEOUT_S = 90


def _checkpoint(epoch: int, ranks: range, *, dense: bool) -> dict[str, str]:
    """What GraphStorm's trainers ``ranks`` write into ``epoch-<epoch>/`` (rank 0 also the dense model)."""
    files = {
        f"epoch-{epoch}/{ntype}/sparse_emb_{rank:05d}.pt": f"{ntype} rows of rank {rank}, epoch {epoch}"
        for ntype in ("genre", "studio")
        for rank in ranks
    }
    if dense:
        files[f"epoch-{epoch}/model.bin"] = f"dense weights, epoch {epoch}"
        files[f"epoch-{epoch}/optimizers.bin"] = f"optimizer state, epoch {epoch}"
    return files


# Each host's save folder after 2 epochs, 2 trainers per host (ranks 0-1 on algo-1, 2-3 on algo-2).
SAVED = {
    "algo-1": {
        **_checkpoint(0, range(0, 2), dense=True),
        **_checkpoint(1, range(0, 2), dense=True),
        RUNTIME_CONFIG: "gsf: {}\n",
        GCONSTRUCT_CONFIG: "{}",
    },
    "algo-2": {
        **_checkpoint(0, range(2, 4), dense=False),
        **_checkpoint(1, range(2, 4), dense=False),
        RUNTIME_CONFIG: "gsf: {}\n",
    },
}


def shared_filesystem_model_dir(saved: dict[str, dict[str, str]], epoch: str) -> dict[str, str]:
    """
    ``/opt/ml/model`` as GraphStorm's own ``copy_best_model_to_sagemaker_output`` fills it on one shared folder.

    The chosen checkpoint's files at the top, the save folder's top-level yaml/json beside them.
    """
    union = {rel: text for files in saved.values() for rel, text in files.items()}
    inside = {rel[len(epoch) + 1 :]: text for rel, text in union.items() if rel.startswith(epoch + "/")}
    configs = {rel: text for rel, text in union.items() if "/" not in rel and rel.endswith((".yaml", ".yml", ".json"))}
    return {**inside, **configs}


DRIVER = textwrap.dedent("""
    import json
    import sys
    sys.path.insert(0, sys.argv[1])
    from gsentry.contract import read_container_env
    from gsentry.job import HostJob
    from gsentry.model import make_save_model_path

    env = read_container_env()
    saved = json.loads(sys.argv[3])[env.current_host]

    def body(job):
        job.cluster.rendezvous()
        save_model_path = make_save_model_path(job.work)
        for rel, text in saved.items():
            (save_model_path / rel).parent.mkdir(parents=True, exist_ok=True)
            (save_model_path / rel).write_text(text)
        extra = None
        if env.is_leader:
            metrics = job.work / "metrics.json"
            metrics.write_text("{}")
            extra = {"metrics.json": metrics}
        job.upload_model(save_model_path, sys.argv[2], "--model-artifact-s3", extra=extra)

    HostJob.create(env, "train").run(body)
""")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_hosts(tmp_path: Path, model_uri: str, saved: dict[str, dict[str, str]]) -> dict[str, Path]:
    """Run the driver as every host of one job; return each host's model dir."""
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    port = _free_port()
    procs = []
    try:
        for host in saved:
            env = {k: v for k, v in os.environ.items() if not k.startswith(("SM_", "GSENTRY_"))}
            env.update(
                {
                    "GRAPHSTORM_OPT_ML": str(tmp_path / host),
                    "TRAINING_JOB_NAME": "train-model-dir",
                    "SM_TRAINING_ENV": json.dumps({"hosts": list(saved), "current_host": host}),
                    "GSENTRY_RDZV_PORT": str(port),
                    "GSENTRY_HOST_ADDRESSES": json.dumps({next(iter(saved)): "127.0.0.1"}),
                    "GSENTRY_RDZV_TIMEOUT": "30",
                    "GSENTRY_PEER_TIMEOUT": "30",
                    "GSENTRY_HEARTBEAT": "0.5",
                }
            )
            procs.append(
                subprocess.Popen(
                    [sys.executable, str(script), str(ENTRYPOINTS), model_uri, json.dumps(saved)],
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        results = [proc.communicate(timeout=DRIVER_TIMEOUT_S) for proc in procs]
        assert [proc.returncode for proc in procs] == [0] * len(procs), results
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    return {host: tmp_path / host / "model" for host in saved}


def tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("scheme", ["file", "s3"])
def test_the_leaders_model_dir_holds_every_hosts_share_of_the_chosen_checkpoint(tmp_path, scheme, request):
    if scheme == "s3":
        aws_env = request.getfixturevalue("aws_env")
        model_uri = f"{aws_env.bucket(BUCKET)}/run/model/"
    else:
        model_uri = f"file://{tmp_path}/model/"
    model_dirs = run_hosts(tmp_path, model_uri, SAVED)

    expected = shared_filesystem_model_dir(SAVED, "epoch-1")
    assert sorted(rel for rel in expected if "sparse_emb" in rel) == [
        f"{ntype}/sparse_emb_{rank:05d}.pt" for ntype in ("genre", "studio") for rank in range(4)
    ]
    assert tree(model_dirs["algo-1"]) == expected
    # Only the leader's model dir is packed: the other host leaves its own empty.
    assert tree(model_dirs["algo-2"]) == {}


def test_one_host_model_dir_is_its_own_latest_checkpoint(tmp_path):
    saved = {"algo-1": {**_checkpoint(0, range(0, 2), dense=True), **_checkpoint(1, range(0, 2), dense=True)}}
    saved["algo-1"][RUNTIME_CONFIG] = "gsf: {}\n"
    model_dirs = run_hosts(tmp_path, f"file://{tmp_path}/model/", saved)
    assert tree(model_dirs["algo-1"]) == shared_filesystem_model_dir(saved, "epoch-1")


# --- the plan, on its own --------------------------------------------------------------------------


def entries(files: dict[str, str]) -> list[FileEntry]:
    """Manifest entries of ``{path: text}`` (the digest stands for the content)."""
    return [FileEntry(path, len(text), f"sha-of-{text}") for path, text in sorted(files.items())]


def test_plan_takes_the_leaders_files_from_its_disk_and_the_other_hosts_from_the_prefix():
    own = entries(SAVED["algo-1"]) + entries({METRICS: "{}"})
    every_host = merge_entries([own, entries(SAVED["algo-2"])])
    plan = plan_model_dir(every_host, own, exclude={METRICS})
    assert plan is not None
    assert plan.checkpoint == "epoch-1"
    assert plan.own == {
        "model.bin": "epoch-1/model.bin",
        "optimizers.bin": "epoch-1/optimizers.bin",
        "genre/sparse_emb_00000.pt": "epoch-1/genre/sparse_emb_00000.pt",
        "genre/sparse_emb_00001.pt": "epoch-1/genre/sparse_emb_00001.pt",
        "studio/sparse_emb_00000.pt": "epoch-1/studio/sparse_emb_00000.pt",
        "studio/sparse_emb_00001.pt": "epoch-1/studio/sparse_emb_00001.pt",
        RUNTIME_CONFIG: RUNTIME_CONFIG,  # both hosts wrote it; the leader's is the one listed
        GCONSTRUCT_CONFIG: GCONSTRUCT_CONFIG,
    }
    assert {target: entry.path for target, entry in plan.others.items()} == {
        f"{ntype}/sparse_emb_{rank:05d}.pt": f"epoch-1/{ntype}/sparse_emb_{rank:05d}.pt"
        for ntype in ("genre", "studio")
        for rank in (2, 3)
    }
    assert set(plan.own) | set(plan.others) == set(shared_filesystem_model_dir(SAVED, "epoch-1"))


def test_plan_skips_a_newest_checkpoint_that_misses_a_ranks_file_and_lets_a_config_win_a_clash():
    leader = {**_checkpoint(0, range(0, 1), dense=True), **_checkpoint(1, range(0, 1), dense=True)}
    leader["epoch-0/settings.yaml"] = "inside"
    leader["settings.yaml"] = "top"
    other = {**_checkpoint(0, range(1, 3), dense=False), **_checkpoint(1, range(2, 3), dense=False)}  # no rank 1
    plan = plan_model_dir(merge_entries([entries(leader), entries(other)]), entries(leader))
    assert plan is not None
    assert plan.checkpoint == "epoch-0"
    assert plan.own["settings.yaml"] == "settings.yaml"
    assert sorted(plan.others) == [
        f"{ntype}/sparse_emb_{rank:05d}.pt" for ntype in ("genre", "studio") for rank in (1, 2)
    ]


def test_plan_without_a_complete_checkpoint_is_none():
    only_embeddings = entries(_checkpoint(0, range(0, 2), dense=False))
    assert plan_model_dir(only_embeddings, only_embeddings) is None
    assert plan_model_dir([], []) is None


def test_a_file_of_another_host_that_changed_after_its_upload_fails_the_leader_naming_it(tmp_path):
    """The leader reads only what the manifest vouches for: a download that does not match its SHA-256 fails."""
    prefix = tmp_path / "model"
    (prefix / "epoch-0" / "genre").mkdir(parents=True)
    (prefix / "epoch-0" / "genre" / "sparse_emb_00001.pt").write_text("overwritten")
    saved = tmp_path / "saved"
    leader_files = _checkpoint(0, range(0, 1), dense=True)
    for rel, text in leader_files.items():
        (saved / rel).parent.mkdir(parents=True, exist_ok=True)
        (saved / rel).write_text(text)
    own = file_entries(saved)
    uploaded_by_algo2 = [FileEntry("epoch-0/genre/sparse_emb_00001.pt", 11, "0" * 64)]
    plan = plan_model_dir(merge_entries([own, uploaded_by_algo2]), own)
    assert plan is not None
    env = read_container_env({"GRAPHSTORM_OPT_ML": str(tmp_path / "opt" / "ml"), "TRAINING_JOB_NAME": "train-job"})
    job = HostJob(env, Transfer(), Cluster(env), tmp_path / "job", "train")
    uri = f"file://{prefix}/"
    with pytest.raises(EntryError) as info:
        job._fill_model_dir(plan, saved, parse_uri(uri), "--model-artifact-s3")
    assert str(info.value) == (
        f"--model-artifact-s3 file://{prefix}/epoch-0/genre/sparse_emb_00001.pt does not match the SHA-256 its "
        "host uploaded (something wrote to the model folder during the job)."
    )
