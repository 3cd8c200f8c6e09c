"""Run the sandbox on its own: ``python -m mock_channels --state-dir .payfront/sandbox``."""

from __future__ import annotations

import argparse
import logging
import pathlib
from dataclasses import dataclass

from mock_channels.app import run_sandbox


@dataclass(frozen=True)
class _Settings:
    sandbox_host: str
    sandbox_port: int
    sandbox_state_dir: pathlib.Path
    sandbox_time_scale: float


def main() -> None:
    parser = argparse.ArgumentParser(description="payfront channel sandbox")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--state-dir", type=pathlib.Path, default=pathlib.Path(".payfront/sandbox"))
    parser.add_argument("--time-scale", type=float, default=1.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    run_sandbox(_Settings(args.host, args.port, args.state_dir, args.time_scale))


if __name__ == "__main__":
    main()
