"""``python -m bench token``: token issuance against a bare aiohttp handler measured in the
same run; ``python -m bench token --channel-latency 0.05,2``: the token's latency with a
worker calling a slow channel; ``python -m bench hot-accounts``: ledger postings to one
merchant account, per-row balance update vs the hot-account buffer; ``python -m bench
callbacks|growth|memory``: issue 7's points 4, 5 and 6 (``--quick`` for a 1-2 minute smoke run);
``python -m bench e2e``: issue 7's point 3, request to credential at 500 ms channel latency.
Run from the repository root with payfront's venv."""

from __future__ import annotations

import argparse
from typing import Any

from bench.callbacks import CallbackOptions, run_callbacks
from bench.channel_latency import run_channel_latency
from bench.e2e import E2EOptions, run_e2e
from bench.growth import GrowthOptions, run_growth
from bench.hot_accounts import HotOptions, run_hot_accounts
from bench.memory import MemoryOptions, run_memory
from bench.session import TokenOptions
from bench.summary import add_parser as _add_summary
from bench.summary import main as _run_summary
from bench.token_path import run_throughput

DATABASES = {"sqlite": ("sqlite",), "postgres": ("postgres",), "both": ("sqlite", "postgres")}


def _positive_floats(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers: {text!r}") from None
    if not values or any(value <= 0 for value in values):
        raise argparse.ArgumentTypeError(f"expected positive numbers: {text!r}")
    return values


def _positive_ints(text: str) -> tuple[int, ...]:
    values = _positive_floats(text)
    if any(value != int(value) for value in values):
        raise argparse.ArgumentTypeError(f"expected whole numbers: {text!r}")
    return tuple(int(value) for value in values)


def _positive_int(text: str) -> int:
    (value,) = _positive_ints(text)
    return value


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)
    token = commands.add_parser(
        "token",
        help="POST /v1/payments under rising load, next to a bare aiohttp handler",
        description="Token issuance (auth, validation, one DB transaction, one arq enqueue) "
        "at rising closed-loop load, against real `python -m payfront` processes, next to a "
        "bare aiohttp handler measured in the same run. Writes bench/results/token-*/.",
    )
    token.add_argument(
        "--db",
        choices=sorted(DATABASES),
        default="both",
        help="database(s) behind the gateway (default both; PostgreSQL is skipped with a "
        "message when none answers at 127.0.0.1:5432)",
    )
    token.add_argument(
        "--connections",
        type=_positive_ints,
        default=(1, 4, 16, 64),
        metavar="N,N,…",
        help="closed-loop connections per step, the rising load (default 1,4,16,64)",
    )
    token.add_argument(
        "--duration", type=_positive_int, default=10, help="seconds per step (default 10)"
    )
    token.add_argument(
        "--warmup", type=_positive_int, default=3, help="warm-up seconds (default 3)"
    )
    token.add_argument(
        "--generator",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="wrk when installed (auto), else the async Python generator",
    )
    token.add_argument(
        "--no-pin", action="store_true", help="do not pin server and generator to CPUs"
    )
    token.add_argument(
        "--idempotency-keys",
        action="store_true",
        help="send a unique Idempotency-Key per request, as the SDK does (adds a Redis lock "
        "and a row to the transaction)",
    )
    token.add_argument(
        "--profile",
        choices=("auto", "always", "never"),
        default="auto",
        help="py-spy the gateway under load: when a target is missed (auto), always or never",
    )
    token.add_argument(
        "--channel-latency",
        type=_positive_floats,
        metavar="S,S,…",
        help="scenario 2: token latency with a worker running and the sandbox answering after "
        "each of these seconds (e.g. 0.05,2); the ratio of the last p99 to the first is checked",
    )
    token.add_argument(
        "--latency-connections",
        type=_positive_int,
        default=4,
        help="closed-loop connections for the --channel-latency steps (default 4: a few "
        "requests in flight, so the gateway's own queue does not hide the worker's effect)",
    )
    hot = commands.add_parser(
        "hot-accounts",
        help="postings/s to one merchant account: per-row balance update vs hot buffer",
        description="Postings (whole payment entries, one transaction each) to ONE merchant "
        "account from K concurrent writers, with the balance row updated per posting and with "
        "the hot-account buffer folded meanwhile, on each database; the ratio hot ÷ per-row "
        "is measured in the same run. Writes bench/results/hot-accounts-*/.",
    )
    hot.add_argument("--db", choices=sorted(DATABASES), default="both", help="default both")
    hot.add_argument(
        "--writers",
        type=_positive_ints,
        default=(1, 4, 16, 64),
        metavar="K,K,…",
        help="concurrent writers per step (default 1,4,16,64)",
    )
    hot.add_argument(
        "--duration", type=_positive_floats, default=(5.0,), help="seconds per step (default 5)"
    )
    hot.add_argument(
        "--warmup", type=_positive_floats, default=(1.0,), help="warm-up seconds (default 1)"
    )
    _add_callbacks(commands)
    _add_growth(commands)
    _add_memory(commands)
    _add_e2e(commands)
    _add_summary(commands)
    return root


