"""Proof under a real Airflow 3 deployment (see tests/deployment.py for what runs and how).

One deployment (PostgreSQL 15, api-server, scheduler, triggerer, dag-processor) is shared by the
whole module; the local DAG runs once (small params, ~2 min) and several tests read that run.
Screenshots of the UI (headless Chromium) are kept under ``$GRAPHSTORM_TEST_ARTIFACTS`` (default
``<repo>/.test-artifacts/``); the folder is printed.

Adding a test for another example DAG: ask ``deployment`` for it (``wait_for_dags``, ``unpause``,
``trigger`` or ``airflow("backfill", "create", ...)``, ``wait_for_run``, ``task_instances``,
``wait_for_task_state(..., {"deferred"})``, ``xcom``, ``task_log``, ``sql``).

The components also get the AWS connection ``aws_default`` and fake credentials pointing at the
session's moto server through a :class:`RunningJobsProxy` (``module_running_jobs_proxy``), so the
SageMaker example runs here too: its jobs stay ``InProgress`` until the test releases the proxy.
Scheduled runs are off (``[scheduler] use_job_schedule``): unpausing the weekly DAG starts only
the runs a test creates (its backfill), not the latest week's run with default (large) params.

Order matters (pytest runs this file top to bottom, one run at a time, so "nothing else is
running" holds where a test says so): the local run and the tests reading it, clearing its
``train``, the unknown conf key, the SageMaker DAG deferring, the weekly backfill.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shlex
import shutil
import time
import urllib.parse
from pathlib import Path

import pytest

from tests.deployment import (
    REPO,
    SAGEMAKER_CHECK_INTERVAL_S,
    Deployment,
    DeploymentError,
    postgres_bindir,
    remove,
    start_deployment,
)

LOCAL_DAG = "graphstorm_local_e2e"
# Small enough for ~2 minutes on two shared cores; every other param keeps its default.
# Its own graph name: DistDGL names /dev/shm segments after the graph, and other runs may share the host.
SMALL_CONF = {
    "num_papers": 300,
    "num_epochs": 1,
    "hidden_size": 16,
    "fanout": 5,
    "graph_name": f"acm_deploy_{os.getpid()}",
}
RUN_TIMEOUT_S = 900
SHORT_RUN_TIMEOUT_S = 240  # a run that starts no GraphStorm process
SAGEMAKER_RUN_TIMEOUT_S = 480  # three jobs, each ~two trigger checks (SAGEMAKER_CHECK_INTERVAL_S) once let complete
SAGEMAKER_DAG = "graphstorm_sagemaker_e2e"
WEEKLY_DAG = "graphstorm_weekly_retrain"
SAGEMAKER_BUCKET = "gs-deployment-sagemaker"
SAGEMAKER_CONF = {
    "num_papers": 200,
    "num_epochs": 1,
    "region": "us-east-1",
    "base_uri": f"s3://{SAGEMAKER_BUCKET}/runs",
    "image_url": "123456789012.dkr.ecr.us-east-1.amazonaws.com/graphstorm:sagemaker-cpu",
    "role": "arn:aws:iam::123456789012:role/SageMakerExecutionRole",
}
# Once the SageMaker test lets jobs complete: at which describe each does (the operator's check, then
# the trigger's checks SAGEMAKER_CHECK_INTERVAL_S apart). Two trigger checks after the first leave the
# scheduler 20 s to handle the deferral before the trigger fires (see the test: Airflow 3.3's race).
DESCRIBES_PER_JOB = 4
BACKFILL_MAX_ACTIVE_RUNS = "1"  # both weeks use one graph name: DistDGL's /dev/shm names collide
ARTIFACTS = Path(os.environ.get("GRAPHSTORM_TEST_ARTIFACTS", REPO / ".test-artifacts"))
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
UI_WAIT_S = 60
# The README's command line that clears a GraphStorm step with its downstream tasks in one dated run.
README_CLEAR_COMMAND = re.compile(r"`(airflow tasks clear <dag> [^`]+)`")
AWS_WARNINGS = ("aws_default", "No AWS credentials", "Unable to find AWS Connection", "Unable to locate credentials")

pytestmark = pytest.mark.e2e


def _skip_reason() -> str | None:
    if not os.environ.get("GRAPHSTORM_RUNTIME_PYTHON"):
        return "GRAPHSTORM_RUNTIME_PYTHON is not set (scripts/run_tests.sh sets it)"
    try:
        postgres_bindir()
    except DeploymentError as err:
        return str(err)
    return None


def example_dag_files() -> list[Path]:
    return sorted(p for p in (REPO / "dags").glob("*.py") if not p.name.startswith("_"))


def example_dag_ids() -> set[str]:
    """``dag_id="..."`` / ``DAG_ID = "..."`` of every example file (what the DAG processor must show)."""
    ids: set[str] = set()
    for path in example_dag_files():
        text = path.read_text()
        ids |= set(re.findall(r"""^DAG_ID\s*=\s*["']([\w.-]+)["']""", text, re.M))
        ids |= set(re.findall(r"""\bdag_id\s*=\s*["']([\w.-]+)["']""", text))
    return ids


@pytest.fixture(scope="module")
def aws(request):
    """The module's moto server behind the running-jobs proxy (see tests/conftest.py)."""
    if _skip_reason():
        pytest.skip(_skip_reason())
    return request.getfixturevalue("module_running_jobs_proxy")


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, aws):
    root = tmp_path_factory.mktemp("deployment")
    tmp = root / "tmp"
    tmp.mkdir()
    # Every component (and so every task) gets a TMPDIR of its own: a test sees what a run leaves there.
    # The SageMaker DAG runs on moto, whose jobs write nothing: its train and infer steps would refuse
    # their (manifest-less) inputs before launching, so the components take inputs without manifests
    # (the manifest checks themselves: tests/test_step_cache_preflight.py, test_manifest_contract.py).
    env = {
        "TMPDIR": str(tmp),
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        "AIRFLOW__GRAPHSTORM__REQUIRE_INPUT_MANIFESTS": "False",
        **aws.environment,
    }
    dep = start_deployment(extra_env=env, root=root)
    try:
        print(f"\nAirflow deployment at {dep.api_url}, files in {dep.root}")
        yield dep
    finally:
        dep.stop()
        remove(dep)


