"""The one exception every job-spec validation failure raises."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar

# Field name -> the flag the caller's command line spells it with, where that differs from
# ``--<field-name>`` (``gs-sagemaker compose`` says ``--num-instances`` for ``instance_count``).
_FLAG_SPELLINGS: ContextVar[Mapping[str, str]] = ContextVar("flag_spellings", default={})


class JobSpecError(ValueError):
    """
    A job parameter is wrong.

    The message is one sentence that names the parameter in its CLI flag form
    (``--num-parts``), whether the spec was built from argv or from keyword
    arguments, so the CLI can print it without a traceback and an operator's task
    log says exactly what to fix. Raised before any request is sent.
    """


def flag(name: str) -> str:
    """``num_parts`` -> ``--num-parts``: the spelling every message uses (see :func:`flag_spellings`)."""
    return _FLAG_SPELLINGS.get().get(name) or "--" + name.replace("_", "-")


@contextmanager
def flag_spellings(spellings: Mapping[str, str]) -> Iterator[None]:
    """
    Within the block, messages raised by the specs name ``field`` as ``spellings[field]``.

    A command line whose flags differ from the launch scripts' gets its own spelling at the source.
    """
    token = _FLAG_SPELLINGS.set({**_FLAG_SPELLINGS.get(), **spellings})
    try:
        yield
    finally:
        _FLAG_SPELLINGS.reset(token)
