"""Hostile keys, partial models and half-written outputs, against the entry points' real code.

Reproduces issue 9's findings first (each was accepted before the fix):

* keys with ``..`` under a graph, model or raw-mapping prefix were written outside the job's folder;
  ``%2e%2e`` in a ``file://`` URI passed the ``..`` check; an S3 key with ``?`` or ``#`` was fetched
  wrongly (``urlparse`` cut it off) -- fault injection 5, on the moto server and as file:// trees;
* a model prefix whose newest ``epoch-*`` is partial was picked for inference (5 of 6 bad prefixes);
* an interrupted upload left an output the next step read -- fault injection 3.
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
from gsentry.errors import EntryError, InputError  # noqa: E402
from gsentry.graphdata import download_graph, raw_mapping_target  # noqa: E402
from gsentry.job import HostJob  # noqa: E402
from gsentry.manifest import (  # noqa: E402
    MANIFEST_NAME,
    Manifest,
    allow_unmanifested,
    file_entries,
    read_input,
    write_manifest,
    write_manifest_file,
)
from gsentry.model import choose_checkpoint  # noqa: E402
from gsentry.transfer import Transfer, parse_uri  # noqa: E402

BUCKET = "gs-hostile"
# Legal names: S3 allows '?', '#' and '%' in keys; a local file may be called so too.
LEGAL = {"q": "we?ird.bin", "hash": "we#ird.bin", "pct": "%2e%2e/inside.bin", "both": "a?b#c%2e.bin"}


def files_outside(root: Path, allowed: tuple[Path, ...]) -> list[str]:
    """Every file under ``root`` that is not inside one of ``allowed``."""
    return sorted(str(p) for p in root.rglob("*") if p.is_file() and not any(p.is_relative_to(a) for a in allowed))


def host_job(tmp_path: Path, step: str = "infer", allow: bool = False, region: str | None = None) -> HostJob:
    env = read_container_env({"GRAPHSTORM_OPT_ML": str(tmp_path / "opt" / "ml"), "TRAINING_JOB_NAME": f"{step}-job"})
    work = tmp_path / "job"
    work.mkdir(parents=True, exist_ok=True)
    return HostJob(env, Transfer(region=region), Cluster(env), work, step, allow)


# --- trees with legal odd names, and a manifest ----------------------------------------------------
def graph_tree(root: Path) -> dict[str, bytes]:
    """A one-partition graph folder with legal odd names everywhere; returns {relative path: bytes}."""
    files = {
        "g.json": json.dumps({"num_parts": 1}).encode(),
        "node_mapping.pt": b"mapping",
        "part0/graph.dgl": b"graph0",
    }
    for tag, name in LEGAL.items():
        files[f"part0/{name}"] = f"part0 {tag}".encode()
        files[f"raw_id_mappings/paper/{name}.parquet"] = f"raw {tag}".encode()
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    write_manifest_file(root, job_name="gconstruct-job", step="gconstruct")
    return files


def model_tree(root: Path) -> dict[str, bytes]:
    files = {"epoch-0/model.bin": b"old weights", "epoch-1/model.bin": b"weights", "cfg.yaml": b"k: v"}
    for tag, name in LEGAL.items():
        files[f"epoch-1/{name}"] = f"model {tag}".encode()
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    write_manifest_file(root, job_name="train-job", step="train")
    return files


def upload(aws_env, root: Path, prefix: str) -> None:
    s3 = aws_env.client("s3")
    for path in sorted(root.rglob("*")):
        if path.is_file():
            s3.upload_file(str(path), BUCKET, f"{prefix}/{path.relative_to(root).as_posix()}")


def local_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


# --- fault injection 5: hostile and odd keys under every prefix an entry point downloads -----------
@pytest.mark.parametrize("scheme", ["s3", "file"])
def test_legal_odd_keys_under_every_prefix_are_fetched_byte_for_byte(aws_env, tmp_path, scheme):
    graph_src, model_src = tmp_path / "src" / "graph", tmp_path / "src" / "model"
    graph_tree(graph_src)
    model_files = model_tree(model_src)
    yaml_name = "cfg?v=1#frag.yaml"
    (tmp_path / "src" / "config").mkdir()
    (tmp_path / "src" / "config" / yaml_name).write_bytes(b"yaml bytes")
    if scheme == "s3":
        aws_env.bucket(BUCKET)
        upload(aws_env, tmp_path / "src", "run")
        base = f"s3://{BUCKET}/run"
    else:
        base = f"file://{tmp_path / 'src'}"
    job = host_job(tmp_path, region=aws_env.region)

    graph = job.download_graph(f"{base}/graph/", "g", raw_mappings_uri=f"{base}/graph/raw_id_mappings/")
    got = local_files(graph.root)
    assert got["part0/graph.dgl"] == b"graph0"
    for tag, name in LEGAL.items():
        assert got[f"part0/{name}"] == f"part0 {tag}".encode()
        # GSProcessing's <ntype>/parquet/<file> layout lands as <ntype>/<file>
        local = raw_mapping_target(f"paper/{name}.parquet")
        assert got[f"raw_id_mappings/{local}"] == f"raw {tag}".encode()

    model = job.find_model(f"{base}/model/", "--model-artifact-s3")
    restore = job.download_model(model, job.work / "model")
    assert model.checkpoint == "epoch-1"
    assert restore == job.work / "model" / "epoch-1"
    assert local_files(job.work / "model") == {k: v for k, v in model_files.items() if not k.startswith("epoch-0/")}

    yaml_path = job.download_file(f"{base}/config/{yaml_name}", "--infer-yaml-s3", job.work / "config")
    assert yaml_path == job.work / "config" / yaml_name
    assert yaml_path.read_bytes() == b"yaml bytes"
    assert files_outside(tmp_path, (tmp_path / "src", job.work)) == []


HOSTILE_S3 = [
    # (what, key under the bucket, which download)
    ("graph part", "run/graph/part0/../../../../../escaped-graph", "graph"),
    ("graph metadata", "run/graph/raw_id_mappings/../../../../../escaped-raw", "graph"),
    ("raw mappings", "run/raw/paper/../../../../../../escaped.parquet", "raw"),
    ("model checkpoint", "run/model/epoch-1/../../../../../escaped-model", "model"),
    ("yaml", "run/config/..", "yaml"),
]


def _download(job: HostJob, step: str, base: str, key: str) -> None:
    if step == "graph":
        job.download_graph(f"{base}/graph/", "g")
    elif step == "raw":
        job.download_graph(f"{base}/graph/", "g", raw_mappings_uri=f"{base}/raw/")
    elif step == "model":
        job.download_model(job.find_model(f"{base}/model/", "--model-artifact-s3"), job.work / "model")
    else:
        job.download_file(f"s3://{BUCKET}/{key}", "--infer-yaml-s3", job.work / "config")


@pytest.mark.parametrize(("what", "key", "step"), HOSTILE_S3, ids=[h[0] for h in HOSTILE_S3])
@pytest.mark.parametrize("mode", ["no-manifest", "manifest-lists-it", "manifest-ignores-it"])
def test_dotdot_keys_on_s3_never_land_outside_the_job_folder(aws_env, tmp_path, what, key, step, mode):
    aws_env.bucket(BUCKET)
    s3 = aws_env.client("s3")
    graph_tree(tmp_path / "src" / "graph")
    model_tree(tmp_path / "src" / "model")
    (tmp_path / "src" / "raw" / "paper").mkdir(parents=True)
    (tmp_path / "src" / "raw" / "paper" / "part-0.parquet").write_bytes(b"raw")
    upload(aws_env, tmp_path / "src", "run")
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"planted")
    prefix = {"graph": "run/graph", "raw": "run/raw", "model": "run/model", "yaml": "run/config"}[step]
    manifest_key = f"{prefix}/{MANIFEST_NAME}"
    if mode == "no-manifest":  # data made outside the pipeline, taken with the opt-out
        s3.delete_object(Bucket=BUCKET, Key=manifest_key)
    elif mode == "manifest-lists-it" and step != "yaml":
        body = (
            json.loads(s3.get_object(Bucket=BUCKET, Key=manifest_key)["Body"].read())
            if step != "raw"
            else {"format": "graphstorm-airflow.manifest", "version": 1, "files": []}
        )
        body["files"].append({"path": key[len(prefix) + 1 :], "size": 7, "sha256": "0" * 64})
        s3.put_object(Bucket=BUCKET, Key=manifest_key, Body=json.dumps(body).encode())
    job = host_job(tmp_path, allow=mode == "no-manifest", region=aws_env.region)
    base = f"s3://{BUCKET}/run"
    refused = mode != "manifest-ignores-it" or step in ("raw", "yaml")  # no manifest of their own there
    if refused:
        with pytest.raises(EntryError) as info:
            _download(job, step, base, key)
        message = str(info.value)
        assert "\n" not in message
        assert f"s3://{BUCKET}/{prefix}" in message
        assert ".." in message
    else:  # only the files the manifest lists are read: the planted key is never fetched
        _download(job, step, base, key)
    assert files_outside(tmp_path, (tmp_path / "src", job.work)) == []
    assert not any(p.read_bytes() == b"planted" for p in tmp_path.rglob("*") if p.is_file())


@pytest.mark.parametrize("encoded", ["%2e%2e", "%2E%2E", ".%2e", "%2e."])
@pytest.mark.parametrize(
    "param", ["--graph-data-s3", "--model-artifact-s3", "--raw-node-mappings-s3", "--infer-yaml-s3"]
)
def test_percent_encoded_dotdot_in_file_uris_is_refused(tmp_path, encoded, param):
    graph_tree(tmp_path / "src" / "graph")
    uri = f"file://{tmp_path}/src/graph/{encoded}/{encoded}/{encoded}/etc/"
    with pytest.raises(InputError, match=rf"{param} must not contain '\.\.'"):
        parse_uri(uri, param)
    job = host_job(tmp_path, allow=True)
    if param == "--graph-data-s3":
        download = lambda: job.download_graph(uri, "g")
    elif param == "--model-artifact-s3":
        download = lambda: job.find_model(uri, param)
    elif param == "--raw-node-mappings-s3":
        download = lambda: job.download_graph(f"file://{tmp_path}/src/graph/", "g", raw_mappings_uri=uri)
    else:
        download = lambda: job.download_file(uri + "x.yaml", param, job.work / "config")
    with pytest.raises(InputError, match=param):
        download()


def test_s3_keys_with_query_and_fragment_characters_are_kept_whole():
    loc = parse_uri("s3://bucket/a/b?versionId=1#frag/c%2e%2e.bin", "--x")
    assert (loc.bucket, loc.key) == ("bucket", "a/b?versionId=1#frag/c%2e%2e.bin")
    assert loc.uri() == "s3://bucket/a/b?versionId=1#frag/c%2e%2e.bin"


# --- inference takes only a complete checkpoint ------------------------------------------------------
BAD_MODEL_PREFIXES = {
    "newest epoch has no model file": {"epoch-0/author/sparse_emb_00000.pt": b"s"},
    "zero-byte model file": {"epoch-0/model.bin": b"", "epoch-0/optimizers.bin": b"o"},
    "only config files": {"cfg.yaml": b"k: v", "data_transform_new.json": b"{}"},
    "unrelated folders": {"logs/model.bin": b"w", "tmp/epoch-3/model.bin": b"w", "README": b"x"},
    "prefix checkpoint with a zero-byte sparse file": {"model.bin": b"w", "author/sparse_emb_00000.pt": b""},
    "sparse embedding ranks with a gap": {
        "epoch-2/model.bin": b"w",
        "epoch-2/author/sparse_emb_00000.pt": b"s",
        "epoch-2/author/sparse_emb_00002.pt": b"s",
    },
}
GOOD_MODEL_PREFIXES = {
    "newest complete": ({"epoch-0/model.bin": b"a", "epoch-1/model.bin": b"b", "cfg.yaml": b"c"}, "epoch-1"),
    "newest partial, older complete": (
        {"epoch-0/model.bin": b"a", "epoch-1/optimizers.bin": b"o", "epoch-1-iter-9/model.bin": b""},
        "epoch-0",
    ),
    "iterations order within an epoch": (
        {"epoch-1-iter-5/model.bin": b"a", "epoch-1-iter-20/model.bin": b"b", "epoch-1/model.bin": b"c"},
        "epoch-1-iter-20",
    ),
    "prefix is a checkpoint": (
        {"model.bin": b"w", "author/sparse_emb_00000.pt": b"s", "author/sparse_emb_00001.pt": b"s"},
        "",
    ),
}


def _write(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)


@pytest.mark.parametrize("case", sorted(BAD_MODEL_PREFIXES))
def test_no_complete_checkpoint_fails_in_one_sentence_naming_the_prefix(tmp_path, case):
    root = tmp_path / "model"
    _write(root, BAD_MODEL_PREFIXES[case])
    write_manifest_file(root, job_name="train-job", step="train")  # the manifest is not what is wrong here
    job = host_job(tmp_path)
    with pytest.raises(InputError) as info:
        job.find_model(f"file://{root}/", "--model-artifact-s3")
    message = str(info.value)
    assert message.startswith(f"--model-artifact-s3 file://{root}/ holds no complete GraphStorm model")
    assert "\n" not in message
    assert message.endswith(".")


@pytest.mark.parametrize("allow", [False, True])
def test_an_empty_or_missing_model_prefix_fails_too(tmp_path, allow):
    (tmp_path / "model").mkdir()
    for uri in (f"file://{tmp_path}/model/", f"file://{tmp_path}/nothing/"):
        with pytest.raises(InputError, match=f"^--model-artifact-s3 {uri} holds no files"):
            host_job(tmp_path, allow=allow).find_model(uri, "--model-artifact-s3")


@pytest.mark.parametrize("case", sorted(GOOD_MODEL_PREFIXES))
def test_newest_complete_checkpoint_is_chosen(tmp_path, case):
    files, expected = GOOD_MODEL_PREFIXES[case]
    root = tmp_path / "model"
    _write(root, files)
    write_manifest_file(root, job_name="train-job", step="train")
    job = host_job(tmp_path)
    model = job.find_model(f"file://{root}/", "--model-artifact-s3")
    assert model.checkpoint == expected
    restore = job.download_model(model, job.work / "restore")
    assert (restore / "model.bin").read_bytes() == files[f"{expected}/model.bin" if expected else "model.bin"]


def test_a_checkpoint_folder_uri_is_covered_by_its_parents_manifest(tmp_path):
    root = tmp_path / "model"
    _write(root, {"epoch-0/model.bin": b"a", "epoch-1/model.bin": b"b"})
    write_manifest_file(root, job_name="train-job", step="train")
    model = host_job(tmp_path).find_model(f"file://{root}/epoch-0/", "--model-artifact-s3")
    assert (model.checkpoint, model.files) == ("", ["model.bin"])


def test_checkpoint_choice_ignores_files_the_manifest_does_not_list(tmp_path):
    """A newer checkpoint left by an earlier run (not in this run's manifest) is not restored."""
    root = tmp_path / "model"
    _write(root, {"epoch-0/model.bin": b"a"})
    write_manifest_file(root, job_name="train-job", step="train")
    _write(root, {"epoch-7/model.bin": b"stale"})
    assert host_job(tmp_path).find_model(f"file://{root}/", "--model-artifact-s3").checkpoint == "epoch-0"
    assert choose_checkpoint({"epoch-0/model.bin": 1, "epoch-7/model.bin": 5}).checkpoint == "epoch-7"


# --- manifests ---------------------------------------------------------------------------------------
def test_manifest_round_trip_lists_files_job_step_and_inputs(tmp_path):
    root = tmp_path / "out"
    _write(root, {"a.bin": b"12345", "sub/b.bin": b""})
    path = write_manifest_file(root, job_name="gc-1", step="gconstruct")
    manifest = Manifest.loads(path.read_bytes(), str(path))
    assert (manifest.job_name, manifest.step) == ("gc-1", "gconstruct")
    assert [(f.path, f.size) for f in manifest.files] == [("a.bin", 5), ("sub/b.bin", 0)]
    assert manifest.files[0].sha256 == "5994471abb01112afcc18159f6cc74b4f511b99806da59b3caf5a9c173cacfc5"
    doc = json.loads(path.read_text())
    assert set(doc) == {"format", "version", "job_name", "step", "created", "files", "inputs"}


def test_train_input_without_manifest_is_refused_naming_parameter_and_prefix(tmp_path, monkeypatch):
    graph_src = tmp_path / "graph"
    graph_tree(graph_src)
    (graph_src / MANIFEST_NAME).unlink()
    uri = f"file://{graph_src}/"
    with pytest.raises(InputError) as info:
        download_graph(Transfer(), uri, "g", 0, 1, tmp_path / "dst")
    message = str(info.value)
    assert message.startswith(f"--graph-data-s3 {uri} has no complete manifest")
    assert "\n" not in message
    assert "--allow-unmanifested-input" in message
    assert not (tmp_path / "dst").exists()
    # The documented opt-outs: the flag, or the environment variable.
    assert download_graph(Transfer(), uri, "g", 0, 1, tmp_path / "d1", allow_unmanifested=True).num_parts == 1
    monkeypatch.setenv("GSENTRY_ALLOW_UNMANIFESTED_INPUT", "1")
    assert allow_unmanifested(False)


@pytest.mark.parametrize(
    ("damage", "needle"),
    [
        (lambda root: (root / "part0" / "graph.dgl").unlink(), "part0/graph.dgl is listed but missing"),
        (lambda root: (root / "node_mapping.pt").write_bytes(b"truncated!"), "node_mapping.pt has 10 bytes"),
        (lambda root: (root / "part0" / "graph.dgl").write_bytes(b"graphX"), "part0/graph.dgl does not match"),
    ],
)
def test_a_prefix_that_does_not_match_its_manifest_is_refused(tmp_path, damage, needle):
    graph_tree(tmp_path / "graph")
    damage(tmp_path / "graph")
    with pytest.raises(InputError, match=needle) as info:
        download_graph(Transfer(), f"file://{tmp_path}/graph/", "g", 0, 1, tmp_path / "dst")
    assert str(info.value).startswith(f"--graph-data-s3 file://{tmp_path}/graph/")


class FailingTransfer(Transfer):
    """Uploads ``allowed`` files, then fails as a lost connection would."""

    def __init__(self, allowed: int, **kwargs):
        super().__init__(workers=1, **kwargs)
        self.allowed = allowed

    def upload_file(self, src, dest):
        if self.allowed <= 0:
            raise EntryError(f"cannot upload {src} to {dest.uri()}: connection reset")
        self.allowed -= 1
        super().upload_file(src, dest)


@pytest.mark.parametrize("scheme", ["file", "s3"])
def test_interrupted_upload_leaves_no_manifest_and_the_next_step_refuses_it(aws_env, tmp_path, scheme):
    """Fault injection 3: train's upload dies after 2 files; infer then refuses the model prefix."""
    saved = tmp_path / "saved"
    _write(
        saved,
        {
            "epoch-0/model.bin": b"a",
            "epoch-0/optimizers.bin": b"o",
            "epoch-1/model.bin": b"b",
            "epoch-1/optimizers.bin": b"o",
        },
    )
    if scheme == "s3":
        aws_env.bucket(BUCKET)
        model_uri = f"s3://{BUCKET}/run/model/"
    else:
        model_uri = f"file://{tmp_path}/model/"
    # An earlier, complete run left its manifest there: the rerun must remove it before uploading.
    earlier = host_job(tmp_path / "earlier", step="train", region=aws_env.region)
    earlier.upload_output(saved, model_uri, "--model-artifact-s3")
    train = host_job(tmp_path / "train", step="train", region=aws_env.region)
    train.transfer = FailingTransfer(2, region=aws_env.region)
    train.clear_output(model_uri, "--model-artifact-s3")
    with pytest.raises(EntryError, match="connection reset"):
        train.upload_output(saved, model_uri, "--model-artifact-s3")
    transfer = Transfer(region=aws_env.region)
    listed = transfer.list_files(parse_uri(model_uri))
    # some files went, the manifest did not
    assert MANIFEST_NAME not in listed
    assert listed
    infer = host_job(tmp_path / "infer", region=aws_env.region)
    with pytest.raises(InputError) as info:
        infer.find_model(model_uri, "--model-artifact-s3")
    assert str(info.value).startswith(f"--model-artifact-s3 {model_uri} has no complete manifest")


def test_upload_output_writes_the_manifest_last_with_the_inputs_read(tmp_path):
    graph_tree(tmp_path / "graph")
    job = host_job(tmp_path, step="train")
    job.download_graph(f"file://{tmp_path}/graph/", "g")
    out = tmp_path / "saved"
    _write(out, {"epoch-0/model.bin": b"w"})
    order = []
    original = job.transfer.upload_file
    job.transfer.upload_file = lambda src, dest: (order.append(dest.uri()), original(src, dest))
    metrics = tmp_path / "metrics.json"
    metrics.write_text("{}")
    job.upload_output(out, f"file://{tmp_path}/model/", "--model-artifact-s3", extra={"metrics.json": metrics})
    assert order[-1].endswith("/" + MANIFEST_NAME)
    assert len(order) == 3
    manifest = Manifest.loads((tmp_path / "model" / MANIFEST_NAME).read_bytes(), "m")
    assert (manifest.job_name, manifest.step) == ("train-job", "train")
    assert [f.path for f in manifest.files] == ["epoch-0/model.bin", "metrics.json"]
    [graph_input] = manifest.inputs
    assert graph_input.parameter == "--graph-data-s3"
    assert graph_input.uri == f"file://{tmp_path}/graph/{MANIFEST_NAME}"
    import hashlib

    assert graph_input.sha256 == hashlib.sha256((tmp_path / "graph" / MANIFEST_NAME).read_bytes()).hexdigest()


def test_write_manifest_is_the_helper_other_entry_points_call(aws_env, tmp_path):
    """``write_manifest(transfer, output_uri, ...)`` (for the partition entry point) then read_input."""
    aws_env.bucket(BUCKET)
    out = tmp_path / "parts"
    _write(out, {"metadata.json": b"{}", "part0/graph.dgl": b"g"})
    transfer = Transfer(region=aws_env.region)
    uri = f"s3://{BUCKET}/partitioned/"
    transfer.upload_tree(out, parse_uri(uri))
    write_manifest(transfer, uri, job_name="partition-job", step="partition", files=file_entries(out))
    checked = read_input(transfer, uri, "--graph-data-s3")
    assert checked.manifest.step == "partition"
    assert sorted(checked.sizes) == ["metadata.json", "part0/graph.dgl"]


# --- two hosts: every host's files in the one manifest the leader writes ----------------------------
DRIVER = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[1])
    from pathlib import Path
    from gsentry.contract import read_container_env
    from gsentry.job import HostJob

    env = read_container_env()
    job = HostJob.create(env, "train")
    def body(job):
        job.cluster.rendezvous()
        out = job.work / "saved"
        (out / "epoch-0" / "author").mkdir(parents=True)
        (out / "epoch-0" / "author" / f"sparse_emb_{env.host_rank:05d}.pt").write_bytes(b"s" * (env.host_rank + 1))
        if env.is_leader:
            (out / "epoch-0" / "model.bin").write_bytes(b"weights")
        job.upload_output(out, sys.argv[2], "--model-artifact-s3")
    job.run(body)
    print("done", flush=True)
