"""
What the launch-script grammar forwards to GraphStorm, and what it must not.

Unknown ``--flags`` are GraphStorm's and go to it in order. Two ways that went wrong:

A. A mistyped flag of ours was forwarded as if it were GraphStorm's: ``--dryrun`` launched a real
   job, ``--model-checkpoint-to-lod s3://...`` trained from scratch (GraphStorm's launch ignores
   flags it does not know, with a warning in the job's log), ``--instance-cont 4`` ran on one
   instance. A flag that is not ours but close to one of ours is now refused with "did you mean";
   after ``--`` everything is still forwarded as given (the way to pass such a flag on purpose).
   No flag of GraphStorm's own parsers may be mistaken for a typo of ours.
B. GraphStorm's flags given as one quoted string (``"--num-epochs 2 --lr 0.01"``, a form GraphStorm's
   SageMaker scripts split) went to GraphStorm as one token, which its parser ignores: the job
   trained with the YAML's values. Such a token is now split as a shell would.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from graphstorm_provider.exit_codes import EXIT_USAGE
from graphstorm_provider.jobs import STEP_SPECS, JobSpecError, TrainSpec
from tests.spec_kwargs import IMAGE, ROLE, TRAIN_ARGV

GS_SAGEMAKER = str(Path(sys.executable).parent / "gs-sagemaker")
INFER_ARGV = [
    *TRAIN_ARGV[: TRAIN_ARGV.index("--model-artifact-s3")], "--model-artifact-s3", "s3://bkt/model/",
    "--output-emb-s3", "s3://bkt/emb/", "--graph-name", "g", "--task-type", "node_classification",
]  # fmt: skip
GCONSTRUCT_ARGV = [
    "--image-url", IMAGE, "--role", ROLE, "--input-graph-s3", "s3://bkt/raw/", "--output-graph-s3",
    "s3://bkt/out/", "--graph-name", "g", "--graph-config-file", "config.json",
]  # fmt: skip


def forwarded(spec) -> list[str]:
    arguments = spec.build("job").container_arguments
    return arguments[arguments.index("--") + 1 :]


# --- A. typos of our flags --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("step", "argv", "typo", "meant"),
    [
        ("train", TRAIN_ARGV, ["--model-checkpoint-to-lod", "s3://bkt/ck/"], "--model-checkpoint-to-load"),
        ("train", TRAIN_ARGV, ["--instance-cont", "4"], "--instance-count"),
        ("train", TRAIN_ARGV, ["--task-nme", "run"], "--task-name"),
        ("train", TRAIN_ARGV, ["--yaml_s3", "s3://bkt/other.yaml"], "--yaml-s3"),
        ("infer", INFER_ARGV, ["--raw-node-mapping-s3", "s3://bkt/map/"], "--raw-node-mappings-s3"),
        ("gconstruct", GCONSTRUCT_ARGV, ["--sm-estimator-parameter", "volume_size_in_gb=10"], "--sm-estimator-parameters"),
    ],
)  # fmt: skip
def test_a_mistyped_flag_of_ours_is_refused_with_a_suggestion(step, argv, typo, meant):
    with pytest.raises(JobSpecError) as info:
        STEP_SPECS[step].from_argv([*argv, *typo])
    message = str(info.value)
    assert f"did you mean {meant}?" in message, message
    assert typo[0] in message, message
    assert "\n" not in message, message


@pytest.mark.parametrize(
    ("typo", "meant"),
    [
        (["--Region", "us-east-1"], "--region"),
        (["--IMAGE_URL", IMAGE], "--image-url"),
        (["--sm", "max_run=5"], "--sm-estimator-parameters"),  # argparse would take it as an abbreviation
        (["--async"], "--async-execution"),
        (["--regoin", "us-east-1"], "--region"),  # two letters swapped
        (["--rloe", ROLE], "--role"),
        (["--image", IMAGE], "--image-uri or --image-url"),  # GraphStorm's compose generator's spelling
    ],
)
def test_another_case_or_an_abbreviation_of_our_flag_is_refused_too(typo, meant):
    with pytest.raises(JobSpecError, match=f"did you mean {meant}\\?"):
        TrainSpec.from_argv([*TRAIN_ARGV, *typo])


@pytest.mark.parametrize("where", ["before --", "after --", "as one string"])
@pytest.mark.parametrize("flag", ["--aws-secret-access-key", "--aws-access-key-id", "--AWS_SESSION_TOKEN"])
def test_an_aws_credential_never_becomes_a_job_argument(flag, where):
    """SageMaker shows a job's arguments to anyone who may describe it; the job has its role instead."""
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    given = {
        "before --": [flag, secret],
        "after --": ["--", flag, secret],
        "as one string": [f"--num-epochs 2 {flag}={secret}"],
    }[where]
    with pytest.raises(JobSpecError) as info:
        TrainSpec.from_argv([*TRAIN_ARGV, *given]).build("job")
    assert "would put an AWS credential into the job's arguments" in str(info.value)
    assert secret not in str(info.value)


