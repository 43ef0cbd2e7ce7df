"""Secret-looking ``Environment`` values (``DB_PASSWORD``, ``API_TOKEN``, ``GITHUB_CREDENTIALS``).

A job's ``environment`` may hold them (AWS credential variables are refused at parse): SageMaker
needs the values, so the request actually sent carries them. Everything of ours that shows the
request shows them as ``***`` (``jobs.request.printable_request``): ``gs-sagemaker --dry-run``, the
local emulation's ``processingjobconfig.json`` (tests/test_secrets.py). Nothing we log or push to
XCom holds them (the CLI's output, the operators' task logs and XComs, the SageMaker backend's
re-attach messages, the local backend's log), and Airflow's rendered-template view masks them
(the operators register them with Airflow's secrets masker when their fields are rendered).
A SageMaker job with such names logs one warning naming them: SageMaker stores Environment values
in plain text and shows them in Describe*Job.

The CLI and operator tests run against the moto server over HTTP (``aws_env``).
"""

from __future__ import annotations

import json
import logging
import sys
import textwrap
import uuid

import pytest

from graphstorm_provider import config
from graphstorm_provider.aws_env import REDACTED
from graphstorm_provider.jobs import STEP_SPECS, TrainSpec
from tests.spec_kwargs import TRAIN
from tests.test_cli_sagemaker import IMAGE, SEED_TRAIN, gs_sagemaker, result_json, seed_argv
from tests.test_operators_sagemaker import DATA, REGION, ROLE, task_states, xcoms

# What the one warning says (its fixed words).
WARNING_WORDS = "SageMaker stores Environment values in plain text"


def canary(label: str) -> str:
    """A value no other test uses: Airflow's secrets masker is process-wide."""
    return f"canary-{label}-{uuid.uuid4().hex[:12]}"


def secret_parameters(password: str, token: str) -> str:
    """The launch scripts' ``--sm-estimator-parameters`` grammar, with two secret-looking variables."""
    return f"environment={{'DB_PASSWORD':'{password}','API_TOKEN':'{token}','LEVEL':'2'}} max_run=3600"


# --------------------------------------------------------------------------- the one function
def test_printable_request_redacts_secret_looking_environment_values_only_in_a_copy():
    from graphstorm_provider.jobs.request import printable_request

    secret = canary("unit")
    job = TrainSpec(**TRAIN, sm_estimator_parameters={"environment": {"DB_PASSWORD": secret, "LEVEL": "2"}}).build(
        "job-1"
    )
    printable = printable_request(job.request)
    assert printable["Environment"]["DB_PASSWORD"] == REDACTED
    assert printable["Environment"]["LEVEL"] == "2"
    assert printable == {**job.request, "Environment": {**job.request["Environment"], "DB_PASSWORD": REDACTED}}
    assert job.request["Environment"]["DB_PASSWORD"] == secret  # the request sent is unchanged
    assert printable_request({"RoleArn": "r"}) == {"RoleArn": "r"}  # no Environment: none added


# --------------------------------------------------------------------------- gs-sagemaker
def test_dry_run_prints_secret_looking_environment_values_redacted_and_otherwise_exact(aws_env):
    password, token = canary("pw"), canary("tok")
    argv = [*seed_argv(SEED_TRAIN), "--sm-estimator-parameters", secret_parameters(password, token)]
    proc = gs_sagemaker("train", "--dry-run", *argv)
    assert proc.returncode == 0, proc.stderr
    assert "canary-" not in proc.stdout + proc.stderr
    printed = json.loads(proc.stdout)
    request = STEP_SPECS["train"].from_argv(argv).build(job_name=printed["TrainingJobName"]).request
    assert request["Environment"]["DB_PASSWORD"] == password  # what a launch would send
    expected = {**request, "Environment": {**request["Environment"], "DB_PASSWORD": REDACTED, "API_TOKEN": REDACTED}}
    assert printed == expected
    assert aws_env.received("SageMaker.CreateTrainingJob") == []


