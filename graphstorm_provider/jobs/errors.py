"""The one exception every job-spec validation failure raises."""

from __future__ import annotations


class JobSpecError(ValueError):
    """A job parameter is wrong.

    The message is one sentence that names the parameter in its CLI flag form
    (``--num-parts``), whether the spec was built from argv or from keyword
    arguments, so the CLI can print it without a traceback and an operator's task
    log says exactly what to fix. Raised before any request is sent.
    """


def flag(name: str) -> str:
    """``num_parts`` -> ``--num-parts``: the spelling every message uses."""
    return "--" + name.replace("_", "-")
