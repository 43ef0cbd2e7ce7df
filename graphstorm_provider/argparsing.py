"""
The one argparse subclass of the provider's command lines: errors raise, never exit.

``gs-sagemaker <step>``, ``gs-sagemaker compose`` and ``gs-sagemaker synthetic-acm`` each pass the
exception their errors become; the command prints it as one line (exit code 2), with no usage dump
and no traceback.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, NoReturn


class RaisingArgumentParser(argparse.ArgumentParser):
    """
    argparse whose ``error`` raises ``error_type(message)`` instead of printing usage and exiting.

    :param error_type: builds the exception from argparse's message (e.g. ``JobSpecError``).
    """

    def __init__(self, *args: Any, error_type: Callable[[str], Exception] = ValueError, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.error_type = error_type

    def error(self, message: str) -> NoReturn:
        raise self.error_type(message)