def test_a_flag_of_ours_given_twice_is_warned_of_and_the_last_one_is_used(caplog):
    spec = TrainSpec.from_argv(
        [*TRAIN_ARGV, "--sm-estimator-parameters", "max_run=3600", "--sm-estimator-parameters", "volume_size=50"]
    )
    assert spec.sm_parameters == {"volume_size": 50}
    assert "--sm-estimator-parameters is given more than once: the last one is used" in caplog.text


def test_after_the_separator_a_near_flag_is_forwarded_as_given():
    spec = TrainSpec.from_argv([*TRAIN_ARGV, "--", "--instance-cont", "4"])
    assert forwarded(spec) == ["--instance-cont", "4"]


def test_graphstorm_flags_still_go_to_graphstorm():
    spec = TrainSpec.from_argv([*TRAIN_ARGV, "--num-epochs", "3", "--lr=0.01", "--node-feat-name", "paper:feat"])
    assert forwarded(spec) == ["--num-epochs", "3", "--lr=0.01", "--node-feat-name", "paper:feat"]


def _graphstorm_flags() -> list[str]:
    """Every option of GraphStorm's training/inference parser and of its launcher, from the runtime."""
    runtime = os.environ.get("GRAPHSTORM_RUNTIME_PYTHON") or str(
        Path(__file__).resolve().parents[1] / ".venv-runtime" / "bin" / "python"
    )
    code = (
        "import json\n"
        "from graphstorm.config import get_argument_parser\n"
        "from graphstorm.run.launch import get_argument_parser as launcher\n"
        "flags = {s for p in (get_argument_parser(), launcher()) for a in p._actions for s in a.option_strings}\n"
        "print(json.dumps(sorted(f for f in flags if f.startswith('--'))))\n"
    )
    proc = subprocess.run([runtime, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_no_flag_of_graphstorm_is_taken_for_a_typo_of_ours():
    flags = _graphstorm_flags()
    assert "--num-epochs" in flags
    assert "--num-trainers" in flags
    ours = {s for a in TrainSpec.argument_parser()._actions for s in a.option_strings}
    refused = {}
    for name in flags:
        if name in ours:
            continue  # the same flag in both (``--graph-name``, ...): ours takes it, as before
        for step, argv in (("train", TRAIN_ARGV), ("infer", INFER_ARGV)):
            try:
                STEP_SPECS[step].from_argv([*argv, name, "1"])
            except JobSpecError as err:
                if "did you mean" in str(err):
                    refused[name] = str(err)
    assert refused == {}


def test_a_container_argument_sagemaker_would_refuse_is_named_by_its_flag():
    with pytest.raises(JobSpecError, match=r"^The value of --note must match SageMaker's pattern"):
        TrainSpec.from_argv([*TRAIN_ARGV, "--", "--note", "a\nb"]).build("job")


def test_a_value_that_merely_contains_dry_run_goes_to_graphstorm():
    spec = TrainSpec.from_argv([*TRAIN_ARGV, "--", "--wandb-name", "a-dry-run", "--tag=x_DryRun"])
    assert forwarded(spec) == ["--wandb-name", "a-dry-run", "--tag=x_DryRun"]


def test_a_value_with_a_password_is_never_quoted_in_a_refusal():
    with pytest.raises(JobSpecError) as info:
        TrainSpec.from_argv([*TRAIN_ARGV, "--", "--mlflow-uri", "http://svc:hunter2pw@mlflow:5000/\n"]).build("job")
    assert str(info.value).startswith("The value of --mlflow-uri must match SageMaker's pattern")
    assert "hunter2pw" not in str(info.value)


def test_no_flag_of_gconstruct_is_taken_for_a_typo_of_ours():
    """GConstruct declares its parser inline (no function returns it): its flags are read from its source."""
    runtime = os.environ.get("GRAPHSTORM_RUNTIME_PYTHON") or str(
        Path(__file__).resolve().parents[1] / ".venv-runtime" / "bin" / "python"
    )
    code = "import graphstorm.gconstruct.construct_graph as m; print(m.__file__)"
    source = subprocess.run([runtime, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    flags = sorted(set(re.findall(r"""add_argument\(\s*["'](--[a-z0-9-]+)""", Path(source.stdout.strip()).read_text())))
    assert "--num-processes" in flags
    assert "--output-format" in flags
    refused = {}
    for name in flags:
        try:
            STEP_SPECS["gconstruct"].from_argv([*GCONSTRUCT_ARGV, name, "1"])
        except JobSpecError as err:
            if "did you mean" in str(err):
                refused[name] = str(err)
    assert refused == {}


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (["--dryrun"], "did you mean --dry-run?"),
        (["--DRY-RUN"], "did you mean --dry-run?"),
        (["--Dry-Run"], "did you mean --dry-run?"),
        (["--dryRun"], "did you mean --dry-run?"),
        (["--", "--num-epochs", "2", "--dry-run"], "--dry-run would go to GraphStorm, which has no such flag"),
        (["--num-epochs 2 --dry-run"], "--dry-run would go to GraphStorm, which has no such flag"),
        (["--", "--num-epochs 2 --Dry-Run"], "--Dry-Run would go to GraphStorm, which has no such flag"),
        (["--job-name", ""], "--job-name needs a value, got an empty one"),
    ],
)
def test_gs_sagemaker_refuses_a_mistyped_dry_run_before_any_request(given, expected):
    proc = subprocess.run(
        [GS_SAGEMAKER, "train", *TRAIN_ARGV, *given],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_EC2_METADATA_DISABLED": "true"},
    )
    assert proc.returncode == EXIT_USAGE, proc.stderr
    assert expected in proc.stderr, proc.stderr
    assert "could not create" not in proc.stderr  # it never got as far as SageMaker


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--dry-run"], "--dry-run is a flag of gs-sagemaker's step commands"),
        (["--job-name", "x1"], "--job-name is a flag of gs-sagemaker's step commands"),
        (["--num-instnces", "2"], "did you mean --num-instances?"),
        # The SageMaker job's flags: GraphStorm would ignore them, and the file would hold the secret.
        (
            ["--sm-estimator-parameters", "environment={'DB_PASSWORD':'hunter2secret'}"],
            "--sm-estimator-parameters is a flag of the SageMaker job (gs-sagemaker train), not of compose training",
        ),
        (["--role", ROLE], "--role is a flag of the SageMaker job"),
        (["--image-uri", "graphstorm:sm"], "did you mean --image-url?"),  # compose takes the image: no job-only flag
        (["--NUM-INSTANCES", "2"], "did you mean --num-instances?"),
    ],
)
def test_gs_sagemaker_compose_refuses_what_is_not_its_flag_or_graphstorm_s(tmp_path, extra, expected):
    argv = [
        "compose", "training", "--graph-name", "g", "--num-instances", "2", "--graph-data-s3", "s3://bkt/g/",
        "--region", "us-east-1", "--train-yaml-s3", "s3://bkt/t.yaml", "--model-artifact-s3", "s3://bkt/m/",
        "--task-type", "node_classification", "--output-dir", str(tmp_path), *extra,
    ]  # fmt: skip
    proc = subprocess.run([GS_SAGEMAKER, *argv], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == EXIT_USAGE, proc.stderr
    assert expected in proc.stderr, proc.stderr
    assert list(tmp_path.iterdir()) == []  # no compose file


# --- B. flags given as one string -------------------------------------------------------------
def test_graphstorm_flags_given_as_one_string_are_split_as_graphstorm_splits_them():
    spec = TrainSpec.from_argv([*TRAIN_ARGV, "--num-epochs 2 --lr 0.01"])
    assert forwarded(spec) == ["--num-epochs", "2", "--lr", "0.01"]
    quoted = TrainSpec.from_argv([*TRAIN_ARGV, "--", "--num-epochs 2 --node-feat-name 'paper:feat a'"])
    assert forwarded(quoted) == ["--num-epochs", "2", "--node-feat-name", "paper:feat a"]


def test_a_value_with_spaces_after_an_equals_sign_stays_one_argument():
    spec = TrainSpec.from_argv([*TRAIN_ARGV, "--", "--extra-envs=A=1 B=2"])
    assert forwarded(spec) == ["--extra-envs=A=1 B=2"]


def test_an_operator_list_element_with_several_flags_is_split_too():
    spec = TrainSpec(
        image_url=IMAGE,
        role=ROLE,
        graph_data_s3="s3://bkt/graph/",
        yaml_s3="s3://bkt/t.yaml",
        model_artifact_s3="s3://bkt/model/",
        graph_name="g",
        task_type="node_classification",
        graphstorm_args=["--num-epochs 2", "--lr", "0.01"],
    )
    assert forwarded(spec) == ["--num-epochs", "2", "--lr", "0.01"]


# --- C. what the infer entry point refuses, refused before launch --------------------------------
@pytest.mark.parametrize("task_type", ["link_prediction", "compute_emb"])
def test_prediction_output_for_a_task_that_makes_no_predictions_is_refused_at_parse(task_type):
    """The entry point refused it, but only once the paid instance had started."""
    with pytest.raises(JobSpecError, match=rf"--output-prediction-s3 .*--task-type {task_type}"):
        STEP_SPECS["infer"].from_argv(
            [*INFER_ARGV[: INFER_ARGV.index("--task-type")], "--task-type", task_type,
             "--output-prediction-s3", "s3://bkt/pred/"]
        )  # fmt: skip
    # A custom script decides for itself, as in the entry point.
    STEP_SPECS["infer"].from_argv(
        [*INFER_ARGV[: INFER_ARGV.index("--task-type")], "--task-type", task_type,
         "--output-prediction-s3", "s3://bkt/pred/", "--custom-script", "my_infer.py"]
    )  # fmt: skip


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--num-trainers", "abc"), ("--num-servers", "0"), ("--output-chunk-size", "1e5"), ("--num-samplers", "-1")],
)
def test_a_bad_value_of_graphstorm_s_launcher_flags_is_refused_at_parse(flag, value):
    """The job's launcher refused it, once the instances had started."""
    with pytest.raises(JobSpecError, match=flag):
        TrainSpec.from_argv([*TRAIN_ARGV, flag, value])
    with pytest.raises(JobSpecError, match=flag):
        TrainSpec.from_argv([*TRAIN_ARGV, "--", f"{flag}={value}"])


