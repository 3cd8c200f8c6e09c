"""The ``payfront`` command line."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx

from core.settings import MODES, Settings
from core.vault import new_master_key

if TYPE_CHECKING:
    from core.store.db import Database

BANNER = """
payfront is running (Ctrl-C stops everything)
  gateway  http://{gw}        merchant API, callbacks, tokens
  sandbox  http://{sb}        WeChat Pay v3, Alipay and Stripe emulators (+ /sandbox/...)
  worker   arq queues '{queue}' (live) and '{queue}:test' on {redis}
  database {live_db} (live), {db} (shadow: test mode)

Test-mode API key of the local merchant: {key}

Try it:
  curl -s -X POST http://{gw}/v1/payments \\
    -H "Authorization: Bearer {key}" -H "Content-Type: application/json" \\
    -d '{{"amount": 100, "currency": "CNY", "merchant_order_no": "order-1",
         "channel": "wechatpay", "method": "native", "description": "A cup of tea"}}'
"""


def _fail(message: str) -> None:
    print(f"payfront: {message}", file=sys.stderr)
    raise SystemExit(2)


def _require_redis(settings: Settings) -> None:
    from payfront.localredis import answers

    if not answers(settings.redis_url):
        _fail(
            f"Redis does not answer at {settings.redis_url}: start one (`redis-server`) or set "
            "PAYFRONT_REDIS_URL; `payfront dev` starts a private one by itself."
        )


def _require_master_key(settings: Settings) -> None:
    if not settings.master_key:
        _fail(
            "PAYFRONT_MASTER_KEY is not set: it encrypts channel credentials at rest. Make one "
            "with `python -c 'import base64,os;print(base64.b64encode(os.urandom(32)).decode())'`."
        )


def cmd_migrate(settings: Settings) -> None:
    """Bring the live and the shadow (test-mode) database to the latest schema, creating a
    PostgreSQL database that does not exist yet."""
    from core.store.migrate import ensure_database, upgrade

    async def migrate(url: str, name: str) -> None:
        if await ensure_database(url):
            print(f"created the {name} database {_safe_url(url)}")
        await upgrade(url)
        print(f"{name} database at {_safe_url(url)} is at the latest schema")

    async def migrate_all() -> None:
        for mode in MODES:
            name = "live" if mode == "live" else "shadow (test-mode)"
            mode_settings = settings.for_mode(mode)
            await migrate(mode_settings.database_url, name)
            if mode_settings.ledger_url != mode_settings.database_url:
                await migrate(mode_settings.ledger_url, f"{name} ledger")

    asyncio.run(migrate_all())


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def cmd_gateway(settings: Settings) -> None:
    from gateway.app import run_gateway

    _require_master_key(settings)
    _require_redis(settings)
    run_gateway(settings)


def cmd_worker(settings: Settings, pool: str = "all") -> None:
    from workers.settings import POOLS, run_worker

    _require_master_key(settings)
    _require_redis(settings)
    run_worker(settings, POOLS if pool == "all" else (pool,))


def cmd_sandbox(settings: Settings) -> None:
    from mock_channels.app import run_sandbox

    run_sandbox(settings)


def _master_key_for_dev(settings: Settings) -> str:
    if settings.master_key:
        return settings.master_key
    path = settings.data_dir / "master.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(new_master_key())
        path.chmod(0o600)
    return path.read_text().strip()


def _wait_http(
    url: str, name: str, process: subprocess.Popen[bytes], timeout_s: float = 20
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            _fail(f"the {name} exited with code {process.returncode} while starting")
        try:
            if httpx.get(url, timeout=0.5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    _fail(f"the {name} did not answer at {url} within {timeout_s:.0f}s")


def cmd_dev(settings: Settings) -> None:
    """Sandbox, gateway and worker on the embedded defaults, in one command."""
    from payfront.localredis import RedisMissing, answers, start_private_redis

    env = dict(os.environ)
    env["PAYFRONT_MASTER_KEY"] = _master_key_for_dev(settings)
    children: list[subprocess.Popen[bytes]] = []
    redis_url = settings.redis_url
    if not answers(redis_url):
        try:
            redis_url, redis_process = start_private_redis()
        except RedisMissing as exc:
            _fail(str(exc))
        children.append(redis_process)
        print(f"no Redis answered at {settings.redis_url}; started a private one at {redis_url}")
    env["PAYFRONT_REDIS_URL"] = redis_url
    settings = settings.model_copy(
        update={"master_key": env["PAYFRONT_MASTER_KEY"], "redis_url": redis_url}
    )
    cmd_migrate(settings)

    def spawn(command: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen([sys.executable, "-m", "payfront", command], env=env)  # noqa: S603
        children.append(process)
        return process

    def stop_all(*_: object) -> None:
        for child in reversed(children):
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()

    try:
        sandbox_addr = f"{settings.sandbox_host}:{settings.sandbox_port}"
        gateway_addr = f"{settings.gateway_host}:{settings.gateway_port}"
        sandbox = spawn("sandbox")
        _wait_http(f"http://{sandbox_addr}/sandbox/health", "sandbox", sandbox)
        asyncio.run(_provision_dev(settings, f"http://{sandbox_addr}"))
        gateway = spawn("gateway")
        worker = spawn("worker")
        _wait_http(f"http://{gateway_addr}/readyz", "gateway", gateway)
        print(
            BANNER.format(
                gw=gateway_addr,
                sb=sandbox_addr,
                queue=settings.queue_name,
                redis=redis_url,
                live_db=settings.database_url,
                db=settings.shadow_database_url,
                key=settings.dev_api_key,
            ),
            flush=True,
        )
        signal.signal(signal.SIGTERM, _interrupt)
        while all(child.poll() is None for child in (sandbox, gateway, worker)):
            time.sleep(0.5)
        _fail("a payfront process exited; stopping the others")
    except KeyboardInterrupt:
        pass
    finally:
        stop_all()


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


async def _provision_dev(settings: Settings, sandbox_url: str) -> None:
    from core.provision import set_channel_fee_rate
    from core.store.db import Database
    from core.vault import Vault
    from payfront.devsetup import DEV_ACCOUNT_ID, DEV_MERCHANT_ID, provision_wechat_sandbox_account
    from payfront.devsetup_alipay import provision_alipay_sandbox_account
    from payfront.devsetup_stripe import provision_stripe_sandbox_account

    # The dev merchant's key is a test-mode key: it and everything it does live in the shadow
    # database, and its channel accounts call only the sandbox.
    db = Database(settings.for_mode("test").database_url)
    vault = Vault(settings.master_key)
    try:
        # One account per channel, each registered at the sandbox (idempotent on restart).
        await provision_wechat_sandbox_account(
            db,
            vault,
            sandbox_url=sandbox_url,
            merchant_id=DEV_MERCHANT_ID,
            merchant_name="Local dev shop",
            api_key=settings.dev_api_key,
            account_id=DEV_ACCOUNT_ID,
        )
        await provision_alipay_sandbox_account(
            db, vault, sandbox_url=sandbox_url, merchant_id=DEV_MERCHANT_ID, account_id="alipay_dev"
        )
        await provision_stripe_sandbox_account(
            db,
            vault,
            sandbox_url=sandbox_url,
            merchant_id=DEV_MERCHANT_ID,
            account_id="stripe_dev",
            webhook_url=f"{settings.public_base_url.rstrip('/')}/test/callbacks/stripe/stripe_dev",
        )
        # payfront's fee rates as the sandbox charges them (its defaults): the ledger's fees
        # then agree with the statements, and reconciliation finds no fee difference.
        await set_channel_fee_rate(db, DEV_ACCOUNT_ID, fee_rate_bps=60)
        await set_channel_fee_rate(db, "alipay_dev", fee_rate_bps=60)
        await set_channel_fee_rate(db, "stripe_dev", fee_rate_bps=290, fee_fixed_minor=30)
        await _dev_routing_rules(db, DEV_MERCHANT_ID, DEV_ACCOUNT_ID)
    finally:
        await db.dispose()


async def _dev_routing_rules(db: Database, merchant_id: str, wechat_account_id: str) -> None:
    """A routing table for the dev merchant, unless it has one: payments may omit the channel
    (CNY: WeChat Pay, then Alipay as the fallback; other currencies: Stripe)."""
    from channels.registry import CHANNELS
    from core import routing

    if await routing.load_rules(db, merchant_id, capabilities=CHANNELS):
        return
    rules = [
        routing.RuleSpec(10, wechat_account_id, "native", currency="CNY"),
        routing.RuleSpec(20, "alipay_dev", "qr", currency="CNY"),
        routing.RuleSpec(30, "alipay_dev", "page", currency="CNY"),
        routing.RuleSpec(40, "stripe_dev", "payment_intent"),
    ]
    await routing.replace_rules(db, merchant_id, rules, capabilities=CHANNELS)


def cmd_routing_rules(
    settings: Settings, merchant_id: str, rules_file: str | None, test_mode: bool = False
) -> None:
    """Print a merchant's routing rules, or replace them from a JSON file (``-``: stdin) of
    the body of ``PUT /v1/routing_rules``. Gateways use a change within 30 s."""
    from pathlib import Path

    raw = None
    if rules_file is not None:
        raw = sys.stdin.buffer.read() if rules_file == "-" else Path(rules_file).read_bytes()
    asyncio.run(
        _routing_rules(settings.for_mode("test" if test_mode else "live"), merchant_id, raw)
    )


async def _routing_rules(settings: Settings, merchant_id: str, raw: bytes | None) -> None:
    import orjson

    from channels.registry import CHANNELS
    from core import routing
    from core.errors import PayfrontError
    from core.store.db import Database
    from gateway.schemas import RoutingRulesPut, parse_body

    db = Database(settings.database_url)
    try:
        if raw is None:
            rules = await routing.load_rules(db, merchant_id, capabilities=CHANNELS)
        else:
            specs = [
                routing.RuleSpec(**rule.model_dump())
                for rule in parse_body(RoutingRulesPut, raw).rules
            ]
            rules = await routing.replace_rules(db, merchant_id, specs, capabilities=CHANNELS)
    except PayfrontError as exc:
        _fail(f"{exc.code}: {exc.message}")
    finally:
        await db.dispose()
    table = {"rules": [routing.rule_object(rule) for rule in rules]}
    print(orjson.dumps(table, option=orjson.OPT_INDENT_2).decode())


def cmd_reconcile(settings: Settings, args: argparse.Namespace) -> None:
    """Download, store and reconcile one day's statements (docs/reconciliation.md)."""
    from payfront.reconcile_cli import run_reconcile

    _require_master_key(settings)
    _require_redis(settings)
    raise SystemExit(
        run_reconcile(
            settings,
            account_id=args.account,
            channel=args.channel,
            day=args.date,
            output_format=args.format,
            test_mode=args.test_mode,
        )
    )


