"""How long ``gs-sagemaker`` takes to give up on an AWS endpoint that is down or never answers.

Two endpoints on 127.0.0.1: a closed port (connections refused) and a socket server that accepts,
reads and never answers. Prints the seconds until the command exits, its exit code, the number of
connections the silent server accepted (one per attempt) and the one-line error:

    .venv/bin/python bench/unreachable_endpoint.py [--attempts N]

The stated bound is 60 s with the defaults (5 attempts, 5 s connect and 7 s read timeouts).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

GS_SAGEMAKER = Path(sys.executable).parent / "gs-sagemaker"
ARGV = [
    "train",
    "--image-url",
    "123456789012.dkr.ecr.us-east-1.amazonaws.com/graphstorm:sagemaker-cpu",
    "--role",
    "arn:aws:iam::123456789012:role/SageMakerExecutionRole",
    "--region",
    "us-east-1",
    "--graph-data-s3",
    "s3://bench-bucket/g/",
    "--yaml-s3",
    "s3://bench-bucket/t.yaml",
    "--model-artifact-s3",
    "s3://bench-bucket/m/",
    "--graph-name",
    "acm",
    "--task-type",
    "node_classification",
]


def silent_server() -> tuple[socket.socket, list[socket.socket]]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                accepted.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=serve, daemon=True).start()
    return server, accepted


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def measure(url: str, attempts: int | None) -> tuple[float, int, str]:
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    if attempts:
        env["GS_SAGEMAKER_AWS_MAX_ATTEMPTS"] = str(attempts)
    began = time.monotonic()
    proc = subprocess.run([str(GS_SAGEMAKER), *ARGV], capture_output=True, text=True, env=env, timeout=600, check=False)
    return time.monotonic() - began, proc.returncode, proc.stderr.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attempts", type=int, help="GS_SAGEMAKER_AWS_MAX_ATTEMPTS (default: the command's)")
    args = parser.parse_args()
    seconds, code, error = measure(f"http://127.0.0.1:{closed_port()}", args.attempts)
    print(f"closed port: {seconds:.1f} s, exit {code}: {error}")
    server, accepted = silent_server()
    try:
        seconds, code, error = measure(f"http://127.0.0.1:{server.getsockname()[1]}", args.attempts)
        print(f"silent endpoint: {seconds:.1f} s, exit {code}, {len(accepted)} connections: {error}")
    finally:
        server.close()
        for conn in accepted:
            conn.close()


if __name__ == "__main__":
    main()
