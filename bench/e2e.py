"""Issue 7, point 3: payments/s from request to credential with the channel answering after
500 ms, through payfront (gateway → arq worker → sandbox, the credential read back by
long-polling the token) and through a merchant server without payfront that calls the channel
with its own client library inside the request handler (``bench.e2e_merchant``), with the
same processes and threads, against the same sandbox in the same run."""

from __future__ import annotations

import contextlib
import math
import os
import secrets
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import redis

from bench import pyspy
from bench.e2e_measure import CpuMeter, redis_pid, run_generator, wait_drained
from bench.e2e_report import E2EStep, plot_e2e, print_summary
from bench.report import say, write_json
from bench.scenario import Scenario
from bench.session import saved, scratch_dir
from bench.stack import (
    GatewayStack,
    Processes,
    bench_redis,
    free_port,
    gateway_stack,
    scratch_database,
)
from core.provision import WechatMerchantKeys


@dataclass(frozen=True, slots=True)
class E2EOptions:
    shoppers: tuple[int, ...]
    duration_s: int
    warmup_s: int
    channel_latency_ms: int
    baseline_threads: int | None  # per process; None: payfront's gateway + worker threads
    baseline_processes: int
    baseline_shoppers: int | None  # None: twice the baseline's threads
    worker_max_jobs: int
    channel_max_in_flight: int
    profile: str  # "auto" (when a target is missed), "always", "never"


def _worker_env(options: E2EOptions) -> dict[str, str]:
    """The worker's settings for a slow channel: jobs, calls in flight per account and HTTP
    connections must all cover (payments/s × channel latency), or they cap the rate (the
    defaults — 500 jobs, 64 calls per account, 200 connections — are for channels that
    answer in tens of ms)."""
    return {
        # Nobody pays here, so every order would be queried at the channel after 60 s
        # without news (the missed-callback check) and again every few minutes: work that
        # real shoppers' callbacks make rare, and that would leak from one step into the next.
        "PAYFRONT_CHECK_AFTER_S": "3600",
        "PAYFRONT_WORKER_MAX_JOBS": str(options.worker_max_jobs),
        "PAYFRONT_CHANNEL_MAX_IN_FLIGHT": str(options.channel_max_in_flight),
        "PAYFRONT_CHANNEL_MAX_CONNECTIONS": str(options.channel_max_in_flight),
    }


# payfront --------------------------------------------------------------------------------


def _payfront_step(
    stack: GatewayStack, redis_url: str, options: E2EOptions, shoppers: int, meter: CpuMeter
) -> dict[str, Any]:
    arguments = [
        "--mode",
        "payfront",
        "--url",
        stack.gateway_url,
        "--api-key",
        stack.api_key,
        "--shoppers",
        str(shoppers),
        "--warmup",
        str(options.warmup_s),
        "--duration",
        str(options.duration_s),
        "--order-prefix",
        f"e{secrets.token_hex(3)}n{shoppers}",
    ]
    limit = options.warmup_s + options.duration_s + 120
    label = f"payfront {shoppers:>5} shoppers"
    return run_generator(arguments, meter, limit, label, lambda: _queued(redis_url, stack))


def _queued(redis_url: str, stack: GatewayStack) -> str:
    """Jobs waiting in (or running from) the worker's queue: whether the worker keeps up."""
    if stack.queue_name is None:
        return ""
    client = redis.Redis.from_url(redis_url)
    try:
        jobs: int = client.zcard(stack.queue_name)  # type: ignore[assignment]
    except redis.RedisError:
        return ""
    finally:
        client.close()
    return f"  jobs queued or running {jobs:>5}"


