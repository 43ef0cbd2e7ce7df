"""The entry points end to end with real GraphStorm: GConstruct, training and inference.

Each entry point runs as SageMaker would start it (``python3 <step>_entry.py <our flags> --
<GraphStorm flags>``), with the GraphStorm runtime's interpreter, against an emulated /opt/ml
(``$GRAPHSTORM_OPT_ML``) and with ``file://`` or ``s3://`` (moto server) URIs. The graph is
the synthetic ACM generator's, kept small; GraphStorm runs one at a time (module fixtures).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from graphstorm_provider.config import runtime_python
from graphstorm_provider.data.synthetic_acm import SyntheticAcmSpec, generate_synthetic_acm
from graphstorm_provider.data.train_config import hyperparameter_args, node_classification_yaml

ENTRYPOINTS = Path(__file__).resolve().parents[1] / "entrypoints"
GRAPH_NAME = "acm"
NUM_CLASSES = 3
SPEC = SyntheticAcmSpec(num_papers=300, num_classes=NUM_CLASSES, feat_dim=8)
GS_FLAGS = hyperparameter_args(num_epochs=2, hidden_size=16, num_layers=1, fanout=5, batch_size=64, lr=0.01)
TIMEOUT = 600


def run_entry(
    step: str, opt_ml: Path, ours: list[str], graphstorm: list[str], extra_env=None, expect_ok: bool = True
) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SM_", "GSENTRY_"))}
    env["GRAPHSTORM_OPT_ML"] = str(opt_ml)
    env.update(extra_env or {})
    proc = subprocess.run(
        [runtime_python(), str(ENTRYPOINTS / f"{step}_entry.py"), *ours, "--log-level", "INFO", "--", *graphstorm],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    if expect_ok:
        assert proc.returncode == 0, f"{step} failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"
    return proc


def paper_ids(raw: Path) -> set[str]:
    return set(pq.read_table(raw / "nodes" / "paper.parquet", columns=["nid"]).column("nid").to_pylist())


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("entrypoints-e2e")


@pytest.fixture(scope="module")
def raw_graph(work) -> Path:
    raw = work / "raw"
    generate_synthetic_acm(str(raw), SPEC)
    (work / "nc.yaml").write_text(node_classification_yaml(NUM_CLASSES))
    return raw


@pytest.fixture(scope="module")
def constructed(work, raw_graph) -> Path:
    """GConstruct through its entry point, as a Processing job sees it."""
    opt_ml = work / "gconstruct" / "opt" / "ml"
    shutil.copytree(raw_graph, opt_ml / "processing" / "input")
    run_entry(
        "gconstruct",
        opt_ml,
        ["--graph-name", GRAPH_NAME, "--graph-config-file", "config.json"],
        ["--num-parts", "1", "--add-reverse-edges"],
    )
    return opt_ml / "processing" / "output"


def test_gconstruct_writes_a_partitioned_graph_with_raw_id_mappings(constructed):
    meta = json.loads((constructed / f"{GRAPH_NAME}.json").read_text())
    assert meta["num_parts"] == 1
    assert (constructed / "part0" / "graph.dgl").is_file()
    assert (constructed / "node_mapping.pt").is_file()
    for ntype in ("paper", "author", "subject"):
        assert list((constructed / "raw_id_mappings" / ntype).glob("*.parquet"))
    # The manifest, written last: every other file with its size.
    manifest = json.loads((constructed / "_manifest.json").read_text())
    assert manifest["step"] == "gconstruct"
    listed = {f["path"]: f["size"] for f in manifest["files"]}
    on_disk = {
        p.relative_to(constructed).as_posix(): p.stat().st_size
        for p in constructed.rglob("*")
        if p.is_file() and p.name != "_manifest.json"
    }
    assert listed == on_disk


@pytest.fixture(scope="module")
def trained(work, constructed) -> Path:
    opt_ml = work / "train" / "opt" / "ml"
    model = work / "model"
    run_entry(
        "train",
        opt_ml,
        [
            "--graph-data-s3",
            f"file://{constructed}",
            "--train-yaml-s3",
            f"file://{work / 'nc.yaml'}",
            "--model-artifact-s3",
            f"file://{model}",
            "--graph-name",
            GRAPH_NAME,
            "--task-type",
            "node_classification",
        ],
        GS_FLAGS,
    )
    return model


def test_train_uploads_checkpoints_and_fills_the_model_dir(work, trained):
    epochs = sorted(p.name for p in trained.iterdir() if p.is_dir())
    assert epochs == ["epoch-0", "epoch-1"]
    assert (trained / "epoch-1" / "model.bin").is_file()
    manifest = json.loads((trained / "_manifest.json").read_text())
    assert manifest["step"] == "train"
    assert "epoch-1/model.bin" in {f["path"] for f in manifest["files"]}
    [graph_input] = manifest["inputs"]
    assert graph_input["parameter"] == "--graph-data-s3"
    assert graph_input["sha256"]
    # SageMaker's model dir holds the latest checkpoint.
    assert (work / "train" / "opt" / "ml" / "model" / "model.bin").is_file()


def test_infer_writes_remapped_parquet_embeddings_and_predictions(work, raw_graph, constructed, trained):
    opt_ml = work / "infer" / "opt" / "ml"
    emb, pred = work / "out" / "emb", work / "out" / "pred"
    run_entry(
        "infer",
        opt_ml,
        [
            "--graph-data-s3",
            f"file://{constructed}",
            "--infer-yaml-s3",
            f"file://{work / 'nc.yaml'}",
            "--model-artifact-s3",
            f"file://{trained}",
            "--output-emb-s3",
            f"file://{emb}",
            "--output-prediction-s3",
            f"file://{pred}",
            "--graph-name",
            GRAPH_NAME,
            "--task-type",
            "node_classification",
        ],
        GS_FLAGS,
    )
    papers = paper_ids(raw_graph)
    emb_table = pq.read_table(sorted((emb / "paper").glob("*.parquet")))
    assert set(emb_table.column_names) == {"nid", "emb"}
    assert set(emb_table.column("nid").to_pylist()) <= papers  # raw string IDs, not GraphStorm's ints
    assert len(emb_table.column("emb")[0].as_py()) == 16  # --hidden-size
    pred_table = pq.read_table(sorted((pred / "paper").glob("*.parquet")))
    assert set(pred_table.column_names) == {"nid", "pred"}
    assert set(pred_table.column("nid").to_pylist()) <= papers
    assert len(pred_table.column("pred")[0].as_py()) == NUM_CLASSES
    assert pred_table.num_rows > 0
    # Both outputs carry a manifest naming the graph's and the model's manifests as inputs.
    for out in (emb, pred):
        manifest = json.loads((out / "_manifest.json").read_text())
        assert manifest["step"] == "infer"
        assert [i["parameter"] for i in manifest["inputs"]] == ["--model-artifact-s3", "--graph-data-s3"]
        assert manifest["inputs"][1]["uri"] == f"file://{constructed}/_manifest.json"


def test_infer_refuses_a_graph_without_manifest_before_starting_graphstorm(work, constructed, trained):
    half = work / "half-graph"
    shutil.copytree(constructed, half)
    (half / "_manifest.json").unlink()  # as an interrupted upload leaves it
    opt_ml = work / "half-infer" / "opt" / "ml"
    ours = [
        "--graph-data-s3",
        f"file://{half}/",
        "--infer-yaml-s3",
        f"file://{work / 'nc.yaml'}",
        "--model-artifact-s3",
        f"file://{trained}",
        "--output-emb-s3",
        f"file://{work / 'half-out'}",
        "--graph-name",
        GRAPH_NAME,
        "--task-type",
        "node_classification",
    ]
    proc = run_entry("infer", opt_ml, ours, GS_FLAGS, expect_ok=False)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"ERROR: --graph-data-s3 file://{half}/ has no complete manifest"), proc.stderr[-2000:]
    assert "trainer" not in proc.stderr
    assert not (work / "half-out").exists()


def test_train_and_infer_through_s3(aws_env, work, constructed, raw_graph, trained):
    """The same steps with every URI on the (moto) S3 endpoint: AWS_ENDPOINT_URL is all it takes.

    The training fine-tunes the file:// model (``--model-checkpoint-to-load`` naming the whole
    artifact prefix restores its latest checkpoint)."""
    bucket = aws_env.bucket("gs-entry-e2e")
    s3 = aws_env.client("s3")
    for path in constructed.rglob("*"):
        if path.is_file():
            s3.upload_file(str(path), "gs-entry-e2e", f"graph/{path.relative_to(constructed).as_posix()}")
    s3.upload_file(str(work / "nc.yaml"), "gs-entry-e2e", "config/nc.yaml")
    common = [
        "--graph-data-s3",
        f"{bucket}/graph/",
        "--graph-name",
        GRAPH_NAME,
        "--task-type",
        "node_classification",
        "--model-artifact-s3",
        f"{bucket}/model/",
    ]
    flags = [*GS_FLAGS[:1], "1", *GS_FLAGS[2:]]  # one epoch is enough here
    proc = run_entry(
        "train",
        work / "s3-train" / "opt" / "ml",
        [*common, "--train-yaml-s3", f"{bucket}/config/nc.yaml", "--model-checkpoint-to-load", f"file://{trained}"],
        flags,
    )
    assert (
        "--restore-model-path "
        + str(work / "s3-train" / "opt" / "ml" / "gsentry" / "train" / "restore_model" / "epoch-1")
        in proc.stdout
    )
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="gs-entry-e2e", Prefix="model/")["Contents"]}
    assert "model/epoch-0/model.bin" in keys

    run_entry(
        "infer",
        work / "s3-infer" / "opt" / "ml",
        [*common, "--infer-yaml-s3", f"{bucket}/config/nc.yaml", "--output-prediction-s3", f"{bucket}/pred"],
        flags,
    )
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="gs-entry-e2e", Prefix="pred/")["Contents"]]
    parquet = [k for k in keys if k.startswith("pred/paper/") and k.endswith(".parquet")]
    assert parquet, keys
    local = work / "s3-pred.parquet"
    s3.download_file("gs-entry-e2e", parquet[0], str(local))
    assert set(pq.read_table(local).column("nid").to_pylist()) <= paper_ids(raw_graph)


def test_graphstorm_failure_surfaces_graphstorms_error(work, constructed):
    """A GraphStorm error ends the job with GraphStorm's message and a non-zero exit, no hang."""
    opt_ml = work / "bad-train" / "opt" / "ml"
    proc = run_entry(
        "train",
        opt_ml,
        [
            "--graph-data-s3",
            f"file://{constructed}",
            "--train-yaml-s3",
            f"file://{work / 'nc.yaml'}",
            "--model-artifact-s3",
            f"file://{work / 'bad-model'}",
            "--graph-name",
            GRAPH_NAME,
            "--task-type",
            "node_classification",
        ],
        [*GS_FLAGS, "--label-field", "no_such_label"],
        expect_ok=False,
    )
    assert proc.returncode == 1
    assert "trainer-0 failed" in proc.stderr
    assert "no_such_label" in proc.stderr
    assert "no_such_label" in (opt_ml / "output" / "failure").read_text()
    assert not (work / "bad-model").exists()