def _reconcile_arguments(command: argparse.ArgumentParser) -> None:
    from datetime import date

    which = command.add_mutually_exclusive_group(required=True)
    which.add_argument("--account", help="one channel account id")
    which.add_argument("--channel", help="every enabled account of this channel")
    command.add_argument(
        "--date", required=True, type=date.fromisoformat, help="the statement day, YYYY-MM-DD"
    )
    command.add_argument("--format", choices=("table", "json", "csv"), default="table")
    command.add_argument(
        "--test",
        dest="test_mode",
        action="store_true",
        help="test-mode accounts and orders (the shadow database, the sandbox)",
    )


COMMANDS: dict[str, tuple[Callable[..., None], str]] = {
    "gateway": (cmd_gateway, "run the HTTP gateway (merchant API, callbacks, tokens)"),
    "worker": (cmd_worker, "run an arq worker (channel calls, webhooks, sweeper)"),
    "sandbox": (cmd_sandbox, "run the channel sandbox (WeChat Pay, Alipay, Stripe emulators)"),
    "dev": (cmd_dev, "run sandbox, gateway and worker on the embedded defaults"),
    "migrate": (cmd_migrate, "bring the database to the latest schema"),
    "routing-rules": (cmd_routing_rules, "print or replace a merchant's routing rules"),
    "reconcile": (cmd_reconcile, "reconcile channel statements of one day against the orders"),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="payfront",
        description="Asynchronous payment channel gateway. Settings come from PAYFRONT_* "
        "environment variables (see README).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (_, help_text) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text)
        if name == "worker":
            command.add_argument(
                "--pool",
                choices=("all", "core", "notify"),
                default="all",
                help="core: prepay, order checks, sweeper; notify: merchant webhooks; "
                "all (default): both, each with its own job slots",
            )
        if name == "routing-rules":
            command.add_argument("merchant_id")
            command.add_argument(
                "--set",
                dest="rules_file",
                metavar="FILE",
                help='replace the rules with those of FILE ({"rules": [...]}, as the API '
                "takes them; - for stdin); without it: print them",
            )
            command.add_argument(
                "--test",
                dest="test_mode",
                action="store_true",
                help="the merchant's test-mode rules (in the shadow database)",
            )
        if name == "reconcile":
            _reconcile_arguments(command)
    args = parser.parse_args(argv)
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is optional off Linux/macOS
        pass
    settings = Settings()
    if args.command == "worker":
        cmd_worker(settings, args.pool)
    elif args.command == "reconcile":
        cmd_reconcile(settings, args)
    elif args.command == "routing-rules":
        cmd_routing_rules(settings, args.merchant_id, args.rules_file, args.test_mode)
    else:
        COMMANDS[args.command][0](settings)


if __name__ == "__main__":
    main()
