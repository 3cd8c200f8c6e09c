"""Find a Redis that answers, or start a private one for development and tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time

import redis


class RedisMissing(RuntimeError):
    pass


def answers(url: str, timeout_s: float = 1.0) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_private_redis(port: int | None = None) -> tuple[str, subprocess.Popen[bytes]]:
    """Start ``redis-server`` on a free (or the given) loopback port with no persistence;
    return its URL and process."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RedisMissing(
            "no Redis answers and `redis-server` is not installed. Install Redis "
            "(Debian/Ubuntu: `apt-get install redis-server`, macOS: `brew install redis`) "
            "or point PAYFRONT_REDIS_URL at one that runs."
        )
    port = port or _free_port()
    workdir = tempfile.mkdtemp(prefix="payfront-redis-")
    process = subprocess.Popen(  # noqa: S603 - fixed binary and arguments
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            workdir,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if answers(url, 0.2):
            return url, process
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    raise RedisMissing(f"started redis-server on port {port} but it did not answer")
