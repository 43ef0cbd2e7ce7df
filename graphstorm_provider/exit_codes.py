"""Process exit codes of the provider's commands and of the jobs they run (one name each)."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1  # the job or command failed
EXIT_USAGE = 2  # bad arguments (argparse's convention); also python3's code for a missing script
EXIT_TIMED_OUT = 124  # as coreutils' timeout(1) reports a time-out
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports it
EXIT_TERMINATED = 143  # 128 + SIGTERM: stopped