def test_launch_sends_the_values_prints_none_and_warns_once(aws_env):
    password, token = canary("pw"), canary("tok")
    argv = [*seed_argv(SEED_TRAIN), "--sm-estimator-parameters", secret_parameters(password, token)]
    name = f"gs-secret-{uuid.uuid4().hex[:8]}"
    proc = gs_sagemaker("train", "--job-name", name, *argv)
    assert proc.returncode == 0, proc.stderr
    [sent] = aws_env.received("SageMaker.CreateTrainingJob")
    assert sent["Environment"]["DB_PASSWORD"] == password  # SageMaker needs the value
    assert sent["Environment"]["API_TOKEN"] == token
    assert "canary-" not in proc.stdout + proc.stderr
    assert proc.stderr.count(WARNING_WORDS) == 1, proc.stderr
    [warning] = [line for line in proc.stderr.splitlines() if WARNING_WORDS in line]
    assert "DB_PASSWORD, API_TOKEN" in warning
    assert "LEVEL" not in warning
    assert "secrets manager" in warning.lower()

    # The same name again from a different request: the backend logs why it launches -a2, no value.
    again = gs_sagemaker("train", "--job-name", name, *argv, "--image-url", f"{IMAGE}-2")
    assert again.returncode == 0, again.stderr
    assert result_json(again)["job_name"] == f"{name}-a2"
    assert "differs" in again.stderr
    assert "canary-" not in again.stdout + again.stderr


def test_no_warning_for_a_local_job_or_without_secret_looking_names(aws_env, tmp_path):
    base = [
        *("--graph-data-s3", f"file://{tmp_path}/g/", "--yaml-s3", f"file://{tmp_path}/t.yaml"),
        *("--model-artifact-s3", f"file://{tmp_path}/m/", "--graph-name", "acm"),
        *("--task-type", "node_classification", "--instance-type", "local", "--image-url", "local"),
        *("--role", "local"),
    ]
    local = gs_sagemaker(
        "train", "--dry-run", *base, "--sm-estimator-parameters", secret_parameters("a1b2c3", "d4e5f6")
    )
    assert local.returncode == 0, local.stderr
    assert WARNING_WORDS not in local.stderr
    assert json.loads(local.stdout)["Environment"]["DB_PASSWORD"] == REDACTED  # still printed redacted
    plain = gs_sagemaker(
        "train", "--dry-run", *seed_argv(SEED_TRAIN), "--sm-estimator-parameters", "environment={'LEVEL':'2'}"
    )
    assert plain.returncode == 0, plain.stderr
    assert WARNING_WORDS not in plain.stderr


# --------------------------------------------------------------------------- operators
OPERATOR_DAG = """
import pendulum
from airflow.sdk import DAG
from graphstorm_provider.operators.train import GSTrainOperator

common = dict(image_url="{image}", role="{role}", region="{region}", check_interval=1, graph_data_s3="{data}/2p/",
              yaml_s3="{data}/train.yaml", model_artifact_s3="{data}/model/", graph_name="acm",
              task_type="node_classification", require_input_manifests=False)
with DAG("{dag_id}", schedule=None, start_date=pendulum.datetime(2024, 1, 1),
         params={{"sm": {{"environment": {{"DB_PASSWORD": "{param_pw}"}}}}}}) as dag:
    GSTrainOperator(task_id="as_dict", sm_estimator_parameters={{
        "environment": {{"DB_PASSWORD": "{dict_pw}", "GITHUB_CREDENTIALS": "{dict_cred}", "LEVEL": "2"}}}}, **common)
    GSTrainOperator(task_id="as_text", sm_estimator_parameters="environment={{'API_TOKEN':'{text_tok}'}}", **common)
    GSTrainOperator(task_id="from_param", sm_estimator_parameters="{{{{ params.sm }}}}", **common)
    GSTrainOperator.partial(task_id="mapped", **common).expand(
        sm_estimator_parameters=["environment={{'GITHUB_CREDENTIALS':'{mapped_cred}'}}"])
"""


def _train_and_compose(train_parameters, compose_parameters):
    """A SageMaker train task and a two-host LocalComposeOperator train task with these ``sm_estimator_parameters``."""
    from graphstorm_provider.operators.local_compose import LocalComposeOperator
    from graphstorm_provider.operators.train import GSTrainOperator

    train = GSTrainOperator(
        task_id="train",
        image_url=IMAGE,
        role=ROLE,
        region=REGION,
        graph_data_s3=f"{DATA}/2p/",
        yaml_s3=f"{DATA}/train.yaml",
        model_artifact_s3=f"{DATA}/model/",
        graph_name="acm",
        task_type="node_classification",
        sm_estimator_parameters=train_parameters,
    )
    compose = LocalComposeOperator(
        task_id="compose", step="train", job_params={"sm_estimator_parameters": compose_parameters}, instance_count=2
    )
    return train, compose


