"""2-host training and inference on a heterogeneous graph with a featureless node type, in real containers.

Issue 9: on a user/movie/genre graph (edge classification on ``user,rates,movie``, ``genre``
without features, 2 GConstruct partitions), 2-host inference saving embeddings and predictions
failed in about half the runs on algo-2's DGL server with ``KVServer cannot find partition
policy with name: node~movie~mapping-movie_0``. Cause: GraphStorm creates its ``mapping-<ntype>``
DistTensors in the iteration order of a set of node-type names, which differs between processes
with Python's per-process string hashing; DistDGL's creation is collective, so each host set up a
different tensor on its own server. The launch now gives every GraphStorm process of the job one
``PYTHONHASHSEED`` (``gsentry.launcher.HASH_SEED_ENV``; the unit test is in
test_entrypoints_units.py).

``bench/multihost_stress.py`` with 2 runs (train + infer, back to back), as CI runs it (``e2e``): a
run passes only when every test edge has a prediction and every user and movie an embedding, keyed
by raw ID, both hosts report the same hash seed (a different one is the race's cause, caught
whether or not the race strikes), and nothing of its jobs is left; here, both hosts also wrote
their share of the predictions. The checks on the hosts are tested on their own first.

Needs the job image (``docker/build_image.sh``; ``GRAPHSTORM_IMAGE`` picks the tag) and an
engine: skipped, with the reason, only where no engine can run.
"""

from __future__ import annotations

import pytest

from bench import multihost_stress as stress

SEED_LINE = "[{host}] 2026-12-04 10:00:00 gsentry: GraphStorm processes run with PYTHONHASHSEED={seed}"


class _Runner:
    def __init__(self, left: list[str]):
        self.left = left

    def leftovers(self) -> list[str]:
        return self.left


def test_host_checks_name_different_hash_seeds_a_silent_host_and_what_was_left():
    same = [SEED_LINE.format(host="algo-1", seed=0), "[algo-2] other", SEED_LINE.format(host="algo-2", seed=0)]
    assert stress.hash_seeds(same) == {"algo-1": "0", "algo-2": "0"}
    assert stress.host_problems(same, [_Runner([]), _Runner([])], hosts=2) == []
    different = [SEED_LINE.format(host="algo-1", seed=0), SEED_LINE.format(host="algo-2", seed=7)]
    assert stress.host_problems(different, [], hosts=2) == [
        "hosts reported hash seeds {'algo-1': '0', 'algo-2': '7'}, expected one seed from each of 2 hosts"
    ]
    silent = [SEED_LINE.format(host="algo-1", seed=0)]
    assert "expected one seed from each of 2 hosts" in stress.host_problems(silent, [], hosts=2)[0]
    left = stress.host_problems(same, [_Runner(["gs-x-algo-2"]), _Runner(["gs-x-net"])], hosts=2)
    assert left == ["left behind: gs-x-algo-2, gs-x-net"]
    assert stress.host_problems([], [], hosts=1) == []  # the local backend has no hosts to compare


@pytest.mark.e2e
def test_multihost_stress_script_passes_twice(compose_tool, job_image, tmp_path, capsys):
    """What CI runs: the stress script's train + infer loop with N=2, its runs kept to look at."""
    code = stress.main(["--runs", "2", "--image", job_image, "--workdir", str(tmp_path)])
    printed = capsys.readouterr().out
    print(printed)
    assert code == 0, printed
    assert "passed 2/2" in printed
    for run in ("run01", "run02"):
        # Both hosts wrote their share of the predictions (one file per host at least).
        files = sorted(p.name for p in (tmp_path / run / "out" / "predictions" / "user_rates_movie").glob("*.parquet"))
        assert len(files) >= 2, (run, files)