""")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_hosts_share_one_manifest_written_by_the_leader(tmp_path):
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    port, model = _free_port(), tmp_path / "model"
    procs = []
    try:
        for host in ("algo-1", "algo-2"):
            env = {k: v for k, v in os.environ.items() if not k.startswith(("SM_", "GSENTRY_"))}
            env.update(
                {
                    "GRAPHSTORM_OPT_ML": str(tmp_path / host),
                    "TRAINING_JOB_NAME": "train-2hosts",
                    "SM_TRAINING_ENV": json.dumps({"hosts": ["algo-1", "algo-2"], "current_host": host}),
                    "GSENTRY_RDZV_PORT": str(port),
                    "GSENTRY_HOST_ADDRESSES": json.dumps({"algo-1": "127.0.0.1"}),
                    "GSENTRY_RDZV_TIMEOUT": "30",
                    "GSENTRY_PEER_TIMEOUT": "30",
                    "GSENTRY_HEARTBEAT": "0.5",
                }
            )
            procs.append(
                subprocess.Popen(
                    [sys.executable, str(script), str(ENTRYPOINTS), f"file://{model}/"],
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        results = [proc.communicate(timeout=90) for proc in procs]
        assert [proc.returncode for proc in procs] == [0, 0], results
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    manifest = Manifest.loads((model / MANIFEST_NAME).read_bytes(), "m")
    assert manifest.job_name == "train-2hosts"
    assert {(f.path, f.size) for f in manifest.files} == {
        ("epoch-0/model.bin", 7),
        ("epoch-0/author/sparse_emb_00000.pt", 1),
        ("epoch-0/author/sparse_emb_00001.pt", 2),
    }


# --- an S3 error other than "not found" is one sentence naming the location, not a traceback --------
@pytest.mark.parametrize("call", ["list_files", "delete"])
def test_s3_errors_of_listing_and_deleting_name_the_location(aws_env, call):
    # Listing is the first S3 call of train and infer (their inputs); a mistyped bucket once reached
    # the job's FailureReason as "unexpected error in the entry point:" and a traceback.
    uri = "s3://gs-no-such-bucket/run/graph/"
    with pytest.raises(EntryError) as info:
        getattr(Transfer(region=aws_env.region), call)(parse_uri(uri))
    message = str(info.value)
    assert uri.rstrip("/") in message
    assert "NoSuchBucket" in message
    assert "\n" not in message
