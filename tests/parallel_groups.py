"""Which tests may share the machine when the suite runs in pytest-xdist workers (``--dist loadgroup``).

Each test module is a group of its own and runs whole on one worker, so its module-scoped
fixtures (a deployment, a GConstruct baseline) are made once. Every module that reaches podman is
in one ``containers`` group: podman's containers, networks and image tags are machine-wide, and
these tests build images and look for leftovers by name. Everything else a test starts is its
own: a free port, a temporary folder, a private /dev/shm for each local job (gsentry.isolation).

The groups are made by a scheduler of our own (:class:`ModuleGroupScheduling`, chosen by the
conftest's ``pytest_xdist_make_scheduler`` for ``--dist loadgroup`` and every other mode that runs a
test on one worker, a plain ``-n 2`` included), from each test's id alone: the
controller that schedules has collected nothing. pytest-xdist's own ``loadgroup`` reads an
``@group`` suffix its workers append to ``item._nodeid``; pytest 9.2 computes ``nodeid`` from
``_id`` instead, so that suffix never arrives and every test was a unit of its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xdist.scheduler import LoadScopeScheduling

if TYPE_CHECKING:
    import pytest

# A test module reaches podman if its tests take one of these fixtures, or it is one of
# CONTAINER_MODULES (tests/test_parallel_groups.py checks that every such module is listed).
CONTAINER_FIXTURES = frozenset({"compose_tool", "job_image", "probe_image"})
CONTAINER_MODULES = frozenset(
    {
        "test_canary_secret",
        "test_compose_cli",
        "test_compose_credentials",  # a stand-in compose tool beside podman
        "test_compose_heterograph",
        "test_compose_model_tar",
        "test_compose_multihost",
        "test_compose_runner",
        "test_container_image",  # builds the image with a fixture of its own
        "test_e2e_chunked",
        "test_partition_compose",
    }
)
CONTAINER_GROUP = "containers"


def group_of(nodeid: str) -> str:
    """The group of the test ``nodeid`` (``tests/test_x.py::test_y[...]``): ``containers`` or its module."""
    module = nodeid.split("::", 1)[0].rsplit("/", 1)[-1].removesuffix(".py")
    return CONTAINER_GROUP if module in CONTAINER_MODULES else module


class ModuleGroupScheduling(LoadScopeScheduling):
    """pytest-xdist's scope scheduling with :func:`group_of` as the scope: each group goes whole to one worker."""

    def _split_scope(self, nodeid: str) -> str:
        return group_of(nodeid)


# pytest-xdist modes that run each test once, on one worker: ours replaces them all, so a plain
# ``pytest -n 2`` (xdist's default ``load``) keeps the container modules on one worker too.
_ONE_WORKER_PER_TEST = frozenset({"load", "loadscope", "loadfile", "loadgroup", "worksteal"})


def make_scheduler(config: pytest.Config, log: object) -> ModuleGroupScheduling | None:
    """Our scheduler whenever tests are spread over workers; ``None`` (pytest-xdist's choice) otherwise (``each``)."""
    if config.getvalue("dist") not in _ONE_WORKER_PER_TEST:
        return None
    return ModuleGroupScheduling(config, log)  # type: ignore[arg-type]
