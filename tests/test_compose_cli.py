"""``gs-sagemaker compose``: GraphStorm's compose generator's flags, file names and credential handling.

Runs the installed console script as a user would (a subprocess), and checks the files
it writes against the compose specification's schema.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

GS = str(Path(sys.executable).parent / "gs-sagemaker")
SCHEMA = json.loads((Path(__file__).parent / "data" / "compose-spec.json").read_text())
COMMON = [
    "--image",
    "graphstorm:sm",
    "--graph-name",
    "acm",
    "--num-instances",
    "2",
    "--graph-data-s3",
    "s3://gs-bucket/acm_2p/",
    "--region",
    "us-east-1",
]
TRAINING = [
    "--task-type",
    "node_classification",
    "--train-yaml-s3",
    "s3://gs-bucket/conf/train.yaml",
    "--model-artifact-s3",
    "s3://gs-bucket/model/",
]
INFERENCE = [
    "--task-type",
    "node_classification",
    "--infer-yaml-s3",
    "s3://gs-bucket/conf/infer.yaml",
    "--model-artifact-s3",
    "s3://gs-bucket/model/",
    "--output-emb-s3",
    "s3://gs-bucket/out/embeddings/",
    "--output-prediction-s3",
    "s3://gs-bucket/out/predictions/",
]
PARTITIONING = [
    "--num-parts",
    "2",
    "--output-data-s3",
    "s3://gs-bucket/acm_parts/",
    "--metadata-filename",
    "metadata.json",
    "--partition-algorithm",
    "random",
]
GSF_ARGS = ["--num-layers", "1", "--hidden-size", "128", "--backend", "gloo", "--batch-size", "128"]
SECRETS = [
    "--aws-access-key-id",
    "AKIAIOSFODNN7SECRETID",
    "--aws-secret-access-key",
    "wJalrXUtnFEMIK7MDENGbPxRfiCYSECRETKEY",
    "--aws-session-token",
    "IQoJb3JpZ2luX2VjSECRETTOKEN",
]


def gs(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([GS, "compose", *args], check=False, cwd=cwd, capture_output=True, text=True, timeout=120)


def load(path: Path) -> dict:
    doc = yaml.safe_load(path.read_text())
    jsonschema.Draft201909Validator(SCHEMA).validate(doc)
    return doc


@pytest.mark.parametrize(
    ("argv", "name"),
    [
        (["training", *TRAINING], "docker-compose-training-acm-2workers-node_classification.yaml"),
        (["inference", *INFERENCE], "docker-compose-inference-acm-2workers-node_classification.yaml"),
        (["partitioning", *PARTITIONING], "docker-compose-partitioning-acm-2workers-random-2parts.yaml"),
    ],
)
def test_each_action_writes_the_seed_named_file(tmp_path, argv, name):
    proc = gs(*COMMON, *argv, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert [p.name for p in tmp_path.iterdir()] == [name]
    doc = load(tmp_path / name)
    assert list(doc["services"]) == ["algo-1", "algo-2"]
    service = doc["services"]["algo-2"]
    assert service["image"] == "graphstorm:sm"
    assert service["hostname"] == "algo-2"
    assert service["environment"]["MASTER_ADDR"] == "algo-1"
    assert service["environment"]["AWS_REGION"] == "us-east-1"
    step = {"training": "train", "inference": "infer", "partitioning": "partition"}[argv[0]]
    assert service["command"][:2] == ["python3", f"/opt/ml/code/{step}_entry.py"]


def test_common_flags_after_the_action_and_gsf_flags_forwarded(tmp_path):
    before = tmp_path / "before"
    after = tmp_path / "after"
    before.mkdir()
    after.mkdir()
    assert gs(*COMMON, "training", *TRAINING, *GSF_ARGS, cwd=before).returncode == 0
    proc = gs("training", *TRAINING, *COMMON, *GSF_ARGS, cwd=after)
    assert proc.returncode == 0, proc.stderr
    first = load(next(before.iterdir()))["services"]["algo-1"]["command"]
    second = load(next(after.iterdir()))["services"]["algo-1"]["command"]
    assert first == second
    # Our flags, then --, then the GraphStorm flags exactly as given.
    assert second[second.index("--") + 1 :] == GSF_ARGS
    assert second[second.index("--train-yaml-s3") + 1] == "s3://gs-bucket/conf/train.yaml"


def test_credentials_are_never_written(tmp_path):
    proc = gs(*COMMON, *SECRETS, "training", *TRAINING, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    path = next(tmp_path.iterdir())
    text = path.read_text()
    for secret in SECRETS[1::2]:
        assert secret not in text
        assert secret not in proc.stdout + proc.stderr
    env = load(path)["services"]["algo-1"]["environment"]
    assert env["AWS_ACCESS_KEY_ID"] is None
    assert env["AWS_SECRET_ACCESS_KEY"] is None
    assert env["AWS_SESSION_TOKEN"] is None
    assert "by name" in proc.stdout


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        ([*COMMON, "--aws-access-key-id", "AKIA", "training", *TRAINING], "--aws-secret-access-key"),
        ([*COMMON, "training", *TRAINING[:-2]], "--model-artifact-s3"),
        ([*COMMON[:-2], "training", *TRAINING], "--region"),
        (
            [*COMMON, "partitioning", *PARTITIONING[:2], "--output-data-s3", "s3://gs-bucket/o/", "--num-parts", "3"],
            "--num-instances",
        ),
        ([*COMMON, "partitioning", *PARTITIONING[:-1], "metis"], "--partition-algorithm"),
        (
            [*COMMON, "training", *TRAINING[:2], "--train-yaml-s3", "s3://gs-bucket/conf/", *TRAINING[4:]],
            "--train-yaml-s3",
        ),
        ([*COMMON, "inference", *INFERENCE[:6]], "--output-emb-s3"),
        (COMMON, "action"),
    ],
)
def test_bad_input_is_one_line_naming_the_flag(tmp_path, argv, flag):
    proc = gs(*argv, cwd=tmp_path)
    assert proc.returncode == 2
    assert flag in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_help_lists_every_action(tmp_path):
    proc = gs("--help", cwd=tmp_path)
    assert proc.returncode == 0
    for word in ("partitioning", "training", "inference", "--graph-data-s3", "--aws-session-token"):
        assert word in proc.stdout


def test_run_starts_the_file_reports_the_failing_host_and_cleans_up(compose_tool, probe_image, tmp_path):
    # The probe image has no entry points, so every host fails at once (python3 exits 2 on a
    # missing script): --run must report it, return non-zero and leave nothing behind.
    image_args = [*COMMON]
    image_args[image_args.index("--image") + 1] = probe_image
    proc = gs(*image_args, "training", *TRAINING, "--run", cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "exited with code 2" in proc.stderr
    assert "host algo-" in proc.stderr
    assert "Tore down" in proc.stdout
    doc = load(tmp_path / "docker-compose-training-acm-2workers-node_classification.yaml")
    names = [s["container_name"] for s in doc["services"].values()]
    listed = subprocess.run(
        [compose_tool.engine, "ps", "-a", "--format", "{{.Names}}"], capture_output=True, text=True, check=True
    ).stdout.split()
    assert not set(names) & set(listed)


@pytest.mark.parametrize(("graph_name", "in_job_name"), [("ogbn_arxiv", "ogbn-arxiv"), ("acm.v2", "acm-v2")])
def test_partitioning_accepts_a_graph_name_a_job_name_could_not_hold(tmp_path, graph_name, in_job_name):
    # GraphStorm graph names allow "_" and ".", SageMaker job (and our container) names do not.
    common = [*COMMON]
    common[common.index("acm")] = graph_name
    proc = gs(*common, "partitioning", *PARTITIONING, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (path,) = tmp_path.iterdir()
    assert path.name == f"docker-compose-partitioning-{graph_name}-2workers-random-2parts.yaml"
    names = [s["container_name"] for s in load(path)["services"].values()]
    assert all(name.startswith(f"gs-partition-{in_job_name}-") for name in names), names


def test_partitioning_metadata_filename_defaults_to_the_partition_spec(tmp_path):
    from graphstorm_provider.jobs.partition import DEFAULT_METADATA_FILENAME

    cut = PARTITIONING.index("--metadata-filename")
    proc = gs(*COMMON, "partitioning", *PARTITIONING[:cut], *PARTITIONING[cut + 2 :], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (path,) = tmp_path.iterdir()
    command = load(path)["services"]["algo-1"]["command"]
    assert command[command.index("--metadata-filename") + 1] == DEFAULT_METADATA_FILENAME


def test_launch_script_spellings_are_aliases_of_the_generator_flags(tmp_path):
    generator, launch = tmp_path / "generator", tmp_path / "launch"
    generator.mkdir(), launch.mkdir()
    assert gs(*COMMON, "training", *TRAINING, cwd=generator).returncode == 0
    spelled = [{"--image": "--image-url", "--num-instances": "--instance-count"}.get(a, a) for a in COMMON]
    training = [{"--train-yaml-s3": "--yaml-s3"}.get(a, a) for a in TRAINING]
    proc = gs(*spelled, "training", *training, cwd=launch)
    assert proc.returncode == 0, proc.stderr
    [first], [second] = generator.iterdir(), launch.iterdir()
    assert first.name == second.name
    assert load(first)["services"]["algo-1"]["command"] == load(second)["services"]["algo-1"]["command"]


@pytest.mark.parametrize("action", ["partitioning", "training", "inference"])
def test_action_flags_are_the_step_specs_flags(action):
    """Every flag of the step's own parser is a flag of the action (one parser per step)."""
    from graphstorm_provider.cli.compose import COMMON_SPEC_FIELDS, build_parser
    from graphstorm_provider.jobs import COMPOSE_ACTIONS, STEP_SPECS

    def options(parser) -> set[str]:
        return {o for a in parser._actions for o in a.option_strings}

    step_parser = STEP_SPECS[COMPOSE_ACTIONS[action]].argument_parser()
    step_flags = {
        o
        for a in step_parser._action_groups[-1]._group_actions
        if a.dest not in COMMON_SPEC_FIELDS
        for o in a.option_strings
    }
    [sub] = [a for a in build_parser()._actions if a.dest == "action"]
    assert step_flags
    assert step_flags <= options(sub.choices[action])