def test_gconstruct_failure_surfaces_graphstorms_error(work, raw_graph):
    opt_ml = work / "bad-gconstruct" / "opt" / "ml"
    shutil.copytree(raw_graph, opt_ml / "processing" / "input")
    config = json.loads((raw_graph / "config.json").read_text())
    config["nodes"][0]["files"] = ["nodes/missing.parquet"]
    (opt_ml / "processing" / "input" / "broken.json").write_text(json.dumps(config))
    proc = run_entry(
        "gconstruct",
        opt_ml,
        ["--graph-name", GRAPH_NAME, "--graph-config-file", "broken.json"],
        ["--num-parts", "1"],
        expect_ok=False,
    )
    assert proc.returncode == 1
    assert "gconstruct failed" in proc.stderr
    assert "missing.parquet" in proc.stderr


def test_bad_flags_fail_before_any_work_naming_the_flag(work):
    opt_ml = work / "flags" / "opt" / "ml"
    proc = run_entry(
        "infer",
        opt_ml,
        [
            "--graph-data-s3",
            "http://nope",
            "--infer-yaml-s3",
            "file:///x.yaml",
            "--model-artifact-s3",
            "file:///m",
            "--output-emb-s3",
            "file:///e",
            "--graph-name",
            GRAPH_NAME,
            "--task-type",
            "node_classification",
        ],
        [],
        expect_ok=False,
    )
    assert proc.returncode == 1
    assert "--graph-data-s3 must be an s3:// or file:// URI" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = run_entry(
        "gconstruct", opt_ml, ["--graph-name", GRAPH_NAME, "--graph-config-file", "../etc/passwd"], [], expect_ok=False
    )
    assert proc.returncode == 1
    assert "--graph-config-file must be a path relative" in proc.stderr