@pytest.fixture(scope="module")
def local_run(deployment: Deployment) -> dict:
    """The local DAG triggered through the REST API (as the form does), unpaused, waited for."""
    assert LOCAL_DAG in deployment.wait_for_dags({LOCAL_DAG}), deployment.import_errors()
    deployment.unpause(LOCAL_DAG)
    status, run = deployment.trigger(LOCAL_DAG, SMALL_CONF)
    assert status == 200, run
    finished = deployment.wait_for_run(LOCAL_DAG, run["dag_run_id"], timeout=RUN_TIMEOUT_S)
    if finished["state"] != "success":
        pytest.fail(f"run {finished['state']}: {deployment.failure_summary(LOCAL_DAG, run['dag_run_id'])}")
    return finished


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,2200",
    ):
        options.add_argument(arg)
    options.binary_location = CHROMIUM
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    print(f"\nUI screenshots in {ARTIFACTS}")
    try:
        yield driver
    finally:
        driver.quit()


def _open(driver, deployment: Deployment, path: str):
    driver.get(deployment.login_url(path))


def _wait_for_text(driver, needles: list[str], timeout: float = UI_WAIT_S) -> str:
    """The page's visible text once every needle shows (or at the timeout)."""
    from selenium.webdriver.common.by import By

    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = driver.find_element(By.TAG_NAME, "body").text
        if all(n in text for n in needles):
            break
        time.sleep(1)
    return text