def _profile(
    stack: GatewayStack, redis_url: str, options: E2EOptions, out: Path, pids: dict[str, int]
) -> dict[str, pyspy.Summary] | None:
    """py-spy the worker and the gateway (at once: two processes) under the largest load."""
    seconds = 8
    recordings = {
        name: pyspy.start(pid, seconds, out, f"profile-{name}") for name, pid in pids.items()
    }
    if any(recording is None for recording in recordings.values()):
        say(f"  {pyspy.MISSING}")
        return None
    load_s = max(r.load_seconds for r in recordings.values() if r is not None)
    profile_options = E2EOptions(**{**_as_dict(options), "duration_s": load_s, "warmup_s": 1})
    meter = CpuMeter(dict(pids))
    _payfront_step(stack, redis_url, profile_options, max(options.shoppers), meter)
    return {name: r.finish() for name, r in recordings.items() if r is not None}


def _as_dict(options: E2EOptions) -> dict[str, Any]:
    return {name: getattr(options, name) for name in E2EOptions.__slots__}


# the merchant without payfront -----------------------------------------------------------


@contextlib.contextmanager
def merchant_servers(
    stack: GatewayStack, options: E2EOptions, threads: int, logs: Path
) -> Iterator[tuple[str, list[int]]]:
    """A merchant of its own at the same sandbox (same latency), and ``baseline_processes``
    merchant servers, a port each; yields their URLs (comma-separated) and process ids."""
    keys = WechatMerchantKeys.generate()
    answer = httpx.post(
        f"{stack.sandbox_url}/sandbox/wechatpay/merchants",
        json=keys.sandbox_registration(),
        timeout=10,
    )
    answer.raise_for_status()
    platform = answer.json()
    httpx.put(
        f"{stack.sandbox_url}/sandbox/wechatpay/faults/{keys.mchid}",
        json={"latency_ms": options.channel_latency_ms},
        timeout=10,
    ).raise_for_status()
    processes = Processes(logs)
    with tempfile.TemporaryDirectory(prefix="payfront-e2e-merchant-") as folder:
        private_key = Path(folder, "apiclient_key.pem")
        private_key.write_text(keys.private_key_pem)
        platform_key = Path(folder, "platform_public_key.pem")
        platform_key.write_text(platform["platform_public_key_pem"])
        command = [
            sys.executable,
            "-m",
            "bench.e2e_merchant",
            "--threads",
            str(threads),
            "--sandbox-url",
            stack.sandbox_url,
            "--mchid",
            keys.mchid,
            "--appid",
            keys.appid,
            "--serial-no",
            keys.serial_no,
            "--apiv3-key",
            keys.apiv3_key,
            "--private-key-file",
            str(private_key),
            "--public-key-file",
            str(platform_key),
            "--public-key-id",
            platform["platform_public_key_id"],
            "--notify-url",
            "https://merchant.example/wechatpay/notify",
        ]
        try:
            pids, urls = [], []
            for number in range(options.baseline_processes):
                name, url = f"merchant-{number + 1}", f"http://127.0.0.1:{free_port()}"
                port = ["--port", url.rsplit(":", 1)[1]]
                pids.append(processes.start(name, [*command, *port], _plain_env()).pid)
                processes.wait_http(name, f"{url}/health")
                urls.append(url)
            yield ",".join(urls), pids
        finally:
            processes.stop_all()


def _plain_env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith("PAYFRONT_")}


def _merchant_step(url: str, options: E2EOptions, shoppers: int, meter: CpuMeter) -> dict[str, Any]:
    arguments = [
        "--mode",
        "merchant",
        "--url",
        url,
        "--shoppers",
        str(shoppers),
        "--warmup",
        str(options.warmup_s),
        "--duration",
        str(options.duration_s),
        "--order-prefix",
        f"m{secrets.token_hex(3)}",
    ]
    limit = options.warmup_s + options.duration_s + 120
    return run_generator(arguments, meter, limit, f"merchant {shoppers:>5} shoppers")


# the run -----------------------------------------------------------------------------------