def rendered_fields(dag_run) -> dict[str, dict]:
    """The rendered template fields Airflow stored for each task (what its UI shows)."""
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(
            select(RenderedTaskInstanceFields).where(
                RenderedTaskInstanceFields.dag_id == dag_run.dag_id,
                RenderedTaskInstanceFields.run_id == dag_run.run_id,
            )
        ).all()
        return {row.task_id: row.rendered_fields for row in rows}


def test_operators_send_the_values_but_neither_log_nor_push_nor_render_them(aws_env, load_dag, capfd):
    values = {
        "dict_pw": canary("dict-pw"),
        "dict_cred": canary("dict-cred"),  # no word of Airflow's sensitive-name list
        "text_tok": canary("text-tok"),  # the launch scripts' grammar: one string
        "param_pw": canary("param-pw"),  # a dict param rendered into a string
        "mapped_cred": canary("mapped-cred"),  # a mapped task renders through its unmapped copy
    }
    dag_id = f"gs_secret_env_{uuid.uuid4().hex[:8]}"
    text = OPERATOR_DAG.format(image=IMAGE, role=ROLE, region=REGION, data=DATA, dag_id=dag_id, **values)
    dag_run = load_dag(text, dag_id).test()
    logged = "".join(capfd.readouterr())  # dag.test() writes the task logs to stdout
    assert dag_run.state == "success", task_states(dag_run)
    sent = [job["Environment"] for job in aws_env.received("SageMaker.CreateTrainingJob")]
    assert set(values.values()) <= {value for environment in sent for value in environment.values()}
    fields = rendered_fields(dag_run)
    assert sorted(fields) == ["as_dict", "as_text", "from_param", "mapped"]
    assert "canary-" not in json.dumps(fields), fields
    assert "canary-" not in json.dumps({t: xcoms(dag_run, t) for t in fields}, default=str)
    assert "GraphStorm train job" in logged  # the task logs were captured
    assert "canary-" not in logged
    warnings = [line for line in logged.splitlines() if WARNING_WORDS in line]
    assert len(warnings) == 4, warnings  # one per task
    assert any("DB_PASSWORD, GITHUB_CREDENTIALS," in w for w in warnings), warnings
    assert not any("LEVEL" in w for w in warnings), warnings


def test_the_masker_registration_happens_when_the_fields_are_rendered():
    """Airflow serialises the rendered fields right after rendering them, before ``execute``."""
    from airflow.sdk import DAG
    from airflow.sdk.execution_time.task_runner import _serialize_rendered_fields

    train_secret, compose_secret = canary("op"), canary("compose")
    with DAG(f"gs_mask_{uuid.uuid4().hex[:8]}", schedule=None):
        train, compose = _train_and_compose(
            "environment={'MY_CREDENTIAL':'{{ params.secret }}'}", "environment={'API_TOKEN':'{{ params.secret }}'}"
        )
    train.render_template_fields({"params": {"secret": train_secret}})
    compose.render_template_fields({"params": {"secret": compose_secret}})
    assert train_secret in train.sm_estimator_parameters  # the operator keeps the value to send it
    assert "canary-" not in json.dumps([_serialize_rendered_fields(train), _serialize_rendered_fields(compose)])


# --------------------------------------------------------------------------- local backend
REPORT_ENTRY = """
    import hashlib, os, pathlib
    out = pathlib.Path(os.environ["GRAPHSTORM_OPT_ML"]) / "processing" / "output"
    out.mkdir(parents=True, exist_ok=True)
    (out / "digest.txt").write_text(hashlib.sha256(os.environ["DB_PASSWORD"].encode()).hexdigest())
    print("job ran")
"""