# ---- the deployment ------------------------------------------------------------------------------
def test_components_are_healthy_and_bound_to_loopback(deployment):
    health = deployment.wait_healthy(timeout=30)
    assert {c: health[c]["status"] for c in ("metadatabase", "scheduler", "triggerer", "dag_processor")} == {
        "metadatabase": "healthy",
        "scheduler": "healthy",
        "triggerer": "healthy",
        "dag_processor": "healthy",
    }
    # No log server (Airflow's binds every interface): scheduler and triggerer run --skip-serve-logs.
    for name in ("scheduler", "triggerer"):
        assert "--skip-serve-logs" in deployment.procs[name].args


def test_every_example_dag_parses_in_the_dag_processor(deployment):
    wanted = example_dag_ids()
    assert LOCAL_DAG in wanted
    present = deployment.wait_for_dags(wanted)
    assert deployment.import_errors() == []
    assert wanted <= present
    # Every component ran the preload line's warm-up, and its DAG is registered nowhere.
    assert deployment.dag_ids() == wanted
    for name in deployment.procs:
        assert "warm-up failed" not in (deployment.root / f"{name}.log").read_text(errors="replace"), name


# ---- the local DAG through the REST API --------------------------------------------------------
def test_bad_conf_is_refused_and_creates_no_run(deployment):
    deployment.wait_for_dags({LOCAL_DAG})
    before = {r["dag_run_id"] for r in deployment.dag_runs(LOCAL_DAG)}
    status, answer = deployment.trigger(LOCAL_DAG, {**SMALL_CONF, "num_layers": 99})
    assert status == 400, answer
    assert "num_layers" in str(answer)
    assert {r["dag_run_id"] for r in deployment.dag_runs(LOCAL_DAG)} == before


def test_trigger_without_logical_date_field_is_refused(deployment):
    """Airflow 3's REST trigger requires the ``logical_date`` key (null is fine): the README says so."""
    status, answer = deployment.api("POST", f"/api/v2/dags/{LOCAL_DAG}/dagRuns", {"conf": SMALL_CONF})
    assert status == 422, answer
    assert "logical_date" in str(answer)


def test_local_dag_run_writes_outputs_and_xcoms(deployment, local_run):
    run_id = local_run["dag_run_id"]
    assert local_run["conf"] == SMALL_CONF
    tis = deployment.task_instances(LOCAL_DAG, run_id)
    assert {t: ti["state"] for t, ti in tis.items()} == dict.fromkeys(
        ("prepare", "gconstruct", "train", "infer", "report"), "success"
    )
    prepared = deployment.xcom(LOCAL_DAG, run_id, "prepare")
    prefix = Path(prepared["run_prefix"].removeprefix("file://"))
    assert prefix.parent == deployment.runs  # GRAPHSTORM_E2E_BASE_URI reached the workers
    trained = deployment.xcom(LOCAL_DAG, run_id, "train")
    inferred = deployment.xcom(LOCAL_DAG, run_id, "infer")
    report = deployment.xcom(LOCAL_DAG, run_id, "report")
    assert trained["model_artifact_s3"].startswith(prepared["run_prefix"])
    assert report["model"] == trained["model_artifact_s3"]
    assert report["predictions"] == inferred["output_prediction_s3"]
    assert report["num_test"] > 0
    assert 0.0 <= report["test_accuracy"] <= 1.0
    assert (prefix / "summary.json").is_file()
    for uri in (trained["model_artifact_s3"], inferred["output_prediction_s3"], inferred["output_emb_s3"]):
        path = Path(uri.removeprefix("file://"))
        assert path.is_dir(), uri
        assert any(p.is_file() for p in path.rglob("*")), uri


