"""
SageMaker's ``model.tar.gz`` from the compose emulation, in real containers.

At the end of a training job that succeeded, SageMaker packs the leader's (algo-1's) ``/opt/ml/model``
into ``<S3OutputPath>/<job name>/output/model.tar.gz``, the folder's contents at the archive's top. The
compose runner does the same (``execution/sm_output.py``, the module the one-host local backend packs with):
it streams algo-1's folder out of its exited container before teardown, repacks it and writes it,
to ``file://`` or ``s3://``. A failed job packs nothing; an empty or absent folder packs nothing; a job
name that is not one SageMaker job name is refused before anything runs, so nothing is ever written
outside ``<S3OutputPath>``.

The probe tests run a small Python script per host in a minimal image (seconds each). The e2e test
trains on 2 hosts with real GraphStorm on a graph with a featureless node type (``genre`` of the
synthetic user/movie/genre graph: GraphStorm gives it learnable sparse embeddings): every trainer
rank saves its slice as ``genre/sparse_emb_<rank>.pt`` on its own host, and the archive must hold
every host's (the leader fills ``/opt/ml/model`` from the model folder once every host's upload is
in). The faster test of that with two entry-point processes: ``tests/test_train_model_dir.py``.

Needs an engine (and, for the e2e test, the job image: ``docker/build_image.sh``; ``GRAPHSTORM_IMAGE``
picks the tag): skipped, with the reason, only where no engine can run.
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
import tarfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from bench import multihost_stress as stress
from tests.compose_jobs import script_job

if TYPE_CHECKING:
    from graphstorm_provider.jobs.request import JobRequest

LEADER = "algo-1"
MANIFEST = "_manifest.json"
METRICS = "metrics.json"  # uploaded beside the model by the leader, not part of the model dir
CONFIG_SUFFIXES = (".yaml", ".yml", ".json")
FEATURELESS_NTYPE = "genre"
NUM_EPOCHS = 2

# Every host: fill /opt/ml/model as ACTION_<host> says, then exit (0 unless the action fails).
# SM_MODEL_DIR: /opt/ml/model in a container, <work dir>/opt/ml/model for the one-host local backend.
MODEL_SCRIPT = r"""
import json, os, sys, time
me = json.loads(os.environ["SM_TRAINING_ENV"])["current_host"]
action = os.environ.get("ACTION_" + me.replace("-", "_"), "model")
model = os.environ["SM_MODEL_DIR"]
if action == "linked":  # the folder is a link to another folder of the container
    os.makedirs("/opt/ml/real-model", exist_ok=True)
    if os.path.isdir(model) and not os.path.islink(model):
        os.rmdir(model)
    os.symlink("/opt/ml/real-model", model)
    action = "model"
if action != "absent":
    os.makedirs(model, exist_ok=True)
if action.endswith("+data"):  # a custom script's output data (SageMaker's output.tar.gz)
    data = os.environ["SM_OUTPUT_DATA_DIR"]
    os.makedirs(f"{data}/logs", exist_ok=True)
    with open(f"{data}/logs/{me}.log", "w") as f:
        f.write(f"data of {me}")
if action.startswith("model"):
    os.makedirs(f"{model}/nested", exist_ok=True)
    with open(f"{model}/{me}.txt", "w") as f:
        f.write(f"written by {me}")
    with open(f"{model}/nested/weights.bin", "wb") as f:
        f.write(me.encode() * 1000)
print(f"{me}: {action}", flush=True)
if action.startswith("model-then-fail-after-"):  # its model dir is complete, then it fails
    time.sleep(float(action.rsplit("-", 1)[1]))
    sys.exit(3)