def test_the_local_backend_passes_the_value_and_logs_none(tmp_path, monkeypatch, caplog):
    import hashlib

    from graphstorm_provider.execution.local import LocalJobRunner
    from graphstorm_provider.jobs.request import JobRequest

    folder = tmp_path / "entrypoints"
    folder.mkdir()
    (folder / "report_entry.py").write_text(textwrap.dedent(REPORT_ENTRY))
    monkeypatch.setenv(config.ENTRYPOINTS_DIR_ENV, str(folder))
    secret = canary("local")
    out = tmp_path / "out"
    request = {
        "ProcessingJobName": "gs-secret-local",
        "AppSpecification": {
            "ImageUri": "graphstorm:sm",
            "ContainerEntrypoint": ["python3", "/opt/ml/code/report_entry.py"],
            "ContainerArguments": [],
        },
        "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "local", "VolumeSizeInGB": 30}},
        "ProcessingInputs": [],
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": "out",
                    "S3Output": {
                        "S3Uri": out.as_uri(),
                        "LocalPath": "/opt/ml/processing/output",
                        "S3UploadMode": "EndOfJob",
                    },
                }
            ]
        },
        "RoleArn": "local",
        "Environment": {"DB_PASSWORD": secret},
    }
    job = JobRequest(kind="processing", step="gconstruct", request=request, region=REGION)
    with caplog.at_level(logging.DEBUG):
        LocalJobRunner(job, runtime_python=sys.executable, work_dir=tmp_path / "work").run()
    assert (out / "digest.txt").read_text() == hashlib.sha256(secret.encode()).hexdigest()  # the job had it
    assert "job ran" in caplog.text
    assert "canary-" not in caplog.text
    # A given work directory is kept: SageMaker's processingjobconfig.json there is the printable request.
    [config_file] = (tmp_path / "work").rglob("processingjobconfig.json")
    assert json.loads(config_file.read_text())["Environment"]["DB_PASSWORD"] == REDACTED
    assert "canary-" not in "".join(p.read_text() for p in (tmp_path / "work").rglob("*.json"))


@pytest.mark.parametrize("instance_type", ["ml.m5.4xlarge", "local"])
def test_the_warning_is_for_sagemaker_requests_only(instance_type, caplog, tmp_path):
    from graphstorm_provider.jobs.request import warn_secret_environment

    uri = "s3://bucket-b" if instance_type != "local" else tmp_path.as_uri()
    kwargs = {
        **TRAIN,
        "instance_type": instance_type,
        "graph_data_s3": f"{uri}/g/",
        "yaml_s3": f"{uri}/t.yaml",
        "model_artifact_s3": f"{uri}/m/",
    }
    if instance_type == "local":
        kwargs.update(image_url="local", role="local")
    job = TrainSpec(**kwargs, sm_estimator_parameters={"environment": {"DB_PASSWORD": "x", "LEVEL": "2"}}).build("j")
    with caplog.at_level(logging.WARNING):
        names = warn_secret_environment(job)
    assert names == ([] if instance_type == "local" else ["DB_PASSWORD"])
    assert caplog.text.count(WARNING_WORDS) == (0 if instance_type == "local" else 1)


def test_a_url_with_a_password_is_redacted_under_any_name_and_named_only_in_a_compose_file():
    from graphstorm_provider.execution.compose import dump_compose, render_compose
    from graphstorm_provider.jobs.request import printable_request

    password = canary("url")
    url = f"postgres://app:{password}@db.example.com:5432/app"
    job = TrainSpec(**TRAIN, sm_estimator_parameters={"environment": {"DATABASE_URL": url, "LEVEL": "2"}}).build("j")
    assert printable_request(job.request)["Environment"]["DATABASE_URL"] == REDACTED
    assert job.request["Environment"]["DATABASE_URL"] == url  # the job still gets it
    text = dump_compose(render_compose(job))
    assert password not in text
    assert "DATABASE_URL: null" in text


# --------------------------------------------------------------------------- which names, which values
@pytest.mark.parametrize(
    "name",
    [
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_ACCESS_KEY_ID",  # listed, though its own rule would exempt an _ID
        "DB_PASSWORD",
        "API_TOKEN",
        "GITHUB_CREDENTIALS",
        "MY_CREDENTIAL",
        "GS_TOKEN",
        "HF_TOKEN",
        "PASSWORD",
        "db_password",
        "CLIENT_SECRET",
        "DB_SECRETS",
        "STRIPE_API_KEY",
        "SSH_PRIVATE_KEY",
        "GITHUBTOKEN",  # no separator before the word
        "MYSQL_PWD",  # PWD as a word of its own
        "PWD_DB",
        "APIKEY",
        "SERVICE_APIKEY",
        "BASIC_AUTH",  # AUTH ending the name
        "AUTH",
    ],
)
def test_looks_secret_holds_names_holding_a_secret(name):
    from graphstorm_provider.aws_env import looks_secret

    assert looks_secret(name)


