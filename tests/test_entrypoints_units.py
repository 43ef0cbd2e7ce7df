"""Unit tests of the entry points' shared package (entrypoints/gsentry): pure functions and
file:// / s3:// transfers against the moto server. The real GraphStorm runs are in
test_entrypoints_e2e.py, the multi-host rendezvous in test_entrypoints_cluster.py."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ENTRYPOINTS = Path(__file__).resolve().parents[1] / "entrypoints"
sys.path.insert(0, str(ENTRYPOINTS))

from gsentry import cli  # noqa: E402
from gsentry.cluster import ClusterLayout, ClusterSettings  # noqa: E402
from gsentry.contract import read_container_env  # noqa: E402
from gsentry.errors import GraphStormError, InputError  # noqa: E402
from gsentry.graphdata import choose_part_config, download_graph, raw_mapping_target, wanted_for_host  # noqa: E402
from gsentry.job import has_flag, set_flag  # noqa: E402
from gsentry.launcher import (  # noqa: E402
    HASH_SEED_ENV,
    build_host_plan,
    job_hash_seed,
    remap_command,
    split_launch_args,
    task_script,
)
from gsentry.manifest import write_manifest_file  # noqa: E402
from gsentry.model import choose_checkpoint, latest_checkpoint  # noqa: E402
from gsentry.process import error_summary, run  # noqa: E402
from gsentry.transfer import Transfer, parse_uri  # noqa: E402


# --- contract -----------------------------------------------------------------------------
def test_contract_reads_sm_training_env_and_channels(tmp_path):
    env = {
        "GRAPHSTORM_OPT_ML": str(tmp_path),
        "SM_TRAINING_ENV": json.dumps(
            {"hosts": ["algo-2", "algo-10", "algo-1"], "current_host": "algo-2", "job_name": "j1"}
        ),
        "SM_CHANNEL_TRAIN": "/data/train",
        "SM_NUM_GPUS": "2",
        "MASTER_ADDR": "algo-1",
        "AWS_REGION": "eu-west-1",
    }
    c = read_container_env(env)
    assert c.hosts == ("algo-1", "algo-2", "algo-10")
    assert (c.current_host, c.host_rank, c.num_hosts, c.is_leader) == ("algo-2", 1, 3, False)
    assert c.leader == "algo-1"
    assert c.num_gpus == 2
    assert c.region == "eu-west-1"
    assert c.job_name == "j1"
    assert c.channels == {"train": Path("/data/train")}
    assert c.model_dir == tmp_path / "model"
    # SageMaker's SM_MODEL_DIR names a container path: under an emulated root it moves along.
    assert read_container_env({**env, "SM_MODEL_DIR": "/opt/ml/model"}).model_dir == tmp_path / "model"
    assert read_container_env({**env, "SM_MODEL_DIR": "/data/m"}).model_dir == Path("/data/m")
    assert c.processing_input == tmp_path / "processing" / "input"


def test_contract_falls_back_to_resourceconfig_then_one_host(tmp_path):
    assert read_container_env({"GRAPHSTORM_OPT_ML": str(tmp_path)}).hosts == ("algo-1",)
    cfg = tmp_path / "input" / "config"
    cfg.mkdir(parents=True)
    (cfg / "resourceconfig.json").write_text(json.dumps({"hosts": ["algo-1", "algo-2"], "current_host": "algo-2"}))
    c = read_container_env({"GRAPHSTORM_OPT_ML": str(tmp_path)})
    assert (c.hosts, c.current_host, c.region) == (("algo-1", "algo-2"), "algo-2", "us-west-2")


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ('{"hosts": [], "current_host": "algo-1"}', "hosts"),
        ('{"hosts": ["algo-1"], "current_host": "algo-3"}', "current_host"),
        ("not json", "SM_TRAINING_ENV"),
    ],
)
def test_contract_rejects_bad_cluster_info(raw, needle):
    with pytest.raises(InputError, match=needle):
        read_container_env({"SM_TRAINING_ENV": raw})


# --- our flags vs GraphStorm's --------------------------------------------------------------
def test_split_forwarded_keeps_graphstorm_flags_verbatim():
    ours, gs = cli.split_forwarded(["--graph-name", "g", "--", "--fanout", "5,5", "--", "--x"])
    assert ours == ["--graph-name", "g"]
    assert gs == ["--fanout", "5,5", "--", "--x"]


def test_unknown_flag_of_ours_is_one_sentence():
    parser = cli.new_parser("train_entry.py")
    parser.add_argument("--graph-name", required=True)
    with pytest.raises(InputError, match="--bogus"):
        cli.parse(parser, ["--graph-name", "g", "--bogus", "1"])


def test_set_flag_replaces_every_occurrence():
    args = ["--cf", "a.yaml", "--save-model-path=/x", "--lr", "0.1", "--save-model-path", "/y"]
    assert set_flag(args, "--save-model-path", "/z") == ["--cf", "a.yaml", "--lr", "0.1", "--save-model-path", "/z"]
    assert set_flag(["--inference", "--cf", "a"], "--inference", None) == ["--cf", "a"]
    assert has_flag(["--use-mini-batch-infer=false"], "--use-mini-batch-infer")


# --- launcher ---------------------------------------------------------------------------------
def test_split_launch_args_takes_graphstorm_launcher_flags_out():
    options, rest = split_launch_args(
        [
            "--num-trainers",
            "2",
            "--fanout",
            "5,5",
            "--extra-envs",
            "A=1",
            "B=x=y",
            "--ssh-port",
            "22",
            "--num-epochs",
            "1",
        ],
        num_gpus=0,
        cpu_count=8,
    )
    assert rest == ["--fanout", "5,5", "--num-epochs", "1"]
    assert (options.num_trainers, options.num_servers, options.num_samplers) == (2, 1, 0)
    assert options.extra_envs == ("A=1", "B=x=y")
    assert (options.num_omp_threads, options.num_server_threads) == (2, 2)  # 8 // 2 // 2, 8 // 4 // 1


@pytest.mark.parametrize(
    "bad", [["--num-trainers", "abc"], ["--output-chunk-size", "1e5"], ["--num-servers"], ["--do-nid-remap", "maybe"]]
)
def test_a_bad_launcher_flag_is_an_input_error_naming_it_not_an_exit(bad):
    """argparse exited (SystemExit 2) with its usage line, which run_main does not catch: no failure
    file, so SageMaker showed no FailureReason."""
    with pytest.raises(InputError, match=bad[0]):
        split_launch_args(bad, num_gpus=0, cpu_count=8)


def test_split_launch_args_defaults_trainers_to_gpus_and_validates():
    assert split_launch_args([], num_gpus=4)[0].num_trainers == 4
    assert split_launch_args([], num_gpus=0)[0].num_trainers == 1
    with pytest.raises(InputError, match="--num-trainers"):
        split_launch_args(["--num-trainers", "0"])
    with pytest.raises(InputError, match="--extra-envs"):
        split_launch_args(["--extra-envs", "NOVALUE"])


def test_task_script_matches_graphstorm_run_modules(tmp_path):
    run_dir = tmp_path / "run"
    assert task_script("node_classification", False, run_dir=run_dir) == run_dir / "gsgnn_np/gsgnn_np.py"
    assert task_script("node_regression", True, run_dir=run_dir) == run_dir / "gsgnn_np/np_infer_gnn.py"
    assert (
        task_script("link_prediction", True, lm_encoder_only=True, run_dir=run_dir)
        == run_dir / "gsgnn_lp/lp_infer_lm.py"
    )
    assert task_script("compute_emb", True, run_dir=run_dir) == run_dir / "gsgnn_emb/gsgnn_node_emb.py"
    assert task_script("node_classification", False, custom_script="/opt/ml/code/my.py") == Path("/opt/ml/code/my.py")
    with pytest.raises(InputError, match="inference-only"):
        task_script("compute_emb", False, run_dir=run_dir)
    with pytest.raises(InputError, match="--task-type"):
        task_script("graph_classification", False, run_dir=run_dir)


def test_host_plan_for_second_of_two_hosts_mirrors_graphstorm_submit_jobs():
    layout = ClusterLayout(("algo-1", "algo-2"), ("10.0.0.1", "10.0.0.2"), (40001, 40002), 45000)
    options, rest = split_launch_args(["--num-trainers", "2", "--num-servers", "2", "--lr", "0.1"], cpu_count=8)
    plan = build_host_plan(
        layout=layout,
        host_rank=1,
        script=Path("/gs/run/gsgnn_np/gsgnn_np.py"),
        script_args=["--cf", "/w/a.yaml", *rest],
        part_config=Path("/w/graph/g.json"),
        ip_config=Path("/w/ip_config.txt"),
        options=options,
        python="/py",
    )
    assert layout.ip_config_text() == "10.0.0.1 40001\n10.0.0.2 40002\n"
    udf = [
        "/gs/run/gsgnn_np/gsgnn_np.py",
        "--cf",
        "/w/a.yaml",
        "--lr",
        "0.1",
        "--ip-config",
        "/w/ip_config.txt",
        "--part-config",
        "/w/graph/g.json",
    ]
    # Global server IDs of host 1 with 2 servers per host are 2 and 3.
    assert [s.env["DGL_SERVER_ID"] for s in plan.servers] == ["2", "3"]
    for server in plan.servers:
        assert server.argv == ["/py", "-u", *udf]
        assert server.env["DGL_ROLE"] == "server"
        assert server.env["DGL_NUM_CLIENT"] == "4"  # 2 trainers x (1 + 0 samplers) x 2 hosts
        assert server.env["DGL_NUM_SERVER"] == "2"
        assert server.env["DGL_IP_CONFIG"] == "/w/ip_config.txt"
    trainer = plan.trainer
    assert trainer.argv == [
        "/py",
        "-u",
        "-m",
        "torch.distributed.launch",
        "--nproc_per_node=2",
        "--nnodes=2",
        "--node_rank=1",
        "--master_addr=10.0.0.1",
        "--master_port=45000",
        *udf,
    ]
    assert trainer.env["DGL_ROLE"] == "client"
    assert trainer.env["DGL_DIST_MODE"] == "distributed"
    assert trainer.env["DGL_CONF_PATH"] == "/w/graph/g.json"


def test_remap_command_is_graphstorms_per_host_remap_without_shared_fs():
    options, _ = split_launch_args(["--output-chunk-size", "50"])
    cmd = remap_command(
        python="/py",
        script_args=["--cf", "a.yaml"],
        part_config=Path("/g.json"),
        ip_config=Path("/ip"),
        host_rank=1,
        num_hosts=2,
        options=options,
    )
    argv = cmd.argv
    assert argv[:3] == ["/py", "-m", "graphstorm.gconstruct.remap_result"]
    for flag, value in (
        ("--rank", "1"),
        ("--world-size", "2"),
        ("--with-shared-fs", "False"),
        ("--output-chunk-size", "50"),
        ("--part-config", "/g.json"),
    ):
        assert argv[argv.index(flag) + 1] == value


# The iteration order GraphStorm 0.5 creates its remap DistTensors in (ep_infer.py:
# ``target_ntypes = set(); add(src); add(dst); NodeIDShuffler(g, ..., list(target_ntypes))``).
_SET_ORDER = "import sys; s = set()\nfor t in sys.argv[1:]: s.add(t)\nprint(','.join(s))"
NTYPES = ["user", "movie", "genre", "actor", "studio", "tag"]


def _set_order(env: dict[str, str]) -> str:
    clean = {k: v for k, v in os.environ.items() if k != HASH_SEED_ENV}
    proc = subprocess.run(
        [sys.executable, "-c", _SET_ORDER, *NTYPES],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return proc.stdout.strip()


def test_every_graphstorm_process_on_every_host_iterates_node_type_sets_in_one_order():
    """Issue 9's flaky 2-host inference: each host's trainer created GraphStorm's
    ``mapping-<ntype>`` DistTensors in its own set order, so each host initialised a different
    tensor on its server and rank 0's push failed on the other host's server. Every process of
    the plan (servers, trainers, remap) on every host must hash strings alike."""
    layout = ClusterLayout(("algo-1", "algo-2"), ("10.0.0.1", "10.0.0.2"), (40001, 40002), 45000)
    options, rest = split_launch_args(["--num-trainers", "2", "--extra-envs", "PYTHONHASHSEED=random", "X=1"])
    envs = []
    for rank in (0, 1):
        plan = build_host_plan(
            layout=layout,
            host_rank=rank,
            script=Path("/gs/run/gsgnn_ep/ep_infer_gnn.py"),
            script_args=rest,
            part_config=Path("/g.json"),
            ip_config=Path("/ip"),
            options=options,
            python="/py",
        )
        remap = remap_command(
            python="/py",
            script_args=rest,
            part_config=Path("/g.json"),
            ip_config=Path("/ip"),
            host_rank=rank,
            num_hosts=2,
            options=options,
        )
        envs += [plan.trainer.env, *(s.env for s in plan.servers), remap.env]
    assert {env[HASH_SEED_ENV] for env in envs} == {"0"}  # "random" from --extra-envs does not win
    assert all(env["X"] == "1" for env in envs)
    orders = {_set_order({HASH_SEED_ENV: env[HASH_SEED_ENV]}) for env in envs}
    assert len(orders) == 1, orders
    # Without a common seed the hazard is real: separate interpreters disagree on the order.
    unpinned = {_set_order({}) for _ in range(12)}
    assert len(unpinned) > 1, "12 interpreters with random string hashing all iterated one order"


def test_job_hash_seed_keeps_a_fixed_job_seed_and_replaces_random_or_invalid():
    assert job_hash_seed({}) == "0"
    assert job_hash_seed({HASH_SEED_ENV: "123"}) == "123"
    assert job_hash_seed({HASH_SEED_ENV: " 007 "}) == "7"
    for bad in ("random", "-1", "4294967296", "1.5", ""):
        assert job_hash_seed({HASH_SEED_ENV: bad}) == "0", bad


# --- graph data ---------------------------------------------------------------------------
def test_each_host_wants_only_its_partition_and_shared_metadata():
    files = [
        "g.json",
        "node_mapping.pt",
        "part0/graph.dgl",
        "part1/graph.dgl",
        "part1/orig_nids.dgl",
        "raw_id_mappings/paper/part-00000.parquet",
        "other/x",
    ]
    assert [f for f in files if wanted_for_host(f, 1, False)] == [
        "g.json",
        "node_mapping.pt",
        "part1/graph.dgl",
        "part1/orig_nids.dgl",
        "raw_id_mappings/paper/part-00000.parquet",
    ]
    assert [f for f in files if wanted_for_host(f, 0, True)] == [
        "g.json",
        "node_mapping.pt",
        "part0/graph.dgl",
        "part1/orig_nids.dgl",
        "raw_id_mappings/paper/part-00000.parquet",
    ]
    assert choose_part_config(["metadata.json", "g.json"], "g") == "g.json"
    assert choose_part_config(["metadata.json"], "g") == "metadata.json"
    assert raw_mapping_target("paper/parquet/part-1.parquet") == "paper/part-1.parquet"
    assert raw_mapping_target("paper/_SUCCESS") is None


def _fake_graph(root: Path, num_parts: int) -> None:
    (root / "raw_id_mappings" / "paper").mkdir(parents=True)
    (root / "raw_id_mappings" / "paper" / "part-00000.parquet").write_bytes(b"p")
    (root / "g.json").write_text(json.dumps({"num_parts": num_parts}))
    (root / "node_mapping.pt").write_bytes(b"m")
    for k in range(num_parts):
        (root / f"part{k}").mkdir()
        (root / f"part{k}" / "graph.dgl").write_bytes(f"graph{k}".encode())
    write_manifest_file(root, job_name="gconstruct-job", step="gconstruct")


def test_download_graph_file_uri_takes_this_hosts_part(tmp_path):
    _fake_graph(tmp_path / "src", 2)
    graph = download_graph(Transfer(), f"file://{tmp_path / 'src'}", "g", 1, 2, tmp_path / "dst")
    got = sorted(p.relative_to(tmp_path / "dst").as_posix() for p in (tmp_path / "dst").rglob("*") if p.is_file())
    assert got == ["g.json", "node_mapping.pt", "part1/graph.dgl", "raw_id_mappings/paper/part-00000.parquet"]
    assert graph.part_config == tmp_path / "dst" / "g.json"
    assert graph.num_parts == 2


def test_download_graph_rejects_partition_count_mismatch_and_missing_config(tmp_path):
    _fake_graph(tmp_path / "src", 2)
    with pytest.raises(InputError, match="2 partition.*1 host"):
        download_graph(Transfer(), f"file://{tmp_path / 'src'}", "g", 0, 1, tmp_path / "d1")
    with pytest.raises(InputError, match="--graph-name"):
        download_graph(Transfer(), f"file://{tmp_path / 'src'}", "other", 0, 2, tmp_path / "d2")


def test_move_tree_renames_files_into_a_file_output_on_the_same_filesystem(tmp_path):
    staged = tmp_path / "work" / "part0"
    (staged / "sub").mkdir(parents=True)
    (staged / "graph.dgl").write_bytes(b"graph")
    (staged / "sub" / "x").write_bytes(b"x")
    inode = (staged / "graph.dgl").stat().st_ino
    out = tmp_path / "out"
    (out / "part0").mkdir(parents=True)
    (out / "part0" / "graph.dgl").write_bytes(b"an earlier run's")
    moved = Transfer().move_tree(staged, parse_uri(f"file://{out}").child("part0"))
    assert sorted(loc.uri() for loc in moved) == [f"file://{out}/part0/graph.dgl", f"file://{out}/part0/sub/x"]
    assert (out / "part0" / "graph.dgl").read_bytes() == b"graph"
    assert (out / "part0" / "graph.dgl").stat().st_ino == inode  # renamed, not copied
    assert (out / "part0" / "sub" / "x").read_bytes() == b"x"
    assert not any(p.is_file() for p in staged.rglob("*"))


def test_move_tree_copies_a_file_it_cannot_rename_across_mounts(tmp_path, monkeypatch):
    """Two bind mounts of one filesystem share st_dev, yet rename(2) between them fails with EXDEV."""
    import errno
    import os

    staged = tmp_path / "work" / "part0"
    staged.mkdir(parents=True)
    (staged / "graph.dgl").write_bytes(b"graph")
    out = tmp_path / "out"

    def cross_mount(src, dst):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "replace", cross_mount)
    moved = Transfer().move_tree(staged, parse_uri(f"file://{out}").child("part0"))
    assert [loc.uri() for loc in moved] == [f"file://{out}/part0/graph.dgl"]
    assert (out / "part0" / "graph.dgl").read_bytes() == b"graph"


def test_assignment_text_is_the_joined_decimal_ids():
    import numpy as np

    from gsentry.partition.assignment import assignment_text

    rng = np.random.default_rng(0)
    for num_parts, dtype in ((1, np.uint8), (2, np.uint8), (10, np.uint8), (255, np.uint8), (1000, np.uint16)):
        for n in (0, 1, 7, 1000):
            parts = rng.integers(0, num_parts, n).astype(dtype)
            text = "\n".join(map(str, parts.tolist()))
            assert assignment_text(parts) == (text + "\n" if text else "").encode()


def test_transfer_round_trip_through_moto_s3(aws_env, tmp_path):
    bucket = aws_env.bucket("gsentry-units")
    _fake_graph(tmp_path / "src", 2)
    t = Transfer(region=aws_env.region, workers=4)
    uploaded = t.upload_tree(tmp_path / "src", parse_uri(f"{bucket}/graphs/g/"))
    assert len(uploaded) == 6
    # A sibling prefix that merely starts with the same characters must not leak in.
    aws_env.client("s3").put_object(Bucket="gsentry-units", Key="graphs/g2/x", Body=b"x")
    assert t.list_files(parse_uri(f"{bucket}/graphs/g")) == [
        "_manifest.json",
        "g.json",
        "node_mapping.pt",
        "part0/graph.dgl",
        "part1/graph.dgl",
        "raw_id_mappings/paper/part-00000.parquet",
    ]
    graph = download_graph(t, f"{bucket}/graphs/g", "g", 0, 2, tmp_path / "dst")
    assert (tmp_path / "dst" / "part0" / "graph.dgl").read_bytes() == b"graph0"
    assert not (tmp_path / "dst" / "part1").exists()
    assert graph.num_parts == 2
    assert t.exists(parse_uri(f"{bucket}/graphs/g/g.json"))
    assert not t.exists(parse_uri(f"{bucket}/graphs/g/nope.json"))


@pytest.mark.parametrize("uri", ["http://x/y", "s3:///key", "file://relative/path", "/abs/path"])
def test_parse_uri_rejects_what_is_not_s3_or_absolute_file(uri):
    with pytest.raises(InputError, match="--graph-data-s3"):
        parse_uri(uri, "--graph-data-s3")


# --- model layout ----------------------------------------------------------------------------
def test_restore_picks_latest_checkpoint_or_the_prefix_itself():
    files = {
        "epoch-0/model.bin": 9,
        "epoch-1/model.bin": 9,
        "epoch-1/author/sparse_emb_00000.pt": 9,
        "epoch-1-iter-5/model.bin": 9,
        "epoch-10/model.bin": 9,
        "cfg.yaml": 1,
        "data_transform_new.json": 1,
    }
    choice = choose_checkpoint(files)
    assert choice.checkpoint == "epoch-10"
    assert choice.files == ["epoch-10/model.bin", "cfg.yaml", "data_transform_new.json"]
    prefix_is_checkpoint = choose_checkpoint({"model.bin": 9, "author/sparse_emb_00000.pt": 9})
    assert (prefix_is_checkpoint.checkpoint, prefix_is_checkpoint.files) == (
        "",
        ["author/sparse_emb_00000.pt", "model.bin"],
    )
    assert choose_checkpoint({}) is None
    assert latest_checkpoint(["epoch-1-iter-5", "epoch-1", "epoch-1-iter-20"]) == "epoch-1-iter-20"


# --- errors ---------------------------------------------------------------------------------
def test_error_summary_prefers_the_real_exception_over_torch_launcher_noise():
    tail = [
        "INFO training",
        "Traceback (most recent call last):",
        '  File "x.py", line 1',
        "AssertionError: label_field paper:label does not exist",
        "...",
        "torch.distributed.elastic.multiprocessing.errors.ChildFailedError: ",
        "gsgnn_np.py FAILED",
    ]
    summary = error_summary(tail)
    assert summary[0] == "AssertionError: label_field paper:label does not exist"
    assert summary[1:] == tail[1:4]  # the traceback that led to it, not the launcher's
    assert error_summary(["a", "last words", ""])[0] == "last words"


def test_run_raises_with_the_childs_error(tmp_path):
    code = "import sys; print('working'); sys.stderr.write('ValueError: bad input\\n'); sys.exit(3)"
    with pytest.raises(GraphStormError) as info:
        run("child", [sys.executable, "-c", code])
    assert info.value.returncode == 3
    assert str(info.value).startswith("child failed (exit code 3): ValueError: bad input")


def test_cluster_settings_from_env():
    s = ClusterSettings.from_env(
        {"GSENTRY_RDZV_PORT": "1234", "GSENTRY_RDZV_TIMEOUT": "5", "GSENTRY_HOST_ADDRESSES": '{"algo-1": "127.0.0.1"}'}
    )
    assert (s.port, s.arrival_timeout, s.addresses) == (1234, 5.0, {"algo-1": "127.0.0.1"})


# --- private /dev/shm ---------------------------------------------------------------------------
def test_private_shm_is_wanted_for_emulated_containers_only():
    from gsentry.isolation import wanted

    assert wanted({"GRAPHSTORM_OPT_ML": "/tmp/work/opt/ml"})
    assert not wanted({"GRAPHSTORM_OPT_ML": "/opt/ml/"})
    assert not wanted({})  # a real container has its own /dev/shm
    assert not wanted({"GRAPHSTORM_OPT_ML": "/tmp/x", "GSENTRY_PRIVATE_SHM": "0"})
    assert wanted({"GSENTRY_PRIVATE_SHM": "1"})
    assert not wanted({"GSENTRY_PRIVATE_SHM": "1", "GSENTRY_SHM_ISOLATED": "1"})


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root and unshare")
def test_wrapped_command_sees_its_own_empty_dev_shm(tmp_path):
    import subprocess

    from gsentry.isolation import wrapped_argv

    marker = Path("/dev/shm") / f"gsentry-test-{os.getpid()}"
    marker.write_bytes(b"x")
    try:
        code = "import os; open('/dev/shm/inside', 'w').write('y'); print(sorted(os.listdir('/dev/shm')))"
        out = subprocess.run(wrapped_argv([sys.executable, "-c", code]), capture_output=True, text=True, check=True)
        assert out.stdout.strip() == "['inside']"
        assert marker.exists()
        assert not Path("/dev/shm/inside").exists()
    finally:
        marker.unlink()


def test_sigterm_stops_the_running_child_and_its_whole_session(tmp_path):
    """A stopped job leaves no GraphStorm process behind (children run in their own session)."""
    import contextlib
    import signal
    import subprocess
    import time

    from tests.process_trees import live_processes_with

    pidfile = tmp_path / "grandchild.pid"
    driver = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "from gsentry import cli\n"
        "from gsentry.process import install_stop_handler, run\n"
        "def main(argv):\n"
        "    install_stop_handler()\n"
        '    code = \'import os, subprocess, sys, time; p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", sys.argv[1]]); \'\\\n'
        '           \'open(sys.argv[1], "w").write(str(p.pid)); print("started", flush=True); time.sleep(300)\'\n'
        "    run('child', [sys.executable, '-c', code, sys.argv[2]])\n"
        "sys.exit(cli.run_main(main, []))\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", driver, str(ENTRYPOINTS), str(pidfile)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in proc.stdout:
        if "started" in line:
            break
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "stopped by signal SIGTERM" in err
    grandchild = int(pidfile.read_text())
    # The child's processes carry the pid file's path in their command line: a pid reused since is not taken for them.
    marker = str(pidfile)
    deadline = time.monotonic() + 30  # the kernel ends it asynchronously, slowly on a loaded machine
    while live_processes_with(marker) and time.monotonic() < deadline:  # a zombie counts as gone
        time.sleep(0.1)
    survivors = live_processes_with(marker)
    for pid in survivors:
        with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
            os.kill(pid, signal.SIGKILL)
    assert not survivors, f"the child's processes survived the stop: {survivors} (grandchild {grandchild})"


# --- the scripts' own checks (before any download) ------------------------------------------------
def _load_script(name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ENTRYPOINTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ([], "--output-emb-s3 and/or --output-prediction-s3"),
        (
            ["--task-type", "link_prediction", "--output-prediction-s3", "file:///p"],
            "--output-prediction-s3 is not available",
        ),
        (["--task-type", "compute_emb", "--output-prediction-s3", "file:///p"], "not available"),
        (["--output-emb-s3", "ftp://x"], "--output-emb-s3 must be an s3:// or file:// URI"),
    ],
)
def test_infer_entry_rejects_requests_that_would_produce_nothing_or_cannot_work(extra, needle):
    infer = _load_script("infer_entry")
    base = [
        "--graph-data-s3",
        "file:///g",
        "--infer-yaml-s3",
        "file:///y.yaml",
        "--model-artifact-s3",
        "file:///m",
        "--graph-name",
        "g",
        "--task-type",
        "node_classification",
    ]
    args, _ = cli.parse(infer.build_parser(), [*base, *extra])
    with pytest.raises(InputError, match=needle):
        infer.validate(args)


def test_train_entry_refuses_inference_only_task_types():
    train = _load_script("train_entry")
    with pytest.raises(InputError, match="--task-type"):
        cli.parse(
            train.build_parser(),
            [
                "--graph-data-s3",
                "file:///g",
                "--train-yaml-s3",
                "file:///y",
                "--model-artifact-s3",
                "file:///m",
                "--graph-name",
                "g",
                "--task-type",
                "compute_emb",
            ],
        )


def test_gconstruct_command_keeps_forwarded_flags_and_owns_its_paths():
    gconstruct = _load_script("gconstruct_entry")
    argv = gconstruct.gconstruct_argv(
        "/py",
        "acm_raw/config.json",
        Path("/opt/ml/processing/output"),
        "acm",
        ["--num-parts", "2", "--output-dir", "/elsewhere", "--add-reverse-edges"],
    )
    assert argv == [
        "/py",
        "-m",
        "graphstorm.gconstruct.construct_graph",
        "--conf-file",
        "acm_raw/config.json",
        "--output-dir",
        "/opt/ml/processing/output",
        "--graph-name",
        "acm",
        "--num-parts",
        "2",
        "--add-reverse-edges",
        "--logging-level",
        "info",
    ]


def test_every_log_level_the_job_specs_accept_is_accepted():
    from graphstorm_provider.jobs.validation import LOG_LEVELS

    gconstruct = _load_script("gconstruct_entry")
    for level in LOG_LEVELS:
        args, _ = cli.parse(
            gconstruct.build_parser(),
            ["--graph-name", "g", "--graph-config-file", "c.json", "--log-level", level.lower()],
        )
        argv = gconstruct.gconstruct_argv("/py", "c.json", Path("/out"), "g", [], args.log_level)
        assert argv[-1] in ("debug", "info", "warning", "error")  # GConstruct's own levels
