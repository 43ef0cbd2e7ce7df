"""The manifest contract across the container boundary, and the Airflow side's URI guards.

What the entry points write (``entrypoints/gsentry/manifest.py``) the Airflow side reads
(``graphstorm_provider/data/manifest.py``); the local backend's output upload puts a manifest
last and an interrupted upload leaves none. Also issue 9's Airflow-side findings: ``%2e%2e`` in
``file://`` URIs, ``?``/``#`` in S3 keys, ``file:///`` as a compose mount.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from graphstorm_provider.data import manifest as contract
from graphstorm_provider.execution.compose import ComposeSpecError, plan_mounts, render_compose
from graphstorm_provider.execution.staging import Stager, StagingCancelled, StagingError, parse_uri
from tests.compose_jobs import training_request

ENTRYPOINTS = Path(__file__).resolve().parents[1] / "entrypoints"
sys.path.insert(0, str(ENTRYPOINTS))

from gsentry import manifest as entry_manifest  # noqa: E402
from gsentry.transfer import Transfer  # noqa: E402

BUCKET = "gs-manifest"


def _write(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)


def test_both_sides_name_the_same_file_and_format():
    assert contract.MANIFEST_NAME == entry_manifest.MANIFEST_NAME == "_manifest.json"
    assert contract.MANIFEST_FORMAT == entry_manifest.MANIFEST_FORMAT
    assert contract.MANIFEST_VERSION == entry_manifest.MANIFEST_VERSION


def test_the_airflow_reader_imports_neither_boto3_nor_anything_heavy():
    code = (
        "import sys; import graphstorm_provider.data.manifest; "
        "print(sorted(m for m in ('boto3', 'botocore', 'numpy', 'pyarrow', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("scheme", ["file", "s3"])
def test_what_an_entry_point_writes_the_airflow_side_reads_and_verifies(aws_env, tmp_path, scheme):
    out = tmp_path / "out"
    _write(out, {"epoch-0/model.bin": b"weights", "cfg.yaml": b"a: 1", "odd?#name.bin": b"x"})
    s3 = None
    if scheme == "s3":
        aws_env.bucket(BUCKET)
        s3 = aws_env.client("s3")
        uri = f"s3://{BUCKET}/run/model/"
    else:
        uri = f"file://{tmp_path}/published/"
    transfer = Transfer(region=aws_env.region)
    transfer.upload_tree(out, entry_manifest.parse_uri(uri, "out"))
    inputs = [entry_manifest.InputRef("--graph-data-s3", "s3://b/graph/_manifest.json", "ab" * 32)]
    entry_manifest.write_manifest(
        transfer, uri, job_name="train-1", step="train", files=entry_manifest.file_entries(out), inputs=inputs
    )

    found = contract.read_manifest(uri, s3)
    assert (found.job_name, found.step) == ("train-1", "train")
    assert [(f.path, f.size) for f in found.files] == [("cfg.yaml", 4), ("epoch-0/model.bin", 7), ("odd?#name.bin", 1)]
    assert found.inputs == (contract.ManifestInput("--graph-data-s3", "s3://b/graph/_manifest.json", "ab" * 32),)
    assert found.total_bytes == 12
    assert contract.verify_complete(uri, s3_client=s3).complete
    local = tmp_path / "copy.bin"
    local.write_bytes(b"weights")
    assert contract.verify_file(found, "epoch-0/model.bin", local)
    local.write_bytes(b"weightz")
    assert not contract.verify_file(found, "epoch-0/model.bin", local)

    # A listed file gone: incomplete, in one sentence naming the prefix and the file.
    if scheme == "s3":
        s3.delete_object(Bucket=BUCKET, Key="run/model/epoch-0/model.bin")
    else:
        (tmp_path / "published" / "epoch-0" / "model.bin").unlink()
    result = contract.verify_complete(uri, s3_client=s3)
    assert not result.complete
    assert result.missing == ("epoch-0/model.bin",)
    assert result.reason() == f"{uri} is incomplete: epoch-0/model.bin is listed in its manifest but missing."


def test_no_manifest_reads_as_none_and_verifying_it_names_the_prefix(aws_env, tmp_path):
    aws_env.bucket(BUCKET)
    s3 = aws_env.client("s3")
    s3.put_object(Bucket=BUCKET, Key="half/a.bin", Body=b"a")
    assert contract.read_manifest(f"s3://{BUCKET}/half/", s3) is None
    assert contract.read_manifest(f"file://{tmp_path}/nothing/") is None
    with pytest.raises(contract.ManifestError, match=rf"s3://{BUCKET}/half/ has no _manifest.json"):
        contract.verify_complete(f"s3://{BUCKET}/half/", s3_client=s3)
    s3.put_object(Bucket=BUCKET, Key="half/_manifest.json", Body=b"{not json")
    with pytest.raises(contract.ManifestError, match="is not a valid"):
        contract.read_manifest(f"s3://{BUCKET}/half", s3)


def test_check_sizes_is_pure():
    m = contract.parse_manifest(
        json.dumps(
            {
                "format": contract.MANIFEST_FORMAT,
                "version": 1,
                "files": [{"path": "a", "size": 1, "sha256": "x"}, {"path": "b", "size": 2, "sha256": "y"}],
            }
        ).encode(),
        "s3://b/p/m",
    )
    result = contract.check_sizes(m, {"a": 1, "b": 3, "extra": 9}, "s3://b/p/")
    assert result.wrong_size == {"b": (3, 2)}
    assert not result.missing
    assert result.reason() == "s3://b/p/ is incomplete: b has 3 bytes, its manifest lists 2."


# --- the local backend's processing-output upload: the manifest goes last ---------------------------
def test_local_upload_puts_the_manifest_after_every_other_file_and_drops_an_old_one(tmp_path):
    src = tmp_path / "processing-output"
    _write(src, {"z-last-by-name.bin": b"z", "part0/graph.dgl": b"g", "_manifest.json": b"{}"})
    dest = tmp_path / "published"
    _write(dest, {"_manifest.json": b"stale"})
    stager = Stager({})
    order: list[str] = []
    original = stager.upload_file
    stager.delete = lambda uri: (order.append("delete " + uri), Stager.delete(stager, uri))
    stager.upload_file = lambda path, uri, **kwargs: (order.append(uri), original(path, uri, **kwargs))
    assert stager.upload_dir(src, dest.as_uri()) == 3
    assert order[0] == f"delete {dest.as_uri()}/_manifest.json"
    assert order[-1] == f"{dest.as_uri()}/_manifest.json"
    assert len(order) == 4


def test_interrupted_local_upload_leaves_no_manifest(aws_env, tmp_path):
    """Fault injection 3 on the Airflow side: a stop mid-upload; the prefix then reads as incomplete."""
    aws_env.bucket(BUCKET)
    src = tmp_path / "processing-output"
    _write(src, {f"part0/f{i}.bin": b"x" for i in range(4)})
    entry_manifest.write_manifest_file(src, job_name="gc", step="gconstruct")
    checks = {"n": 0}

    def cancelled() -> bool:
        checks["n"] += 1
        return checks["n"] > 2  # two files go, then the job is stopped

    stager = Stager({"AWS_ENDPOINT_URL": aws_env.endpoint_url, "AWS_REGION": aws_env.region}, cancelled=cancelled)
    with pytest.raises(StagingCancelled):
        stager.upload_dir(src, f"s3://{BUCKET}/graph")
    s3 = aws_env.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="graph/").get("Contents", [])]
    assert len(keys) == 2
    assert "graph/_manifest.json" not in keys
    assert contract.read_manifest(f"s3://{BUCKET}/graph/", s3) is None


# --- URIs: decoded before they are checked, S3 keys kept whole ------------------------------------------
def test_staging_keeps_query_and_fragment_characters_in_s3_keys(aws_env, tmp_path):
    aws_env.bucket(BUCKET)
    s3 = aws_env.client("s3")
    s3.put_object(Bucket=BUCKET, Key="conf/train?v=2#x.yaml", Body=b"the yaml")
    s3.put_object(Bucket=BUCKET, Key="dir/a?b#c/%2e%2e/d.bin", Body=b"legal")
    assert parse_uri(f"s3://{BUCKET}/conf/train?v=2#x.yaml").key == "conf/train?v=2#x.yaml"
    stager = Stager({"AWS_ENDPOINT_URL": aws_env.endpoint_url, "AWS_REGION": aws_env.region})
    assert stager.download(f"s3://{BUCKET}/conf/train?v=2#x.yaml", tmp_path / "one") == 1
    assert (tmp_path / "one" / "train?v=2#x.yaml").read_bytes() == b"the yaml"
    assert stager.download(f"s3://{BUCKET}/dir/", tmp_path / "tree") == 1
    assert (tmp_path / "tree" / "a?b#c" / "%2e%2e" / "d.bin").read_bytes() == b"legal"


def test_staging_refuses_an_object_named_dotdot(aws_env, tmp_path):
    aws_env.bucket(BUCKET)
    aws_env.client("s3").put_object(Bucket=BUCKET, Key="conf/..", Body=b"evil")
    stager = Stager({"AWS_ENDPOINT_URL": aws_env.endpoint_url, "AWS_REGION": aws_env.region})
    # Refused when the URI is parsed (uris.parse_uri: a '..' segment) or, for a key found by
    # listing, when its local path is made (staging._inside): either way, before anything is written.
    with pytest.raises(StagingError, match=r"unsafe local path|'\.\.' segment"):
        stager.download(f"s3://{BUCKET}/conf/..", tmp_path / "in" / "deep")
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


@pytest.mark.parametrize("encoded", ["%2e%2e", "%2E%2E", ".%2e"])
def test_staging_decodes_file_uris_before_checking_them(tmp_path, encoded):
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "s.txt").write_text("s")
    (tmp_path / "public").mkdir()
    with pytest.raises(StagingError, match=r"'\.\.' segment"):
        Stager({}).download(f"file://{tmp_path}/public/{encoded}/secret", tmp_path / "in")
    assert not (tmp_path / "in" / "s.txt").exists()


# --- compose: no bind mount of / or a system folder ---------------------------------------------------
@pytest.mark.parametrize(
    ("field", "uri", "param"),
    [
        ("graph", "file:///", "--graph-data-s3"),
        ("model", "file:///", "model_artifact_s3"),
        ("model", "file:////", "model_artifact_s3"),
        ("graph", "file:///etc", "--graph-data-s3"),
        ("yaml_uri", "file:///etc/passwd", "--train-yaml-s3"),
        ("model", "file:///usr/local/model", "model_artifact_s3"),
        ("graph", "file:///opt/ml/input", "--graph-data-s3"),
        ("graph", "file:///tmp/x/%2e%2e/%2e%2e", "file URI"),
    ],
)
def test_compose_refuses_to_mount_the_root_or_a_system_folder(field, uri, param):
    job = training_request(**{field: uri})
    with pytest.raises(ComposeSpecError) as info:
        render_compose(job)
    message = str(info.value)
    assert param in message
    assert "\n" not in message


def test_compose_refuses_a_root_mount_from_the_environment_too():
    job = training_request(environment={"EXTRA_DATA": "file:///"})
    with pytest.raises(ComposeSpecError, match="Environment EXTRA_DATA 'file:///' would bind-mount /"):
        plan_mounts(job)


def test_the_dags_storage_helpers_keep_s3_keys_and_file_paths_whole():
    from graphstorm_provider.data import storage

    assert storage.split_s3("s3://b/run/p?x=1#y.parquet") == ("b", "run/p?x=1#y.parquet")
    assert storage.local_path("file:///data/a#b?.parquet") == Path("/data/a#b?.parquet")


def test_the_manifest_reader_parses_uris_as_everything_else_on_the_airflow_side(tmp_path):
    """It had a splitter of its own: ``file://localhost/p`` became the relative path ``localhost/p``
    (a manifest there read as "none"), and ``%2e%2e`` led outside the prefix it was given."""
    published = tmp_path / "published"
    _write(published, {"a.bin": b"a"})
    transfer = Transfer(region="us-east-1")
    entry_manifest.write_manifest(
        transfer,
        f"file://{published}/",
        job_name="j-1",
        step="gconstruct",
        files=entry_manifest.file_entries(published),
    )
    assert contract.read_manifest(f"file://localhost{published}/").job_name == "j-1"
    assert contract.verify_complete(f"file://localhost{published}/").complete
    outside = f"file://{tmp_path}/elsewhere/%2e%2e/published/"
    with pytest.raises(contract.ManifestError, match=r"'\.\.' segment"):
        contract.read_manifest(outside)
    with pytest.raises(contract.ManifestError, match=r"'\.\.' segment"):
        contract.list_sizes(outside)