"""


def model_job(image: str, name: str, output_path: str, *, actions: dict[str, str] | None = None, count: int = 2):
    """A training request whose hosts run :data:`MODEL_SCRIPT`, SageMaker's output going to ``output_path``."""
    return script_job(image, name, MODEL_SCRIPT, count=count, actions=actions, output_path=output_path)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def files_under(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def archive_digests(archive: Path | bytes) -> dict[str, str]:
    """``{member path: SHA-256}`` of every file in a ``.tar.gz`` (a path, or its bytes)."""
    out = {}
    opened = tarfile.open(archive) if isinstance(archive, Path) else tarfile.open(fileobj=io.BytesIO(archive))
    with opened as tar:
        for member in tar.getmembers():
            if member.isfile():
                handle = tar.extractfile(member)
                assert handle is not None
                out[member.name] = hashlib.sha256(handle.read()).hexdigest()
    return out


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


LEADERS_MODEL = {"algo-1.txt": sha(b"written by algo-1"), "nested/weights.bin": sha(b"algo-1" * 1000)}
LEADERS_DATA = {"logs/algo-1.log": sha(b"data of algo-1")}


def run_compose(job: JobRequest, work: Path):
    from graphstorm_provider.execution.compose_runner import ComposeJobRunner

    lines: list[str] = []
    runner = ComposeJobRunner(job, log=lines.append, work_dir=work)
    try:
        result = runner.run()
    finally:
        runner.stop()
    return result, runner, lines


def assert_no_scratch_left(work: Path) -> None:
    """The archive was packed in the run's folder, and removed from there."""
    assert [p.name for p in work.iterdir() if p.name.startswith(".")] == []


# ---------------------------------------------------------------------------------------------
def test_only_the_leaders_model_dir_is_packed_once_after_success(compose_tool, probe_image, tmp_path):
    out = tmp_path / "sm-out"
    job = model_job(probe_image, unique("gs-mtar-ok"), f"file://{out}/")
    result, runner, lines = run_compose(job, tmp_path / "work")
    archive = out / job.job_name / "output" / "model.tar.gz"
    assert files_under(out) == [f"{job.job_name}/output/model.tar.gz"], "\n".join(lines[-20:])
    assert result.uploaded == [f"file://{out}/{job.job_name}/output/model.tar.gz"]
    # algo-1's folder, its entries at the archive's top; algo-2's files are not in it.
    with tarfile.open(archive) as tar:
        assert sorted(tar.getnames()) == ["algo-1.txt", "nested", "nested/weights.bin"]
    assert archive_digests(archive) == LEADERS_MODEL
    assert runner.leftovers() == []
    assert_no_scratch_left(tmp_path / "work")


def test_the_leaders_output_data_is_packed_as_output_tar_gz_beside_the_model(compose_tool, probe_image, tmp_path):
    """What a custom training script writes to SM_OUTPUT_DATA_DIR reaches SageMaker's output.tar.gz, the leader's only."""
    out = tmp_path / "sm-out"
    job = model_job(
        probe_image, unique("gs-otar-ok"), f"file://{out}/", actions={LEADER: "model+data", "algo-2": "model+data"}
    )
    result, runner, lines = run_compose(job, tmp_path / "work")
    folder = out / job.job_name / "output"
    assert files_under(out) == [f"{job.job_name}/output/model.tar.gz", f"{job.job_name}/output/output.tar.gz"], (
        "\n".join(lines[-20:])
    )
    assert result.uploaded == [(folder / "model.tar.gz").as_uri(), (folder / "output.tar.gz").as_uri()]
    assert archive_digests(folder / "model.tar.gz") == LEADERS_MODEL
    assert archive_digests(folder / "output.tar.gz") == LEADERS_DATA
    assert runner.leftovers() == []
    assert_no_scratch_left(tmp_path / "work")


def test_the_archive_goes_to_s3_through_the_moto_server(compose_tool, probe_image, aws_env, tmp_path):
    bucket = aws_env.bucket("gs-compose-model-tar")
    job = model_job(probe_image, unique("gs-mtar-s3"), f"{bucket}/sm-out")
    result, runner, _ = run_compose(job, tmp_path / "work")
    s3 = aws_env.client("s3")
    keys = [obj["Key"] for obj in s3.list_objects_v2(Bucket="gs-compose-model-tar").get("Contents", [])]
    assert keys == [f"sm-out/{job.job_name}/output/model.tar.gz"]
    assert result.uploaded == [f"{bucket}/{keys[0]}"]
    body = s3.get_object(Bucket="gs-compose-model-tar", Key=keys[0])["Body"].read()
    assert archive_digests(body) == LEADERS_MODEL
    assert runner.leftovers() == []


def test_a_failed_job_packs_nothing(compose_tool, probe_image, tmp_path):
    from graphstorm_provider.execution.compose_runner import ComposeJobError

    out = tmp_path / "sm-out"
    # The leader's model dir is complete and the leader exits 0; then algo-2 fails: the job failed.
    job = model_job(
        probe_image, unique("gs-mtar-fail"), f"file://{out}/", actions={"algo-2": "model-then-fail-after-2"}
    )
    with pytest.raises(ComposeJobError, match="host algo-2 .* exited with code 3"):
        run_compose(job, tmp_path / "work")
    assert files_under(out) == []
    assert_no_scratch_left(tmp_path / "work")


def test_a_model_folder_linked_inside_the_container_is_packed_as_the_folder_it_links_to(
    compose_tool, probe_image, tmp_path
):
    """podman 4 follows a link inside the container and sends the folder under the target's name."""
    out = tmp_path / "sm-out"
    job = model_job(probe_image, unique("gs-mtar-linked"), f"file://{out}/", actions={LEADER: "linked"})
    result, runner, lines = run_compose(job, tmp_path / "work")
    archive = out / job.job_name / "output" / "model.tar.gz"
    if compose_tool.engine != "podman" and not archive.exists():  # docker sends the link: refused, see below
        pytest.skip("this engine sends the link itself (test_a_folder_sent_as_a_link_is_refused)")
    assert result.uploaded == [archive.as_uri()], "\n".join(lines[-20:])
    assert archive_digests(archive) == LEADERS_MODEL
    assert runner.leftovers() == []


@pytest.mark.parametrize("action", ["empty", "absent"])
def test_an_empty_or_absent_model_dir_packs_nothing(compose_tool, probe_image, tmp_path, action):
    out = tmp_path / "sm-out"
    job = model_job(probe_image, unique(f"gs-mtar-{action}"), f"file://{out}/", actions={LEADER: action})
    result, runner, _ = run_compose(job, tmp_path / "work")
    assert result.uploaded == []
    assert files_under(out) == []
    assert runner.leftovers() == []


@pytest.mark.parametrize("action", ["model", "model+data"])
def test_the_one_host_local_backend_packs_the_same_archives(tmp_path, action):
    from graphstorm_provider.execution.local import LocalJobRunner

    out = tmp_path / "sm-out"
    job = model_job("graphstorm:sm", unique("gs-mtar-local"), f"file://{out}/", count=1, actions={LEADER: action})
    result = LocalJobRunner(job, runtime_python=sys.executable, log=lambda line: None).run()
    folder = out / job.job_name / "output"
    names = ["model.tar.gz", "output.tar.gz"] if action.endswith("+data") else ["model.tar.gz"]
    assert result.uploaded == [(folder / name).as_uri() for name in names]
    assert files_under(out) == [f"{job.job_name}/output/{name}" for name in names]
    assert archive_digests(folder / "model.tar.gz") == LEADERS_MODEL
    if action.endswith("+data"):
        assert archive_digests(folder / "output.tar.gz") == LEADERS_DATA


@pytest.mark.parametrize("name", ["../../escaped", "a/b", "%2e%2e", "x" * 64, "-x"])
@pytest.mark.parametrize("backend", ["local", "compose"])
def test_a_job_name_that_is_no_sagemaker_job_name_is_refused_before_anything_runs(backend, name, tmp_path):
    out = tmp_path / "deep" / "sm-out"
    job = model_job("graphstorm:sm", name, f"file://{out}/", count=1 if backend == "local" else 2)
    from graphstorm_provider.execution.compose_runner import ComposeJobRunner
    from graphstorm_provider.execution.local import LocalJobRunner
    from graphstorm_provider.execution.sm_output import OutputArchiveError

    runners = {
        "local": lambda: LocalJobRunner(job, runtime_python=sys.executable, work_dir=tmp_path / "work"),
        "compose": lambda: ComposeJobRunner(job, work_dir=tmp_path / "work"),
    }
    with pytest.raises(OutputArchiveError, match="is not a SageMaker job name") as refused:
        runners[backend]()
    assert isinstance(refused.value, ValueError)  # the operators fail such a task without retries
    assert files_under(tmp_path) == []


# ---------------------------------------------------------------------------------------------
def chosen_checkpoint_files(model_folder: Path) -> tuple[str, dict[str, str]]:
    """
    The newest checkpoint of a model folder, from its manifest, and ``{path in the model dir: SHA-256}``.

    What GraphStorm's own SageMaker script puts in ``/opt/ml/model`` on one shared filesystem:
    the checkpoint's files at the top, the folder's top-level config files beside them.
    """
    manifest = json.loads((model_folder / MANIFEST).read_text())
    files = {f["path"]: f["sha256"] for f in manifest["files"]}
    epochs = {path.split("/", 1)[0] for path in files if path.startswith("epoch-") and path.endswith("/model.bin")}
    newest = max(epochs, key=lambda name: int(name.split("-")[1]))
    inside = {path[len(newest) + 1 :]: sha for path, sha in files.items() if path.startswith(newest + "/")}
    configs = {
        path: sha
        for path, sha in files.items()
        if "/" not in path and path.endswith(CONFIG_SUFFIXES) and path != METRICS
    }
    return newest, {**inside, **configs}


@pytest.mark.e2e
def test_two_host_model_tar_holds_every_hosts_sparse_embeddings(compose_tool, job_image, tmp_path):
    from graphstorm_provider.execution.compose_runner import ComposeJobRunner
    from graphstorm_provider.jobs.train import TrainSpec
    from graphstorm_provider.uris import parse_uri

    prepared = stress.prepare_graph(tmp_path / "data", job_image)
    model_folder = tmp_path / "model"
    hyperparameters = list(stress.HYPERPARAMETERS)
    hyperparameters[hyperparameters.index("--num-epochs") + 1] = str(NUM_EPOCHS)
    job = TrainSpec(
        image_url=job_image,
        role="local",
        instance_type="local",
        instance_count=2,
        region="us-east-1",
        graph_data_s3=prepared.graph_uri,
        yaml_s3=prepared.yaml_uri,
        model_artifact_s3=f"file://{model_folder}/",
        graph_name=stress.GRAPH,
        task_type=stress.TASK,
        graphstorm_args=tuple(hyperparameters),
        task_name=f"gs-model-tar-{uuid.uuid4().hex[:6]}",
    ).build()
    lines: list[str] = []
    runner = ComposeJobRunner(job, log=lines.append, work_dir=tmp_path / "train-work", timeout_s=stress.JOB_TIMEOUT_S)
    started = time.monotonic()
    try:
        result = runner.run()
    finally:
        runner.stop()
    print(f"2-host training: {time.monotonic() - started:.0f} s")
    assert runner.leftovers() == []

    checkpoint, expected = chosen_checkpoint_files(model_folder)
    assert checkpoint == f"epoch-{NUM_EPOCHS - 1}"
    # The model folder holds one sparse embedding file per trainer rank: one per host here.
    sparse = sorted(path for path in expected if path.startswith(f"{FEATURELESS_NTYPE}/sparse_emb_"))
    assert sparse == [f"{FEATURELESS_NTYPE}/sparse_emb_{rank:05d}.pt" for rank in range(2)], sorted(expected)

    # SageMaker's output: <S3OutputPath>/<job name>/output/model.tar.gz, packed by the runner.
    output_path = Path(parse_uri(job.request["OutputDataConfig"]["S3OutputPath"]).path)
    archive = output_path / job.job_name / "output" / "model.tar.gz"
    assert archive.is_file(), f"no {archive}:\n" + "\n".join(lines[-40:])
    assert result.uploaded == [f"file://{archive}"]
    assert files_under(output_path) == [f"{job.job_name}/output/model.tar.gz"]
    packed = archive_digests(archive)
    assert sorted(packed) == sorted(expected)
    assert packed == expected  # byte for byte what the model folder's manifest lists


# --- packing on the host: no symlinked folder followed, a stop ends it (no engine needed) ------------------
def model_folder(root: Path, files: int = 1) -> Path:
    folder = root / "model"
    (folder / "nested").mkdir(parents=True)
    for i in range(files):
        (folder / "nested" / f"shard{i}.bin").write_bytes(bytes([i % 256]) * 1000)
    return folder


def test_a_symlinked_model_folder_is_refused_not_followed_on_the_host(tmp_path):
    """docker's `cp` (without -L) copies a symlinked /opt/ml/model as the link: its target is a host path."""
    from graphstorm_provider.execution.sm_output import upload_archive
    from graphstorm_provider.execution.staging import Stager, StagingError

    host = model_folder(tmp_path / "host")  # stands for /etc or any other host folder
    (tmp_path / "scratch").mkdir()
    link = tmp_path / "scratch" / "model"
    link.symlink_to(host, target_is_directory=True)
    out = tmp_path / "sm-out"
    with pytest.raises(StagingError, match="symbolic link"):
        upload_archive(link, f"file://{out}/job/output/model.tar.gz", Stager({}), tmp_path / "scratch")
    assert files_under(out) == []
    assert sorted(p.name for p in (tmp_path / "scratch").iterdir()) == ["model"]


def test_links_inside_the_model_folder_are_packed_as_links(tmp_path):
    from graphstorm_provider.execution.sm_output import upload_archive
    from graphstorm_provider.execution.staging import Stager

    host = model_folder(tmp_path / "host")
    folder = model_folder(tmp_path / "job")
    (folder / "elsewhere").symlink_to(host, target_is_directory=True)
    (tmp_path / "scratch").mkdir()
    archive = tmp_path / "sm-out" / "model.tar.gz"
    assert upload_archive(folder, archive.as_uri(), Stager({}), tmp_path / "scratch")
    with tarfile.open(archive) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert sorted(members) == ["elsewhere", "nested", "nested/shard0.bin"]
    assert members["elsewhere"].issym()
    assert members["elsewhere"].linkname == str(host)


def test_a_stop_during_packing_ends_it_and_leaves_no_archive(tmp_path):
    from graphstorm_provider.execution.sm_output import upload_archive
    from graphstorm_provider.execution.staging import Stager, StagingCancelled

    folder = model_folder(tmp_path / "job", files=50)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    archive = tmp_path / "sm-out" / "model.tar.gz"
    archive.parent.mkdir()
    archive.write_bytes(b"an earlier attempt's archive")
    checks = {"n": 0}

    def cancelled() -> bool:
        checks["n"] += 1
        return checks["n"] > 3  # a few members go in, then the job is stopped

    with pytest.raises(StagingCancelled):
        upload_archive(folder, archive.as_uri(), Stager({}), scratch, cancelled=cancelled)
    assert checks["n"] <= 6  # stopped within the member it was set in, not after packing all 51
    assert archive.read_bytes() == b"an earlier attempt's archive"
    assert list(scratch.iterdir()) == []
    assert files_under(archive.parent) == ["model.tar.gz"]


# --- the leader's folder as `<engine> cp <container>:/opt/ml/model -` streams it (an engine stand-in) --------
# Called as `<engine> cp <container>:<folder> -` (/opt/ml/model or /opt/ml/output/data): streams
# $COPY_ROOT/<the folder's last name> as a tar, as podman and docker do (the folder's name first,
# everything under it), then fails with $COPY_EXIT if set; $COPY_SLEEP seconds before anything;
# $COPY_ERROR on stderr. A folder $COPY_ROOT lacks is answered as podman does. $COPY_STALL_AFTER: send
# that many bytes, then hang. $COPY_FAIL_DATA: the copy of /opt/ml/output/data fails (exit 125).
FAKE_ENGINE = """#!/bin/sh
[ "$1" = cp ] && [ "$3" = - ] || { echo "unexpected: $*" >&2; exit 2; }
case "$2" in *:/opt/ml/model) name=model ;; *:/opt/ml/output/data) name=data ;; *) echo "unexpected $2" >&2; exit 2 ;; esac
[ -n "$COPY_SLEEP" ] && sleep "$COPY_SLEEP"
[ -n "$COPY_ERROR" ] && echo "$COPY_ERROR" >&2
if [ -n "$COPY_FAIL_DATA" ] && [ "$name" = data ]; then echo "Error: copying data failed" >&2; exit 125; fi
if [ -n "$COPY_STALL_AFTER" ]; then
  { tar -C "$COPY_ROOT" -cf - "$name" | head -c "$COPY_STALL_AFTER"; sleep 30; } ; exit 0
fi
if [ -n "$COPY_ROOT" ] && [ ! -e "$COPY_ROOT/$name" ]; then
  echo "Error: \"${2#*:}\" could not be found on container x: no such file or directory" >&2; exit 125
fi
if [ -n "$COPY_ROOT" ]; then tar -C "$COPY_ROOT" -cf - "$name" | head -c "${COPY_BYTES:-1000000000}"; fi
exit "${COPY_EXIT:-0}"
"""


def stand_in_runner(tmp_path: Path, monkeypatch, env: dict[str, str]):
    """A compose runner whose engine is :data:`FAKE_ENGINE`, at the point where every host exited 0."""
    from graphstorm_provider.execution.compose_runner import ComposeJobRunner
    from graphstorm_provider.execution.compose_tool import ComposeTool

    engine = tmp_path / "engine"
    engine.write_text(FAKE_ENGINE)
    engine.chmod(0o755)
    job = model_job("graphstorm:sm", unique("gs-mtar-cp"), f"file://{tmp_path / 'sm-out'}/")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    runner = ComposeJobRunner(job, log=lambda line: None, work_dir=tmp_path / "work")
    runner.tool = ComposeTool(("podman", "compose"), str(engine))
    runner.work_dir.mkdir(parents=True)
    return runner, tmp_path / "sm-out" / job.job_name / "output" / "model.tar.gz"


def test_the_copy_is_repacked_as_it_streams_with_the_folders_entries_at_the_top(tmp_path, monkeypatch):
    folder = model_folder(tmp_path / "container", files=3)
    (folder / "same-file").hardlink_to(folder / "nested" / "shard0.bin")
    (folder / "latest").symlink_to("nested")
    runner, archive = stand_in_runner(tmp_path, monkeypatch, {"COPY_ROOT": str(folder.parent)})
    assert runner._upload_archives() == [archive.as_uri()]
    with tarfile.open(archive) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert tar.extractfile("same-file").read() == bytes([0]) * 1000  # a hard link resolves inside the archive
    assert sorted(members) == [
        "latest",
        "nested",
        "nested/shard0.bin",
        "nested/shard1.bin",
        "nested/shard2.bin",
        "same-file",
    ]
    assert members["latest"].issym()
    assert members["latest"].linkname == "nested"
    assert members["same-file"].islnk()
    assert members["same-file"].linkname == "nested/shard0.bin"
    assert archive_digests(archive)["nested/shard2.bin"] == sha(bytes([2]) * 1000)
    assert_no_scratch_left(runner.work_dir)


@pytest.mark.parametrize("data", ["files", "empty", "absent"])
def test_after_the_model_the_leaders_output_data_is_packed_unless_it_is_empty(tmp_path, monkeypatch, data):
    folder = model_folder(tmp_path / "container")
    if data != "absent":
        (folder.parent / "data").mkdir()
    if data == "files":
        (folder.parent / "data" / "report.txt").write_bytes(b"custom output")
    runner, model = stand_in_runner(tmp_path, monkeypatch, {"COPY_ROOT": str(folder.parent)})
    uploaded = runner._upload_archives()
    output = model.with_name("output.tar.gz")
    assert uploaded == ([model.as_uri(), output.as_uri()] if data == "files" else [model.as_uri()])
    assert archive_digests(model)["nested/shard0.bin"] == sha(bytes([0]) * 1000)
    if data == "files":
        assert archive_digests(output) == {"report.txt": sha(b"custom output")}
    else:
        assert not output.exists()
    assert_no_scratch_left(runner.work_dir)


def test_a_model_is_not_written_when_the_output_data_cannot_be_copied(tmp_path, monkeypatch):
    """Both archives are packed before either is written: a failed job writes none, as documented."""
    from graphstorm_provider.execution.compose_runner import ComposeJobError

    folder = model_folder(tmp_path / "container")
    (folder.parent / "data").mkdir()
    (folder.parent / "data" / "report.txt").write_bytes(b"custom output")
    runner, _ = stand_in_runner(tmp_path, monkeypatch, {"COPY_ROOT": str(folder.parent), "COPY_FAIL_DATA": "1"})
    with pytest.raises(ComposeJobError, match=r"/opt/ml/output/data could not be copied out of host algo-1 for output"):
        runner._upload_archives()
    assert files_under(tmp_path / "sm-out") == []
    assert_no_scratch_left(runner.work_dir)


def test_a_folder_sent_as_a_link_is_refused(tmp_path, monkeypatch):
    """`docker cp` without -L sends a symlinked /opt/ml/model as the link: its target means nothing here."""
    from graphstorm_provider.execution.compose_runner import ComposeJobError

    (tmp_path / "container").mkdir()
    (tmp_path / "container" / "model").symlink_to("/etc")
    runner, archive = stand_in_runner(tmp_path, monkeypatch, {"COPY_ROOT": str(tmp_path / "container")})
    with pytest.raises(ComposeJobError, match=r"but /opt/ml/model in the container is a symbolic link \(to '/etc'"):
        runner._upload_archives()
    assert files_under(tmp_path / "sm-out") == []
    assert_no_scratch_left(runner.work_dir)


@pytest.mark.parametrize("sent", [0, 2048 + 700], ids=["nothing", "part of the folder"])
def test_a_copy_that_fails_fails_the_job_with_its_message_and_writes_nothing(tmp_path, monkeypatch, sent):
    from graphstorm_provider.execution.compose_runner import ComposeJobError

    folder = model_folder(tmp_path / "container", files=5)
    env = {
        "COPY_ROOT": str(folder.parent),
        "COPY_BYTES": str(sent),
        "COPY_EXIT": "125",
        "COPY_ERROR": "Error: disk gone",
    }
    runner, archive = stand_in_runner(tmp_path, monkeypatch, env)
    with pytest.raises(
        ComposeJobError, match=r"could not be copied out of host algo-1 .*\(exit 125\): Error: disk gone"
    ):
        runner._upload_archives()
    assert files_under(tmp_path / "sm-out") == []
    assert_no_scratch_left(runner.work_dir)


def test_a_folder_the_container_does_not_have_gives_no_archive(tmp_path, monkeypatch):
    env = {"COPY_EXIT": "125", "COPY_ERROR": 'Error: "/opt/ml/model" could not be found on container x: no such file'}
    runner, _ = stand_in_runner(tmp_path, monkeypatch, env)
    assert runner._upload_archives() == []
    assert files_under(tmp_path / "sm-out") == []


def test_a_copy_that_does_not_answer_in_time_fails_the_job(tmp_path, monkeypatch):
    from graphstorm_provider.execution import compose_runner
    from graphstorm_provider.execution.compose_runner import ComposeJobError

    monkeypatch.setattr(compose_runner, "_COPY_OUT_TIMEOUT_S", 1)
    folder = model_folder(tmp_path / "container")
    runner, _ = stand_in_runner(tmp_path, monkeypatch, {"COPY_ROOT": str(folder.parent), "COPY_SLEEP": "60"})
    started = time.monotonic()
    with pytest.raises(ComposeJobError, match=r"was not copied out of host algo-1 within 1 s"):
        runner._upload_archives()
    assert time.monotonic() - started < 50  # the copy was killed, not waited for
    assert files_under(tmp_path / "sm-out") == []
    assert_no_scratch_left(runner.work_dir)


def test_the_compose_runner_stops_packing_when_it_is_stopped(tmp_path, monkeypatch):
    """`on_kill` while the leader's folder is packed: the runner's stop flag ends the packing at the next entry."""
    from graphstorm_provider.execution.compose_runner import ComposeJobError

    folder = model_folder(tmp_path / "container", files=50)
    runner, _ = stand_in_runner(tmp_path, monkeypatch, {"COPY_ROOT": str(folder.parent)})
    added: list[str] = []
    addfile = tarfile.TarFile.addfile

    def add_then_stop(tar, tarinfo, fileobj=None):
        if tar.mode == "w":  # the archive being written, not the copy being read
            added.append(tarinfo.name)
            if len(added) == 2:
                runner._stop_reason = "stopped"
                runner._stop.set()  # what stop() (on_kill) sets; its teardown has nothing to do here
        return addfile(tar, tarinfo, fileobj)

    monkeypatch.setattr(tarfile.TarFile, "addfile", add_then_stop)
    with pytest.raises(ComposeJobError, match="was stopped"):
        runner._upload_archives()
    assert len(added) == 2
    assert files_under(tmp_path / "sm-out") == []
    assert_no_scratch_left(runner.work_dir)


def test_a_live_run_with_the_same_job_name_is_named_as_such(tmp_path, monkeypatch):
    """A retry reuses its job name: the clash says a run with that name is still live, not to rename this one."""
    from graphstorm_provider.execution.compose_runner import ComposeJobError, ComposeJobRunner
    from graphstorm_provider.execution.compose_tool import ComposeTool

    job = model_job("graphstorm:sm", unique("gs-mtar-live"), f"file://{tmp_path}/")
    runner = ComposeJobRunner(job, work_dir=tmp_path / "work")
    runner.tool = ComposeTool(("podman", "compose"), "podman")
    monkeypatch.setattr(runner, "_state", lambda host: ("running", None, ""))
    monkeypatch.setattr(runner, "_remove_by_name", lambda quiet: pytest.fail("a live run's containers were removed"))
    with pytest.raises(ComposeJobError, match="already running") as clash:
        runner._clear_leftovers()
    message = str(clash.value)
    assert "another job/task name" not in message
    assert "still live" in message
    assert "earlier try of this task" in message


# A task process that dies (SIGKILL) while the leader's folder is being packed: argv root, tmp folder.
OWNER_PACKING = r"""
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from tests.test_compose_model_tar import model_job
from graphstorm_provider.execution.compose_runner import ComposeJobRunner
from graphstorm_provider.execution.compose_tool import ComposeTool
tmp = Path(sys.argv[2])
runner = ComposeJobRunner(model_job("graphstorm:sm", "gs-mtar-killed", f"file://{tmp / 'sm-out'}/"), work_dir=tmp / "work")
runner.tool = ComposeTool(("podman", "compose"), str(tmp / "engine"))
runner._start_guard()
runner._upload_archives()
"""


def test_the_guard_of_a_sigkilled_owner_removes_the_archive_being_packed_and_nothing_else(tmp_path):
    """The run's own scratch folder goes; another run's in the same work dir and the compose file stay."""
    import os
    import signal
    import subprocess

    from tests.compose_engine import ROOT

    folder = model_folder(tmp_path / "container", files=20)
    engine = tmp_path / "engine"
    engine.write_text(FAKE_ENGINE)
    engine.chmod(0o755)
    work = tmp_path / "work"
    others = ["docker-compose-train.yaml", ".scratch-another-run/model.tar.gz", ".failure-algo-1"]
    for name in others:
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text("not this run's\n")
    # The copy sends the folder's entry and some files, then hangs: the archive is half written.
    env = {**os.environ, "COPY_ROOT": str(folder.parent), "COPY_STALL_AFTER": str(10 * 2048)}
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER_PACKING, str(ROOT), str(tmp_path)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )

    def ours() -> list[Path]:
        return [p for p in work.glob(".scratch-*/model.tar.gz") if p.parent.name != ".scratch-another-run"]

    try:
        deadline = time.monotonic() + 60
        while not ours() and owner.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ours(), owner.stderr.read() if owner.poll() is not None else "no archive being packed"
        os.kill(owner.pid, signal.SIGKILL)
        owner.wait()
        deadline = time.monotonic() + 60
        while ours() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert sorted(p.relative_to(work).as_posix() for p in work.rglob("*") if p.is_file()) == sorted(others)
        assert [p.name for p in work.iterdir() if p.name.startswith(".scratch-")] == [".scratch-another-run"]
        assert files_under(tmp_path / "sm-out") == []
    finally:
        owner.kill()
        owner.wait()
        subprocess.run(["pkill", "-f", str(engine)], check=False)  # the copy the owner left hanging