@pytest.mark.parametrize(
    "name",
    [
        "TOKENIZERS_PARALLELISM",  # a word that starts like one
        "MAX_TOKENS",  # a setting about tokens
        "HF_HUB_DISABLE_TOKEN",
        "PASSWORD_MIN_LENGTH",
        "DB_PASSWORD_SECRET_ARN",  # names that refer to a secret
        "DB_SECRET_NAME",
        "CLIENT_SECRET_ID",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "TOKEN_PATH",
        "SECRETS_REGION",
        "TOKEN_URL",
        "LEVEL",
        "SECRETARY",
        "PWD",  # the shell's working directory
        "OLDPWD",
        "AUTH_TYPE",  # AUTH counts only at the end
        "AUTHOR",
        "CRYPWDX",
    ],
)
def test_looks_secret_leaves_names_that_hold_no_secret(name):
    from graphstorm_provider.aws_env import looks_secret

    assert not looks_secret(name)


@pytest.mark.parametrize(
    ("value", "secret"),
    [
        ("postgres://user:hunter2secret@db.example.com:5432/app", True),
        ("https://:tok3n@example.com/x", True),
        ("postgres://user@db.example.com/app", False),  # no password
        ("s3://bucket/key:with:colons@odd", False),  # no user:password before a host
        ("http://example.com/a:b@c", False),
    ],
)
def test_looks_secret_holds_a_url_with_a_password_under_any_name(value, secret):
    from graphstorm_provider.aws_env import looks_secret

    assert looks_secret("DATABASE_URL", value) is secret
    assert looks_secret("DATABASE_URL") is False  # the name alone refers to a secret at most


def test_the_masker_never_gets_booleans_or_empty_values():
    from airflow.sdk._shared.secrets_masker import redact

    from graphstorm_provider.operators.connection import mask_environment_values

    secret = canary("bool")
    mask_environment_values(
        {"environment": {"API_TOKEN": "false", "DB_PASSWORD": "FALSE", "GS_TOKEN": "", "X_SECRET": secret}}
    )
    mask_environment_values({"environment": {"API_TOKEN": True}})
    assert redact(f"flag false FALSE True {secret}") == "flag false FALSE True ***"


# --------------------------------------------------------------------------- parameters that do not parse
@pytest.mark.parametrize(
    ("value", "words"),
    [
        (  # a rendered `| tojson` dict cut short: the launch scripts' grammar then
            '{"environment":{"GITHUB_CREDENTIALS":"SECRET-1"},"enable_network_isolation":false',
            "name=value form",
        ),
        ("environment={'DB_PASSWORD':'pw-SECRET-2'", "the value of environment"),  # no closing brace
        ("environment={'DB_PASSWORD':'pw SECRET-3'}", "the value of environment contains a space"),
        ("environment={'DB_PASSWORD':'pw b=SECRET-4'}", "--sm-estimator-parameters"),  # '=' after the space
        ("environment={'DB_PASSWORD':'pw b-c=SECRET-5'}", "--sm-estimator-parameters"),
        ({"environment": "{'DB_PASSWORD': 'pw-SECRET-6'"}, "environment must be a dict"),  # str, not a dict
        ({"environment": "{'DB_PASSWORD': 'pw-SECRET-7', 'X': null}"}, "environment must be a dict"),  # Python+JSON
    ],
)
def test_a_parameter_error_quotes_no_environment_value(value, words):
    from graphstorm_provider.jobs.errors import JobSpecError

    with pytest.raises(JobSpecError) as raised:
        TrainSpec(**TRAIN, sm_estimator_parameters=value).build("j")
    message = str(raised.value)
    assert "SECRET-" not in message, message
    assert words in message, message
    assert ". " not in message.replace("e.g. ", ""), message  # one sentence
    assert message.endswith("."), message


def test_a_parameter_error_without_an_environment_still_quotes_the_value():
    from graphstorm_provider.jobs.errors import JobSpecError

    with pytest.raises(JobSpecError, match="'abc'"):
        TrainSpec(**TRAIN, sm_estimator_parameters="max_run=abc").build("j")
    with pytest.raises(JobSpecError, match="before '00'"):
        TrainSpec(**TRAIN, sm_estimator_parameters="max_run=36 00").build("j")