def run_e2e(options: E2EOptions) -> int:
    # No pinning: the whole system is under test on both sides (gateway, worker, sandbox,
    # generator; or merchant servers, sandbox, generator), and both get the whole machine.
    scenario = Scenario.open("e2e", options, pin=False)
    scenario.introduce(
        "payfront bench: end to end, request → credential, channel latency "
        f"{options.channel_latency_ms} ms",
        "generator: bench.e2e_load (closed-loop shoppers on asyncio streams + uvloop, one "
        "keep-alive connection each), unpinned like everything else",
        f"worker: max_jobs {options.worker_max_jobs}, {options.channel_max_in_flight} channel "
        "calls in flight per account and HTTP connections",
    )
    steps: list[E2EStep] = []
    profiles: dict[str, pyspy.Summary] | None = None
    with contextlib.ExitStack() as resources:
        workdir = resources.enter_context(scratch_dir())
        bench = resources.enter_context(bench_redis())
        say(f"  Redis:     {bench.describe()}")
        url = resources.enter_context(scratch_database("sqlite", workdir))
        say("  starting sandbox + gateway + worker on a scratch SQLite database …")
        stack = resources.enter_context(
            gateway_stack(
                "e2e",
                url,
                bench.url,
                workdir,
                scenario.out / "logs",
                scenario.pinning,
                with_worker=True,
                extra_env=_worker_env(options),
            )
        )
        assert stack.worker_pid is not None
        stack.set_channel_latency(options.channel_latency_ms)
        sandbox_pid = stack.sandbox_pid
        payfront_pids = {"gateway": stack.gateway_pid, "worker": stack.worker_pid}
        shared = {"sandbox": sandbox_pid} if sandbox_pid else {}
        if (pid := redis_pid(bench.url)) is not None:
            shared["redis"] = pid
        threads_seen: dict[str, int] = {}
        for shoppers in options.shoppers:
            say(
                f"  payfront, {shoppers} shoppers: warm-up {options.warmup_s} s, then "
                f"{options.duration_s} s measured"
            )
            meter = CpuMeter({**payfront_pids, **shared})
            result = _payfront_step(stack, bench.url, options, shoppers, meter)
            drained = wait_drained(url, 120)
            for name in payfront_pids:
                threads_seen[name] = max(threads_seen.get(name, 0), meter.threads.get(name, 0))
            steps.append(E2EStep("payfront", shoppers, result, meter.used, meter.threads, drained))
            say("    " + steps[-1].line())
        best = max((s for s in steps), key=lambda s: s.per_s)
        payfront_threads = sum(threads_seen.values())
        threads = options.baseline_threads or math.ceil(
            payfront_threads / options.baseline_processes
        )
        baseline_shoppers = options.baseline_shoppers or 2 * threads * options.baseline_processes
        say(
            f"  merchant without payfront: {options.baseline_processes} processes × {threads} "
            f"threads (payfront's gateway + worker had {payfront_threads} threads: "
            + ", ".join(f"{name} {n}" for name, n in threads_seen.items())
            + f"), {baseline_shoppers} shoppers"
        )
        with merchant_servers(stack, options, threads, scenario.out / "logs") as (
            merchant_url,
            merchant_pids,
        ):
            pids = {f"merchant-{n + 1}": pid for n, pid in enumerate(merchant_pids)}
            meter = CpuMeter({**pids, **shared})
            result = _merchant_step(merchant_url, options, baseline_shoppers, meter)
            steps.append(E2EStep("merchant", baseline_shoppers, result, meter.used, meter.threads))
            say("    " + steps[-1].line())
        if options.profile == "always" or (options.profile == "auto" and best.per_s < 1000):
            say(f"  profiling worker and gateway with py-spy at {max(options.shoppers)} shoppers …")
            profiles = _profile(stack, bench.url, options, scenario.out, payfront_pids)
            wait_drained(url, 60)
    after = scenario.conclude()
    verdict = print_summary(steps, scenario.machine, after, profiles)
    record = scenario.record(
        after,
        steps=[step.as_json() for step in steps],
        threads={"payfront": threads_seen, "merchant_per_process": threads},
        verdict=verdict,
        profiles={name: s.as_json() for name, s in (profiles or {}).items()},
    )
    path = write_json(scenario.out / "result.json", record)
    saved(path, plot_e2e(steps, scenario.out / "e2e.png"))
    return 0