def _add_e2e(commands: Any) -> None:
    e2e = commands.add_parser(
        "e2e",
        help="payments/s request → credential at 500 ms channel latency, vs a merchant "
        "calling the channel library in its handler",
        description="Closed-loop shoppers create a payment and wait for its credential: "
        "through payfront (gateway, worker, sandbox; the token long-polled) and through a "
        "merchant server without payfront that calls wechatpayv3 inside its handler with the "
        "same processes and threads, against the same sandbox in the same run. "
        "Writes bench/results/e2e-*/.",
    )
    e2e.add_argument(
        "--shoppers",
        type=_positive_ints,
        default=None,
        metavar="N,N,…",
        help="concurrent shoppers per payfront step (default 64,256,1024; --quick 1024)",
    )
    e2e.add_argument(
        "--duration", type=_positive_int, default=None, help="seconds measured (15; --quick 8)"
    )
    e2e.add_argument("--warmup", type=_positive_int, default=None, help="seconds (5; --quick 3)")
    e2e.add_argument(
        "--channel-latency", type=_positive_int, default=500, help="sandbox latency, ms (500)"
    )
    e2e.add_argument(
        "--baseline-threads",
        type=_positive_int,
        default=None,
        help="threads per merchant process (default: payfront's gateway + worker threads, "
        "shared out over the processes)",
    )
    e2e.add_argument(
        "--baseline-processes",
        type=_positive_int,
        default=2,
        help="merchant server processes (2: payfront's gateway + worker)",
    )
    e2e.add_argument(
        "--baseline-shoppers",
        type=_positive_int,
        default=None,
        help="shoppers for the merchant (default: twice its threads, enough to keep them busy)",
    )
    e2e.add_argument("--max-jobs", type=_positive_int, default=2000, help="worker max_jobs (2000)")
    e2e.add_argument(
        "--max-in-flight",
        type=_positive_int,
        default=2000,
        help="channel calls in flight per account and HTTP connections of the worker (2000)",
    )
    e2e.add_argument(
        "--profile",
        choices=("auto", "always", "never"),
        default="auto",
        help="py-spy the worker and gateway: when a target is missed (auto), always or never",
    )
    e2e.add_argument("--quick", action="store_true", help="one payfront step, shorter")


def _run_e2e(args: argparse.Namespace) -> int:
    quick = args.quick
    return run_e2e(
        E2EOptions(
            shoppers=args.shoppers or ((1024,) if quick else (64, 256, 1024)),
            duration_s=args.duration or (8 if quick else 15),
            warmup_s=args.warmup or (3 if quick else 5),
            channel_latency_ms=args.channel_latency,
            baseline_threads=args.baseline_threads,
            baseline_processes=args.baseline_processes,
            baseline_shoppers=args.baseline_shoppers,
            worker_max_jobs=args.max_jobs,
            channel_max_in_flight=args.max_in_flight,
            profile=args.profile,
        )
    )


def _add_memory(commands: Any) -> None:
    memory = commands.add_parser(
        "memory",
        help="gateway and worker RSS, Redis used_memory: idle and with N payments in flight",
        description="Gateway and worker VmRSS and Redis used_memory: idle; with N payments "
        "issued through the gateway while the worker is paused (N prepay jobs queued); and "
        "after the worker made them all awaiting_payment. Writes bench/results/memory-*/.",
    )
    memory.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    memory.add_argument(
        "--payments",
        type=_positive_int,
        default=None,
        help="payments in flight (default 100000; --quick 10000)",
    )
    memory.add_argument(
        "--connections", type=_positive_int, default=32, help="wrk connections (32)"
    )
    memory.add_argument(
        "--drain-limit",
        type=_positive_int,
        default=None,
        help="seconds to wait for the worker to prepay them all (default 120; --quick 30)",
    )
    memory.add_argument(
        "--generator",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="wrk when installed (auto), else the async Python generator",
    )
    memory.add_argument("--no-pin", action="store_true", help="no CPU pinning")
    memory.add_argument("--quick", action="store_true", help="10k payments, a short smoke run")


def _run_memory(args: argparse.Namespace) -> int:
    quick = args.quick
    return run_memory(
        MemoryOptions(
            database=args.db,
            payments=args.payments or (10_000 if quick else 100_000),
            connections=args.connections,
            drain_limit_s=args.drain_limit or (30 if quick else 120),
            pin=not args.no_pin,
            generator=args.generator,
        )
    )


