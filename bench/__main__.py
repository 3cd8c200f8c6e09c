"""``python -m bench token``: token issuance against a bare aiohttp handler measured in the
same run; ``python -m bench token --channel-latency 0.05,2``: the token's latency with a
worker calling a slow channel; ``python -m bench hot-accounts``: ledger postings to one
merchant account, per-row balance update vs the hot-account buffer. Run from the repository
root with payfront's venv."""

from __future__ import annotations

import argparse

from bench.channel_latency import run_channel_latency
from bench.hot_accounts import HotOptions, run_hot_accounts
from bench.session import TokenOptions
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
    return root


def main() -> int:
    args = parser().parse_args()
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