def test_local_tasks_log_no_aws_warning_and_graphstorm_output_is_leveled(deployment, local_run):
    run_id = local_run["dag_run_id"]
    logs = {task_id: deployment.task_log(LOCAL_DAG, run_id, task_id) for task_id in ("gconstruct", "train", "infer")}
    for task_id, log in logs.items():
        assert "[algo-1]" in log, log[-2000:]
        for warning in AWS_WARNINGS:
            assert warning not in log, f"{task_id}: {warning!r} in its log"
        # Nothing at error in a task that succeeded: neither GraphStorm's output nor anything else.
        errors = [line for line in log.splitlines() if line.startswith("error")]
        assert errors == [], f"{task_id}: {errors[:10]}"
    # A local task looks no SageMaker job up for its links: Airflow's client would log each missing
    # XCom at ERROR, in the output of the task's supervisor (the scheduler's, with LocalExecutor).
    supervisors = (deployment.root / "scheduler.log").read_text(errors="replace").splitlines()
    assert [line for line in supervisors if "XCom not found" in line and run_id in line] == []
    # GraphStorm's own logging keeps its level: INFO lines at info, its Python warnings at warning.
    for task_id in ("gconstruct", "train"):
        lines = [line for line in logs[task_id].splitlines() if "[algo-1]" in line]
        levels = {line.split(" ", 1)[0] for line in lines}
        assert "info" in levels, levels
        assert all(line.startswith("info") for line in lines if "INFO:root:" in line)
        assert all(line.startswith("warning") for line in lines if re.search(r":\d+: \w*Warning: ", line))


def test_a_run_leaves_nothing_in_tmpdir(deployment, local_run):
    leftovers = sorted(
        p.name for p in (deployment.root / "tmp").iterdir() if p.name.startswith(("torchelastic_", "gs-local-"))
    )
    assert leftovers == []


# ---- the UI in headless Chromium ------------------------------------------------------------------
def test_trigger_form_shows_every_param_with_its_description(deployment, browser):
    from selenium.webdriver.common.by import By

    details = deployment.ok("GET", f"/api/v2/dags/{LOCAL_DAG}/details")
    params = details["params"]
    labels = [(spec.get("schema") or {}).get("title") or name for name, spec in params.items()]
    descriptions = [spec["description"] for spec in params.values() if spec.get("description")]
    _open(browser, deployment, f"/dags/{LOCAL_DAG}")
    _wait_for_text(browser, ["Trigger"])
    browser.find_element(By.CSS_SELECTOR, "button[aria-label='Trigger Dag']").click()
    text = _wait_for_text(browser, ["Run Parameters", *labels])
    shot = ARTIFACTS / "trigger-form.png"
    browser.save_screenshot(str(shot))
    print(f"trigger form: {shot}")
    missing = [label for label in labels if label not in text]
    assert not missing, f"fields not shown: {missing}"
    assert [d for d in descriptions if d not in text] == []
    assert "Logical Date" in text


def test_task_instance_page_shows_the_task(deployment, local_run, browser):
    run_id = local_run["dag_run_id"]
    path = f"/dags/{LOCAL_DAG}/runs/{urllib.parse.quote(run_id, safe='')}/tasks/train"
    _open(browser, deployment, path)
    text = _wait_for_text(browser, ["train", "Success"])
    shot = ARTIFACTS / "task-instance-train.png"
    browser.save_screenshot(str(shot))
    print(f"task instance page: {shot}")
    assert "train" in text, text[:2000]
    assert "Success" in text, text[:2000]