def _add_growth(commands: Any) -> None:
    growth = commands.add_parser(
        "growth",
        help="token p99 with 10k, 100k and 1M orders already stored, ratio to the empty run",
        description="The token path (with an Idempotency-Key per request) measured on an empty "
        "database, then after bulk-loading orders up to each size, on the same gateway; ratios "
        "to the empty run and the lookups' query plans. Writes bench/results/growth-*/.",
    )
    growth.add_argument("--db", choices=sorted(DATABASES), default="both")
    growth.add_argument(
        "--sizes",
        type=_positive_ints,
        default=None,
        metavar="N,N,…",
        help="orders stored before each step (default 10000,100000,1000000; --quick "
        "1000,10000,100000)",
    )
    growth.add_argument(
        "--connections", type=_positive_int, default=8, help="closed-loop connections (8)"
    )
    growth.add_argument(
        "--duration", type=_positive_int, default=None, help="seconds per step (10; --quick 3)"
    )
    growth.add_argument(
        "--generator",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="wrk when installed (auto), else the async Python generator",
    )
    growth.add_argument("--no-pin", action="store_true", help="no CPU pinning")
    growth.add_argument("--quick", action="store_true", help="a short smoke run (~1-2 min)")


def _run_growth(args: argparse.Namespace) -> int:
    quick = args.quick
    return run_growth(
        GrowthOptions(
            databases=DATABASES[args.db],
            sizes=args.sizes
            or ((1_000, 10_000, 100_000) if quick else (10_000, 100_000, 1_000_000)),
            connections=args.connections,
            duration_s=args.duration or (3 if quick else 10),
            warmup_s=1 if quick else 2,
            generator=args.generator,
            pin=not args.no_pin,
        )
    )


def _add_callbacks(commands: Any) -> None:
    callbacks = commands.add_parser(
        "callbacks",
        help="verified, decrypted, applied WeChat Pay callbacks/s into one gateway process",
        description="Genuinely signed + encrypted TRANSACTION.SUCCESS notifications for "
        "pre-written awaiting-payment orders, each replayed once by wrk at rising concurrency "
        "into one gateway process, next to the bare aiohttp handler fed the same requests. "
        "Checks that the orders paid equal the callbacks sent. Writes bench/results/callbacks-*/.",
    )
    callbacks.add_argument("--db", choices=sorted(DATABASES), default="sqlite")
    callbacks.add_argument(
        "--connections",
        type=_positive_ints,
        default=None,
        metavar="N,N,…",
        help="closed-loop connections per step (default 4,16,64; --quick 16,64)",
    )
    callbacks.add_argument(
        "--per-step",
        type=_positive_int,
        default=None,
        help="callbacks (one per order) per step (default 25000; --quick 4000)",
    )
    callbacks.add_argument(
        "--duration",
        type=_positive_int,
        default=None,
        help="a step stops after this many seconds if its callbacks are not all answered "
        "(default 10; --quick 4)",
    )
    callbacks.add_argument("--no-pin", action="store_true", help="no CPU pinning")
    callbacks.add_argument(
        "--profile",
        choices=("auto", "always", "never"),
        default="auto",
        help="py-spy the gateway when the target is missed (auto), always or never",
    )
    callbacks.add_argument("--quick", action="store_true", help="a short smoke run (~1-2 min)")


def _run_callbacks(args: argparse.Namespace) -> int:
    quick = args.quick
    return run_callbacks(
        CallbackOptions(
            databases=DATABASES[args.db],
            connections=args.connections or ((16, 64) if quick else (4, 16, 64)),
            per_step=args.per_step or (4_000 if quick else 25_000),
            duration_s=args.duration or (4 if quick else 10),
            warmup=1_000 if quick else 3_000,
            pin=not args.no_pin,
            profile=args.profile,
        )
    )


def main() -> int:
    args = parser().parse_args()
    if args.command == "summary":
        return _run_summary(args)
    if args.command == "callbacks":
        return _run_callbacks(args)
    if args.command == "e2e":
        return _run_e2e(args)
    if args.command == "growth":
        return _run_growth(args)
    if args.command == "memory":
        return _run_memory(args)
    if args.command == "hot-accounts":
        return run_hot_accounts(
            HotOptions(
                databases=DATABASES[args.db],
                writers=args.writers,
                duration_s=args.duration[0],
                warmup_s=args.warmup[0],
            )
        )
    options = TokenOptions(
        databases=DATABASES[args.db],
        connections=args.connections,
        duration_s=args.duration,
        warmup_s=args.warmup,
        generator=args.generator,
        pin=not args.no_pin,
        idempotency_keys=args.idempotency_keys,
        profile=args.profile,
        channel_latencies_s=args.channel_latency or (),
        latency_connections=args.latency_connections,
    )
    if options.channel_latencies_s:
        return run_channel_latency(options)
    return run_throughput(options)


if __name__ == "__main__":
    raise SystemExit(main())
