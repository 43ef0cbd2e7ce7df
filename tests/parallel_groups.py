"""Which tests may share the machine when the suite runs in pytest-xdist workers (``--dist loadgroup``).

Each test module is a group of its own, meant to run whole on one worker so its module-scoped
fixtures (a deployment, a GConstruct baseline) are made once (with pytest 9.2 and pytest-xdist 3.8
the groups do not take effect: README "Not yet"). Every module that reaches podman is
in one ``containers`` group: podman's containers, networks and image tags are machine-wide, and
these tests build images and look for leftovers by name. Everything else a test starts is its
own: a free port, a temporary folder, a private /dev/shm for each local job (gsentry.isolation).
"""

from __future__ import annotations

import pytest

CONTAINER_FIXTURES = frozenset({"compose_tool", "job_image", "probe_image"})
# Modules that reach podman without those fixtures: the image tests build it with a fixture of
# their own; the credential tests run a stand-in compose tool beside podman.
CONTAINER_MODULES = frozenset({"test_container_image", "test_compose_credentials"})
CONTAINER_GROUP = "containers"


def group_items(items: list[pytest.Item]) -> None:
    """Mark every collected test with its ``xdist_group``: ``containers`` if its module reaches podman, else its module."""
    containers = {item.path.stem for item in items if CONTAINER_FIXTURES & set(item.fixturenames)}
    containers |= CONTAINER_MODULES
    for item in items:
        module = item.path.stem
        item.add_marker(pytest.mark.xdist_group(CONTAINER_GROUP if module in containers else module))