# ---- clearing only `train` in the finished local run ----------------------------------------------
def _tree(folder: Path) -> dict[str, tuple[int, str]]:
    """Every file under ``folder``: relative path -> (size, sha256)."""
    return {
        str(p.relative_to(folder)): (p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _path(uri: str) -> Path:
    return Path(uri.removeprefix("file://"))


def test_clearing_only_train_leaves_no_mismatched_outputs(deployment, local_run):
    """The API's and CLI's default clear (no downstream): train writes model/2; nothing else moves."""
    run_id = local_run["dag_run_id"]
    first_model = deployment.xcom(LOCAL_DAG, run_id, "train")["model_artifact_s3"]
    inferred = deployment.xcom(LOCAL_DAG, run_id, "infer")
    report = deployment.xcom(LOCAL_DAG, run_id, "report")
    prefix = _path(deployment.xcom(LOCAL_DAG, run_id, "prepare")["run_prefix"])
    model_files = _tree(_path(first_model))
    summary_text = (prefix / "summary.json").read_text()
    assert model_files
    assert report["model"] == first_model

    cleared = deployment.ok(
        "POST",
        f"/api/v2/dags/{LOCAL_DAG}/clearTaskInstances",
        {
            "dry_run": False,
            "dag_run_id": run_id,
            "task_ids": ["train"],
            "only_failed": False,
            "include_downstream": False,
            "include_upstream": False,
            "reset_dag_runs": True,
        },
    )
    assert [ti["task_id"] for ti in cleared["task_instances"]] == ["train"]
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        train = deployment.task_instances(LOCAL_DAG, run_id)["train"]
        if train["try_number"] >= 2 and train["state"] in ("success", "failed"):
            break
        time.sleep(2)
    finished = deployment.wait_for_run(LOCAL_DAG, run_id, timeout=120)
    tis = deployment.task_instances(LOCAL_DAG, run_id)
    assert finished["state"] == "success", deployment.failure_summary(LOCAL_DAG, run_id)
    assert {t: (ti["state"], ti["try_number"]) for t, ti in tis.items()} == {
        "prepare": ("success", 1),
        "gconstruct": ("success", 1),
        "train": ("success", 2),
        "infer": ("success", 1),
        "report": ("success", 1),
    }

    # The new attempt wrote a folder of its own; the first model is byte for byte what it was.
    second_model = deployment.xcom(LOCAL_DAG, run_id, "train")["model_artifact_s3"]
    assert second_model != first_model, second_model
    assert second_model.rstrip("/").endswith("/model/2"), second_model
    assert _tree(_path(second_model)), f"{second_model} is empty"
    assert _tree(_path(first_model)) == model_files
    # Downstream did not re-run and still describes exactly what it used: the predictions were made
    # from the first model (infer's rendered field), and summary.json and the report name that model.
    assert tis["infer"]["rendered_fields"]["model_artifact_s3"] == first_model
    assert deployment.xcom(LOCAL_DAG, run_id, "infer") == inferred
    assert deployment.xcom(LOCAL_DAG, run_id, "report") == report
    assert (prefix / "summary.json").read_text() == summary_text
    assert json.loads(summary_text)["model"] == first_model


# ---- an unknown conf key -----------------------------------------------------------------------------
def test_unknown_conf_key_fails_the_first_task_naming_it(deployment):
    """Airflow accepts a key no param declares; ``prepare`` refuses it at once; no GraphStorm step runs."""
    deployment.unpause(LOCAL_DAG)  # not left to local_run: alone, a run of the paused DAG stays queued
    status, run = deployment.trigger(LOCAL_DAG, {**SMALL_CONF, "num_epoch": 5})
    assert status == 200, run  # the REST API (and the form) cannot refuse it: the first task does
    finished = deployment.wait_for_run(LOCAL_DAG, run["dag_run_id"], timeout=SHORT_RUN_TIMEOUT_S)
    assert finished["state"] == "failed"
    tis = deployment.task_instances(LOCAL_DAG, run["dag_run_id"])
    assert (tis["prepare"]["state"], tis["prepare"]["try_number"]) == ("failed", 1)  # not retried
    assert {t: ti["state"] for t, ti in tis.items() if t != "prepare"} == dict.fromkeys(
        ("gconstruct", "train", "infer", "report"), "upstream_failed"
    )
    log = deployment.task_log(LOCAL_DAG, run["dag_run_id"], "prepare")
    assert "unknown key 'num_epoch' (did you mean 'num_epochs'?)" in log, log[-3000:]
    assert "Traceback" not in log


# ---- the SageMaker DAG, deferred in the triggerer --------------------------------------------------
def test_sagemaker_dag_waits_deferred_holding_no_worker_slot_then_succeeds(deployment, aws):
    """Its jobs stay InProgress (the proxy) until released: gconstruct waits in the triggerer."""
    aws.client("s3").create_bucket(Bucket=SAGEMAKER_BUCKET)
    assert SAGEMAKER_DAG in deployment.wait_for_dags({SAGEMAKER_DAG}), deployment.import_errors()
    deployment.unpause(SAGEMAKER_DAG)
    status, run = deployment.trigger(SAGEMAKER_DAG, SAGEMAKER_CONF, logical_date="2026-01-05T00:00:00Z")
    assert status == 200, run
    run_id = run["dag_run_id"]
    try:
        state = deployment.wait_for_task_state(
            SAGEMAKER_DAG,
            run_id,
            "gconstruct",
            {"deferred", "success", "failed", "upstream_failed"},
            timeout=SHORT_RUN_TIMEOUT_S,
        )
        assert state == "deferred", deployment.failure_summary(SAGEMAKER_DAG, run_id)
        # While it waits the triggerer keeps describing the job (the operator checked once itself).
        seen = aws.proxy.describes
        deadline = time.monotonic() + 3 * SAGEMAKER_CHECK_INTERVAL_S
        while aws.proxy.describes <= seen and time.monotonic() < deadline:
            time.sleep(1)
        assert aws.proxy.describes > seen, "the triggerer never polled the job"
        # The database: gconstruct deferred on a trigger a triggerer holds; nothing runs anywhere
        # (this module runs one thing at a time), and the pool has no running slot taken.
        [[ti_state, trigger_id, triggerer_id]] = deployment.sql(
            "SELECT ti.state, ti.trigger_id, t.triggerer_id FROM task_instance ti JOIN trigger t "
            f"ON t.id = ti.trigger_id WHERE ti.dag_id = '{SAGEMAKER_DAG}' AND ti.task_id = 'gconstruct'"
        )
        assert ti_state == "deferred"
        assert trigger_id
        assert triggerer_id
        assert deployment.sql("SELECT count(*) FROM task_instance WHERE state = 'running'") == [["0"]]
        pool = deployment.ok("GET", "/api/v2/pools/default_pool")
        assert (pool["running_slots"], pool["deferred_slots"]) == (0, 1), pool
        # From now on each job completes at its DESCRIBES_PER_JOB-th describe: the operator's own
        # check, the trigger's first check (InProgress), then the trigger's next checks
        # SAGEMAKER_CHECK_INTERVAL_S apart. So train and infer defer too, and gconstruct completes at
        # a later check of the trigger. (A job that has
        # completed before the trigger's first check makes the trigger fire within seconds of the
        # deferral, and the scheduler, still to process the executor's event for the deferring
        # process, then fails the resumed task: "finished with state success, but the task
        # instance's state attribute is running".)
        aws.proxy.release_after_describes = DESCRIBES_PER_JOB
    except BaseException:
        aws.proxy.release()  # whatever happened, the run must not wait forever
        raise
    finished = deployment.wait_for_run(SAGEMAKER_DAG, run_id, timeout=SAGEMAKER_RUN_TIMEOUT_S)
    assert finished["state"] == "success", deployment.failure_summary(SAGEMAKER_DAG, run_id)
    # The wait happened in the triggerer: its lines are in the task's log.
    log = deployment.task_log(SAGEMAKER_DAG, run_id, "gconstruct")
    assert "not done yet: InProgress" in log, log[-3000:]
    assert "Trigger fired event" in log, log[-3000:]
    # Resumed from the trigger's event (its next_method ran), in its first try: not retried.
    assert deployment.sql(
        "SELECT task_id, try_number, state, coalesce(next_method, '') FROM task_instance "
        f"WHERE dag_id = '{SAGEMAKER_DAG}' AND task_id IN ('gconstruct', 'train', 'infer') ORDER BY task_id"
    ) == [["gconstruct", "1", "success", ""], ["infer", "1", "success", ""], ["train", "1", "success", ""]]
    [created] = aws.received("SageMaker.CreateProcessingJob")
    summary = deployment.xcom(SAGEMAKER_DAG, run_id, "summary")
    assert summary["jobs"]["gconstruct"] == created["ProcessingJobName"]
    assert created["ProcessingJobName"].startswith("gs-sm-gconstruct-20260105-")
    assert summary["model"].rstrip("/") == f"{SAGEMAKER_CONF['base_uri']}/20260105/model/1"


def _a_finished_sagemaker_run(deployment, aws) -> None:
    """Run the SageMaker DAG to the end here, its jobs completing at once: for a deployment that has
    no run of it (the module's fixtures were set up again after the test above: seen in full-suite
    runs, where this deployment listed no SageMaker run; why is not understood yet)."""
    with contextlib.suppress(Exception):  # the bucket of an earlier deployment's moto server
        aws.client("s3").create_bucket(Bucket=SAGEMAKER_BUCKET)
    assert SAGEMAKER_DAG in deployment.wait_for_dags({SAGEMAKER_DAG}), deployment.import_errors()
    deployment.unpause(SAGEMAKER_DAG)
    aws.proxy.release_after_describes = DESCRIBES_PER_JOB
    status, run = deployment.trigger(SAGEMAKER_DAG, SAGEMAKER_CONF, logical_date="2026-01-05T00:00:00Z")
    assert status == 200, run
    finished = deployment.wait_for_run(SAGEMAKER_DAG, run["dag_run_id"], timeout=SAGEMAKER_RUN_TIMEOUT_S)
    assert finished["state"] == "success", deployment.failure_summary(SAGEMAKER_DAG, run["dag_run_id"])


def test_sagemaker_task_page_shows_the_jobs_extra_links(deployment, aws, browser):
    """The SageMaker run of the test above: its train task's page in the UI shows both extra
    links, and the REST API gives their URLs: the console page and the log streams of its job."""
    runs = deployment.dag_runs(SAGEMAKER_DAG)
    if not runs:
        print(f"no SageMaker run in the deployment at {deployment.root}: running one")
        _a_finished_sagemaker_run(deployment, aws)
        runs = deployment.dag_runs(SAGEMAKER_DAG)
    succeeded = [r for r in runs if r["state"] == "success"]
    assert len(succeeded) == 1, (
        [(r["dag_run_id"], r["state"], deployment.failure_summary(SAGEMAKER_DAG, r["dag_run_id"])) for r in runs],
        # What the database holds, when the REST API lists something else.
        deployment.sql(f"SELECT run_id, state FROM dag_run WHERE dag_id = '{SAGEMAKER_DAG}'"),
        deployment.sql(f"SELECT is_stale, is_paused, bundle_name FROM dag WHERE dag_id = '{SAGEMAKER_DAG}'"),
        deployment.root,
    )
    [run] = succeeded
    run_id = urllib.parse.quote(run["dag_run_id"], safe="")
    job_name = deployment.xcom(SAGEMAKER_DAG, run["dag_run_id"], "summary")["jobs"]["train"]
    links = deployment.ok("GET", f"/api/v2/dags/{SAGEMAKER_DAG}/dagRuns/{run_id}/taskInstances/train/links")[
        "extra_links"
    ]
    region = SAGEMAKER_CONF["region"]
    assert links == {
        "SageMaker job": f"https://console.aws.amazon.com/sagemaker/home?region={region}#/jobs/{job_name}",
        "SageMaker job logs": f"https://console.aws.amazon.com/cloudwatch/home?region={region}"
        f"#logsV2:log-groups/log-group/$252Faws$252Fsagemaker$252FTrainingJobs"
        f"$3FlogStreamNameFilter$3D{job_name}$252F",
    }
    # The task instance's "Details" tab lists its extra links as buttons.
    _open(browser, deployment, f"/dags/{SAGEMAKER_DAG}/runs/{run_id}/tasks/train/details")
    text = _wait_for_text(browser, ["SageMaker job logs", "Success"])
    shot = ARTIFACTS / "task-instance-sagemaker-train-links.png"
    browser.save_screenshot(str(shot))
    print(f"task instance page with the extra links: {shot}")
    assert "SageMaker job logs" in text, text[:2000]
    assert "SageMaker job" in text.replace("SageMaker job logs", ""), text[:2000]
    from selenium.webdriver.common.by import By

    hrefs = {a.text: a.get_attribute("href") for a in browser.find_elements(By.TAG_NAME, "a")}
    assert hrefs.get("SageMaker job") == links["SageMaker job"], hrefs
    assert hrefs.get("SageMaker job logs") == links["SageMaker job logs"], hrefs


# ---- `airflow backfill create` over two weeks of the weekly DAG ------------------------------------
def test_backfill_of_two_weeks_writes_two_date_prefixes_and_distinct_jobs(deployment):
    base = deployment.root / "weekly"
    conf = {**SMALL_CONF, "graph_name": f"acm_weekly_{os.getpid()}", "base_uri": f"file://{base}"}
    assert WEEKLY_DAG in deployment.wait_for_dags({WEEKLY_DAG}), deployment.import_errors()
    deployment.unpause(WEEKLY_DAG)  # no scheduled run: use_job_schedule is off in this deployment
    deployment.airflow(
        "backfill",
        "create",
        "--dag-id",
        WEEKLY_DAG,
        "--from-date",
        "2026-01-04",
        "--to-date",
        "2026-01-11",
        "--dag-run-conf",
        json.dumps(conf),
        "--max-active-runs",
        BACKFILL_MAX_ACTIVE_RUNS,
        timeout=120,
    )
    runs = sorted(deployment.dag_runs(WEEKLY_DAG), key=lambda r: r["logical_date"])
    assert [(r["run_type"], r["logical_date"][:10]) for r in runs] == [
        ("backfill", "2026-01-04"),
        ("backfill", "2026-01-11"),
    ]
    deadline = time.monotonic() + 2 * RUN_TIMEOUT_S
    for run in runs:
        finished = deployment.wait_for_run(WEEKLY_DAG, run["dag_run_id"], timeout=max(1, deadline - time.monotonic()))
        assert finished["state"] == "success", deployment.failure_summary(WEEKLY_DAG, run["dag_run_id"])
    jobs = []
    for run, day in zip(runs, ("20260104", "20260111")):
        prefix = f"file://{base}/{day}"
        report = deployment.xcom(WEEKLY_DAG, run["dag_run_id"], "report")
        assert report["run_prefix"] == prefix
        assert report["model"].startswith(f"{prefix}/model/")
        assert (base / day / "summary.json").is_file()
        assert (base / "input" / day).is_dir()
        for task_id in ("gconstruct", "train", "infer"):
            name = deployment.xcom(WEEKLY_DAG, run["dag_run_id"], task_id)["job_name"]
            assert name.startswith(f"gs-weekly-{task_id}-{day}-"), name
            jobs.append(name)
    assert len(set(jobs)) == len(jobs) == 6, jobs
    assert sorted(p.name for p in base.iterdir()) == ["20260104", "20260111", "input"]


# ---- the README's `airflow tasks clear` line, on a backfilled week -----------------------------------
def test_readme_clear_command_selects_train_and_its_downstream_in_one_dated_run(deployment):
    """The README's CLI clear, for one week of the backfill above, answered "n" at Airflow's prompt.

    It must list exactly ``train`` and the tasks downstream of it in that week's run, and clear nothing.
    """
    found = README_CLEAR_COMMAND.findall((REPO / "README.md").read_text())
    assert len(found) == 1, found
    argv = shlex.split(found[0].replace("<dag>", WEEKLY_DAG).replace("<date>", "2026-01-11"))
    runs = {r["logical_date"][:10]: r["dag_run_id"] for r in deployment.dag_runs(WEEKLY_DAG)}
    assert "2026-01-11" in runs, runs
    run_id = runs["2026-01-11"]

    result = deployment.airflow(*argv[1:], answer="n\n", timeout=120)

    listed = re.findall(r"<TaskInstance: ([\w.-]+)\.([\w.-]+) (\S+) \[", result.stdout)
    assert sorted(listed) == [(WEEKLY_DAG, task, run_id) for task in ("infer", "report", "train")], (
        f"{argv}: {result.stdout[-2000:]}"
    )
    assert "Cancelled, nothing was cleared." in result.stdout
    states = {task: ti["state"] for task, ti in deployment.task_instances(WEEKLY_DAG, run_id).items()}
    assert set(states.values()) == {"success"}, states
