"""The map matches the territory: every step names an entry point that exists, and
docs/ARCHITECTURE.md names every module of the provider."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from graphstorm_provider.jobs import STEP_SPECS

ROOT = Path(__file__).resolve().parent.parent
ENTRYPOINTS = ROOT / "entrypoints"
CONTAINER_CODE_DIR = "/opt/ml/code/"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/graphstorm:sagemaker"
ROLE = "arn:aws:iam::123456789012:role/SageMakerExecutionRole"

# One valid command line per step (GraphStorm's SageMaker launch scripts' flags).
STEP_ARGV = {
    "gconstruct": "--input-graph-s3 s3://bkt/raw/ --output-graph-s3 s3://bkt/gc/ --graph-name acm "
    "--graph-config-file config.json",
    "partition": "--graph-data-s3 s3://bkt/gc/ --num-parts 2 --output-data-s3 s3://bkt/2p/",
    "train": "--graph-data-s3 s3://bkt/2p/ --yaml-s3 s3://bkt/t.yaml --model-artifact-s3 s3://bkt/m/ --graph-name acm "
    "--task-type node_classification",
    "infer": "--graph-data-s3 s3://bkt/2p/ --yaml-s3 s3://bkt/t.yaml --model-artifact-s3 s3://bkt/m/ --graph-name acm "
    "--task-type node_classification --output-emb-s3 s3://bkt/emb/",
}


def container_entrypoint(step: str) -> list[str]:
    argv = [*shlex.split(STEP_ARGV[step]), "--image-url", IMAGE, "--role", ROLE, "--region", "us-east-1"]
    job = STEP_SPECS[step].from_argv(argv).build()
    specification = job.request.get("AlgorithmSpecification") or job.request["AppSpecification"]
    return specification["ContainerEntrypoint"]


def _step_param(step: str):
    script = f"{step}_entry.py"
    if step == "partition" and not (ENTRYPOINTS / script).exists():
        return pytest.param(step, marks=pytest.mark.xfail(strict=True, reason="partition_entry.py not yet present"))
    return step


def test_every_step_has_a_valid_command_line_here():
    assert sorted(STEP_ARGV) == sorted(STEP_SPECS)


@pytest.mark.parametrize("step", [_step_param(step) for step in STEP_SPECS])
def test_the_entry_point_a_step_names_exists(step):
    entrypoint = container_entrypoint(step)
    scripts = [arg for arg in entrypoint if arg.startswith(CONTAINER_CODE_DIR)]
    assert scripts, entrypoint
    for script in scripts:
        assert (ENTRYPOINTS / script.removeprefix(CONTAINER_CODE_DIR)).is_file(), script


def provider_modules() -> list[str]:
    package = ROOT / "graphstorm_provider"
    return sorted(
        str(path.relative_to(ROOT))
        for path in package.rglob("*.py")
        if path.name != "__init__.py" and "__pycache__" not in path.parts
    )


def test_architecture_names_every_provider_module():
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    missing = [module for module in provider_modules() if module.removeprefix("graphstorm_provider/") not in text]
    assert missing == []


def test_architecture_names_only_modules_that_exist():
    import re

    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    named = set(re.findall(r"`(?:graphstorm_provider/|entrypoints/)?([\w/]+\.py)`", text))
    known = {str(p.relative_to(ROOT)) for p in ROOT.glob("graphstorm_provider/**/*.py")}
    known |= {str(p.relative_to(ROOT)) for p in ROOT.glob("entrypoints/**/*.py")}
    known |= {str(p.relative_to(ROOT)) for p in ROOT.glob("dags/*.py")}
    absent = sorted(
        name
        for name in named
        if not (ROOT / name).is_file()  # a path from the checkout's root (tests/, bench/, dags/)
        and not any(path == name or path.endswith("/" + name) for path in known)
    )
    assert absent == []