# --- D. suggestions for a mistyped value or command ----------------------------------------------
def test_a_mistyped_choice_gets_a_suggestion():
    with pytest.raises(JobSpecError, match=r"did you mean node_classification\?"):
        TrainSpec.from_argv([*TRAIN_ARGV[:-1], "node_clasification"])


def test_a_mistyped_command_gets_a_suggestion():
    proc = subprocess.run([GS_SAGEMAKER, "trian"], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == EXIT_USAGE
    assert "did you mean 'train'?" in proc.stderr, proc.stderr


def test_a_custom_entry_point_is_refused_not_ignored():
    """GraphStorm's launch scripts run the --entry-point they are given; ours run the image's own, so
    a user's own script would silently not run. GraphStorm's own paths stay accepted."""
    TrainSpec.from_argv([*TRAIN_ARGV, "--entry-point", "run/train_entry.py"])
    TrainSpec.from_argv([*TRAIN_ARGV, "--entry-point", "train_entry.py"])
    with pytest.raises(JobSpecError, match=r"--entry-point my/custom_train\.py .*--custom-script"):
        TrainSpec.from_argv([*TRAIN_ARGV, "--entry-point", "my/custom_train.py"])
    with pytest.raises(JobSpecError, match="--entry-point"):
        TrainSpec.from_argv([*TRAIN_ARGV, "--entry-point", "run/infer_entry.py"])  # another step's