def test_a_rendered_tojson_dict_and_json_literals_are_accepted():
    rendered = '{"environment":{"GITHUB_CREDENTIALS":"ghp-x","LEVEL":null},"enable_network_isolation":false}'
    with pytest.raises(Exception, match="LEVEL must be a string"):  # null is None, which no variable takes
        TrainSpec(**TRAIN, sm_estimator_parameters=rendered).build("j")
    rendered = '{"environment":{"GITHUB_CREDENTIALS":"ghp-x"},"enable_network_isolation":false}'
    request = TrainSpec(**TRAIN, sm_estimator_parameters=rendered).build("j").request
    assert request["Environment"]["GITHUB_CREDENTIALS"] == "ghp-x"
    assert request["EnableNetworkIsolation"] is False
    text = 'encrypt_inter_container_traffic=true environment={"LEVEL":"2"}'
    request = TrainSpec(**TRAIN, sm_estimator_parameters=text).build("j").request
    assert request["EnableInterContainerTrafficEncryption"] is True
    assert request["Environment"]["LEVEL"] == "2"
    nested = {"environment": '{"DB_PASSWORD": "pw", "LEVEL": "3"}', "use_spot_instances": "false"}
    request = TrainSpec(**TRAIN, sm_estimator_parameters=nested).build("j").request
    assert request["Environment"]["LEVEL"] == "3"
    assert request["EnableManagedSpotTraining"] is False


@pytest.mark.parametrize(
    "template",
    [
        '{{"environment":{{"GITHUB_CREDENTIALS":"{secret}"}},"bad key":1}}',  # JSON, a bad parameter name
        "environment={{'GITHUB_CREDENTIALS':'{secret}'",  # no closing brace
        "environment={{'GITHUB_CREDENTIALS':'{secret}', 'DB_PASSWORD': 'a b'}}",  # a space in a value
        "{{\"environment\": \"{{'API_TOKEN': '{secret}', 'X': nil}}\"}}",  # a rendered string, unparseable
    ],
)
def test_the_masker_gets_secret_values_of_parameters_that_do_not_parse(template):
    from airflow.sdk._shared.secrets_masker import redact

    from graphstorm_provider.operators.connection import mask_environment_values

    secret = canary("unparsed")
    mask_environment_values(template.format(secret=secret))
    assert redact(f"x {secret} y") == "x *** y"


def test_a_numeric_secret_value_is_text_in_the_rendered_fields():
    """The masker masks text: a number under a secret-looking name is made text as the spec would."""
    import random

    from airflow.sdk import DAG
    from airflow.sdk.execution_time.task_runner import _serialize_rendered_fields

    train_number, compose_number = random.randint(10**11, 10**12), random.randint(10**11, 10**12)
    with DAG(f"gs_mask_number_{uuid.uuid4().hex[:8]}", schedule=None):
        train, compose = _train_and_compose(
            {"environment": {"GITHUB_CREDENTIALS": train_number, "LEVEL": 2}},
            {"environment": {"GITHUB_CREDENTIALS": compose_number}},
        )
    train.render_template_fields({})
    compose.render_template_fields({})
    assert train.sm_estimator_parameters["environment"] == {"GITHUB_CREDENTIALS": str(train_number), "LEVEL": 2}
    shown = json.dumps([_serialize_rendered_fields(train), _serialize_rendered_fields(compose)])
    assert str(train_number) not in shown, shown
    assert str(compose_number) not in shown, shown


# --------------------------------------------------------------------------- the step cache's digest
def test_the_request_digest_hashes_no_secret_value():
    from graphstorm_provider.jobs.digest import canonical_request, request_digest

    def request(password: str, level: str) -> dict:
        params = {"environment": {"DB_PASSWORD": password, "LEVEL": level}}
        return TrainSpec(**TRAIN, sm_estimator_parameters=params).build("j").request

    assert canonical_request(request("pw-1", "2"))["Environment"]["DB_PASSWORD"] == REDACTED
    assert request_digest(request("pw-1", "2")) == request_digest(request("pw-2", "2"))
    assert request_digest(request("pw-1", "2")) != request_digest(request("pw-1", "3"))
