"""The chaos run: many payments through real processes (sandbox, gateway, two workers) while
the channel fails, hangs, rate-limits, duplicates and loses callbacks, workers are SIGKILLed
and Redis forgets everything once. Afterwards, with faults cleared, every order must be
settled, agree with the channel, be paid at most once and be told to the merchant.

Size: ``PAYFRONT_CHAOS_SIZE`` unset (CI: 150 payments, about a minute and a half), ``full``
(3000) or a number. Seeded: the shoppers' plan, fault phases and kills repeat from run to
run (the sandbox process draws its own faults, and timing varies).
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa
from redis.asyncio import Redis

from core import ids
from core.ledger.balances import check_ledger
from core.merchants import add_webhook_endpoint
from core.store.db import Database
from core.store.tables import (
    anomalies,
    events,
    ledger_entries,
    outbox,
    pay_orders,
    webhook_deliveries,
)
from core.vault import Vault, new_master_key
from payfront.devsetup import provision_wechat_sandbox_account
from sdk import verify_webhook
from tests.chaos.harness import (
    ChaosSize,
    FlakyInbox,
    Processes,
    log_counts,
    log_lines_about,
    log_records,
    process_env,
    scratch_database,
    serve_inbox,
    wait_http,
)
from tests.chaos.scenario import (
    Run,
    Shopper,
    change_faults,
    kill_workers,
    lose_redis,
    plan_shoppers,
    play,
)
from tests.conftest import free_port

SEED = 20240611
SIZE = ChaosSize.from_env()
# "flushdb" (default): the run's keys vanish at once; "scan": key by key while in use.
REDIS_LOSS = os.environ.get("PAYFRONT_CHAOS_REDIS_LOSS", "flushdb")
# A directory to copy the processes' logs to (pytest keeps only its last 3 tmp dirs).
ARTIFACTS = os.environ.get("PAYFRONT_CHAOS_ARTIFACTS")
OPEN_STATUSES = ("pending", "prepaying", "awaiting_payment")
# No refusal is injected (faults are all retryable or unknown-outcome), so no payment may
# end prepay_failed: retries (PAYFRONT_PREPAY_MAX_TRIES=10) outlast every fault phase. The one
# exception is the circuit breaker's, by design (docs/routing.md): a payment whose first
# prepay meets its account's circuit open (a phase of every call failing opens it) fails at
# once with CHANNEL_UNAVAILABLE, nothing sent to the channel, the merchant told.
EXPECTED_PREPAY_FAILED = 0
BREAKER_REFUSAL = "CHANNEL_UNAVAILABLE"

pytestmark = [pytest.mark.chaos, pytest.mark.e2e, pytest.mark.timeout(SIZE.test_timeout_s)]


@dataclass
class Outcome:
    """What the database, the sandbox and the merchant's endpoint hold after the run."""

    orders: dict[str, Any]  # pay_no → pay_orders row
    events_by_pay: dict[str, list[tuple[str, str]]]  # pay_no → [(event id, type)]
    pending_outbox: list[Any]
    pending_deliveries: list[Any]
    anomalies: list[Any]
    at_channel: dict[str, dict[str, Any] | None]  # pay_no → sandbox view (None: unknown)


async def _arq_state(
    redis: Redis, env: dict[str, str], owed: list[tuple[str, str]]
) -> dict[str, str]:
    """Evidence for work still owed, by (job kind, ref): does arq hold the job, is it queued?"""
    state = {}
    for kind, ref in owed:
        notify_pool = kind in ("notify", "post_entry")
        queue = env["PAYFRONT_NOTIFY_QUEUE_NAME" if notify_pool else "PAYFRONT_QUEUE_NAME"]
        job_id = f"{queue}:{kind}:{ref}"
        ttl = await redis.pttl(f"arq:job:{job_id}")
        score = await redis.zscore(queue, job_id)
        running = await redis.exists(f"arq:in-progress:{job_id}")
        state[f"{kind}:{ref}"] = (
            f"arq job key {'absent' if ttl == -2 else f'present (ttl {ttl / 1000:.0f} s)'}, "
            f"{'queued' if score is not None else 'not queued'}, "
            f"{'in progress' if running else 'not in progress'}"
        )
    return state


def _copy_logs(source: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for log in source.glob("*.log"):
        shutil.copy(log, target / log.name)


async def _rows(db: Database, query: Any) -> list[Any]:
    async with db.read() as conn:
        return list((await conn.execute(query)).all())


def _received_event_ids(inbox: FlakyInbox) -> set[str]:
    return {orjson.loads(body)["id"] for _, _, body in inbox.received}


async def _wait_quiescent(db: Database, inbox: FlakyInbox, deadline: float) -> bool:
    """Until nothing is open, owed or undelivered (or the deadline); progress every 5 s."""
    started = last_print = time.monotonic()
    while True:
        statuses = Counter(
            dict(
                await _rows(
                    db,
                    sa.select(pay_orders.c.status, sa.func.count()).group_by(pay_orders.c.status),
                )
            )
        )
        owed = len(await _rows(db, sa.select(outbox.c.id).where(outbox.c.status == "pending")))
        due = len(
            await _rows(
                db,
                sa.select(webhook_deliveries.c.id).where(webhook_deliveries.c.status == "pending"),
            )
        )
        event_ids = {row[0] for row in await _rows(db, sa.select(events.c.id))}
        undelivered = len(event_ids - _received_event_ids(inbox))
        open_orders = sum(statuses[s] for s in OPEN_STATUSES)
        quiet = open_orders == 0 and owed == 0 and due == 0 and undelivered == 0
        now = time.monotonic()
        if quiet or now - last_print >= 5 or now > deadline:
            print(
                f"  settling {now - started:5.1f}s: {dict(sorted(statuses.items()))} "
                f"outbox pending {owed}, deliveries pending {due}, "
                f"events undelivered {undelivered}/{len(event_ids)}",
                flush=True,
            )
            last_print = now
        if quiet:
            return True
        if now > deadline:
            return False
        await asyncio.sleep(1)


async def _collect(run: Run) -> Outcome:
    db = run.db
    orders = {row.pay_no: row for row in await _rows(db, sa.select(pay_orders))}
    events_by_pay: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for row in await _rows(db, sa.select(events.c.id, events.c.type, events.c.pay_no)):
        events_by_pay[row.pay_no].append((row.id, row.type))
    limit = asyncio.Semaphore(20)

    async def view(pay_no: str) -> tuple[str, dict[str, Any] | None]:
        async with limit:
            answer = await run.http.get(
                f"{run.procs.sandbox_url}/sandbox/wechatpay/orders/{pay_no}",
                params={"mchid": run.mchid},
            )
        return pay_no, (answer.json() if answer.status_code == 200 else None)

    return Outcome(
        orders=orders,
        events_by_pay=dict(events_by_pay),
        pending_outbox=await _rows(db, sa.select(outbox).where(outbox.c.status == "pending")),
        pending_deliveries=await _rows(
            db, sa.select(webhook_deliveries).where(webhook_deliveries.c.status == "pending")
        ),
        anomalies=await _rows(db, sa.select(anomalies)),
        at_channel=dict(await asyncio.gather(*(view(pay_no) for pay_no in orders))),
    )


def _refused_by_breaker(order: Any, channel: dict[str, Any] | None) -> bool:
    """Failed at once by an open circuit: correct only if nothing reached the channel."""
    return order.failure_code == BREAKER_REFUSAL and channel is None


def _order_problems(shopper: Shopper, order: Any, outcome: Outcome) -> list[str]:
    """Everything wrong with one payment, judged against the channel's (sandbox's) view."""
    problems = []
    channel = outcome.at_channel.get(order.pay_no)
    channel_state = channel["trade_state"] if channel else None
    types = [kind for _, kind in outcome.events_by_pay.get(order.pay_no, [])]
    if order.status in OPEN_STATUSES:
        problems.append(f"not settled: {order.status}")
    if order.status == "prepay_failed" and not _refused_by_breaker(order, channel):
        problems.append(f"prepay_failed ({order.failure_code}: {order.failure_message})")
    if order.amount_minor != shopper.amount:
        problems.append(f"amount {order.amount_minor} != requested {shopper.amount}")
    if (order.status == "paid") != (channel_state == "SUCCESS"):
        problems.append(f"{order.status} here but {channel_state} at the channel")
    if channel_state == "SUCCESS":
        charged = channel["transaction"]["amount"]["total"]
        if charged != order.amount_minor:
            problems.append(f"channel charged {charged}, order is for {order.amount_minor}")
    if order.status == "closed" and channel_state != "CLOSED":
        problems.append(f"closed here, {channel_state} at the channel")
    expected_events = {
        "paid": ["payment.succeeded"],
        "closed": ["payment.closed"],
        "prepay_failed": ["payment.failed"],
    }.get(order.status, [])
    if types != expected_events:
        problems.append(f"events {types} for a {order.status} order")
    # The shopper's own experience must agree too.
    paid_by_shopper = shopper.kind in ("pay", "pay_twice") and shopper.pay_answers[:1] == [200]
    if paid_by_shopper and order.status != "paid":
        problems.append(f"shopper paid (200) but the order is {order.status}")
    if shopper.kind == "never" and order.status == "paid":
        problems.append("never paid by the shopper, yet paid")
    if shopper.kind == "race" and shopper.pay_answers:
        paid_there = shopper.pay_answers[0] == 200
        if paid_there != (order.status == "paid"):
            problems.append(f"race: shopper got {shopper.pay_answers[0]}, order {order.status}")
    return problems


def _webhook_problems(outcome: Outcome, inbox: FlakyInbox, secret: str) -> list[str]:
    problems = []
    known = {
        eid: (pay_no, kind) for pay_no, evs in outcome.events_by_pay.items() for eid, kind in evs
    }
    succeeded_by_pay: dict[str, set[str]] = defaultdict(set)
    for received_at, headers, body in inbox.received:
        try:
            event = verify_webhook(body, headers["payfront-signature"], secret, now=received_at)
        except Exception as exc:
            problems.append(f"webhook with a bad signature ({exc}): {body[:120]!r}")
            continue
        if headers.get("payfront-event-id") != event.id or event.id not in known:
            problems.append(f"webhook for an unknown event {event.id}")
            continue
        if event.type == "payment.succeeded":
            succeeded_by_pay[known[event.id][0]].add(event.id)
    for eid in sorted(set(known) - _received_event_ids(inbox)):
        problems.append(f"event {eid} {known[eid]} never reached the merchant")
    for pay_no, ids_ in succeeded_by_pay.items():
        if len(ids_) > 1:
            problems.append(f"{pay_no}: {len(ids_)} different payment.succeeded events delivered")
    return problems


async def _ledger_problems(db: Database, outcome: Outcome) -> list[str]:
    """The ledger balances, agrees with its lines, and holds exactly one entry per paid order
    (from its payment.succeeded event) and none for an order that is not paid."""
    check = await check_ledger(db)
    problems = [f"ledger: unbalanced entry for event {e}" for e in check.unbalanced_entries]
    problems += [f"ledger: {mismatch}" for mismatch in check.balance_mismatches]
    entries: dict[str, list[str]] = defaultdict(list)
    for row in await _rows(
        db,
        sa.select(ledger_entries.c.pay_no, ledger_entries.c.source_event_id).where(
            ledger_entries.c.event_type == "payment.succeeded"
        ),
    ):
        entries[row.pay_no].append(row.source_event_id)
    for pay_no, order in outcome.orders.items():
        succeeded = [
            e for e, kind in outcome.events_by_pay.get(pay_no, []) if kind == "payment.succeeded"
        ]
        wanted = succeeded if order.status == "paid" else []
        if sorted(entries.get(pay_no, [])) != sorted(wanted):
            problems.append(f"ledger: {pay_no} ({order.status}) has entries {entries.get(pay_no)}")
    return problems


def _evidence(run: Run, outcome: Outcome, pay_no: str) -> str:
    order = outcome.orders[pay_no]
    view = outcome.at_channel.get(pay_no)
    if view is not None:
        view = {k: view[k] for k in ("trade_state", "transaction", "callbacks_lost")} | {
            "callback_attempts": view["callback_attempts"][-6:]
        }
    lines = "\n      ".join(log_lines_about(run.procs.logs, pay_no, limit=25))
    return (
        f"  --- {pay_no}\n    order: {dict(order._mapping)}\n"
        f"    events: {outcome.events_by_pay.get(pay_no)}\n    at the channel: {view}\n"
        f"    logs:\n      {lines}"
    )


def _summary(
    run: Run,
    shoppers: list[Shopper],
    outcome: Outcome,
    inbox: FlakyInbox,
    settled_s: float,
    database: str,
) -> str:
    statuses = Counter(order.status for order in outcome.orders.values())
    kinds = Counter(s.kind for s in shoppers)
    race = Counter(
        outcome.orders[s.pay_no].status for s in shoppers if s.kind == "race" and s.pay_no
    )
    views = [v for v in outcome.at_channel.values() if v]
    attempts = [a for v in views for a in v["callback_attempts"]]
    logged = log_counts(log_records(run.procs.logs))
    rows = [
        ("payments", f"{len(shoppers)} on {database}, 2 worker slots, seed {SEED}"),
        *((f"  status {k}", str(v)) for k, v in sorted(statuses.items())),
        ("shopper plan", ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()))),
        ("  race outcomes", str(dict(race))),
        ("fault phases", f"{len(run.fault_phases)} (3 s each, first with every fault on)"),
        ("callbacks lost", str(sum(v["callbacks_lost"] for v in views))),
        ("callbacks sent", f"{len(attempts)} ({sum(a['duplicate'] for a in attempts)} dup)"),
        ("merchant 500s", str(inbox.refused)),
        ("worker SIGKILLs", str(run.procs.kills)),
        ("redis keys lost", f"{run.redis_keys_lost} at {run.redis_lost_at_s or 0:.1f} s"),
        *((f"  log {k}", str(v)) for k, v in sorted(logged.items())),
        ("webhooks received", f"{len(inbox.received)} for {len(_received_event_ids(inbox))} ev"),
        (
            "time",
            f"chaos {SIZE.chaos_s:.0f} s, settle {settled_s:.0f} s, total {run.elapsed():.0f} s",
        ),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k.ljust(width)}  {v}" for k, v in rows)


async def test_payments_survive_faults_kills_and_a_redis_loss(
    tmp_path: Path, redis_url: str
) -> None:
    rng = random.Random(SEED)
    run_id = uuid.uuid4().hex[:8]
    prefix = f"payfront:chaos:{run_id}"
    master_key = new_master_key()
    api_key = ids.new_api_key(livemode=False)
    merchant_id = f"mch_chaos_{run_id}"
    inbox = FlakyInbox(rng=random.Random(SEED + 1), failure_rate=0.05)
    redis = Redis.from_url(redis_url)
    async with (
        scratch_database(tmp_path) as database_url,
        serve_inbox(inbox, free_port()) as hook_url,
        httpx.AsyncClient(timeout=15) as http,
    ):
        env = process_env(
            database_url=database_url,
            redis_url=redis_url,
            prefix=prefix,
            master_key=master_key,
            tmp_path=tmp_path,
        )
        procs = Processes(env=env, logs=tmp_path)
        db = Database(database_url)
        try:
            procs.start("sandbox")
            await wait_http(f"{procs.sandbox_url}/sandbox/health")
            vault = Vault(master_key)
            account = await provision_wechat_sandbox_account(
                db,
                vault,
                sandbox_url=procs.sandbox_url,
                merchant_id=merchant_id,
                merchant_name="Chaos shop",
                api_key=api_key,
                account_id=f"wx_chaos_{run_id}",
            )
            _, secret = await add_webhook_endpoint(db, vault, merchant_id=merchant_id, url=hook_url)
            procs.start("gateway")
            procs.start_worker(0)
            procs.start_worker(1)
            await wait_http(f"{procs.gateway_url}/readyz")

            run = Run(
                procs=procs,
                http=http,
                db=db,
                api_key=api_key,
                mchid=account.keys.mchid,
                run_id=run_id,
                started=time.monotonic(),
                size=SIZE,
            )
            shoppers = plan_shoppers(rng, SIZE)
            database = database_url.split("+")[0]
            print(f"\nchaos: {SIZE.payments} payments on {database}, logs in {tmp_path}")
            deadline = time.monotonic() + SIZE.shopper_timeout_s
            playing = [asyncio.create_task(play(run, s, deadline)) for s in shoppers]
            agents = [
                asyncio.create_task(change_faults(run, random.Random(SEED + 2))),
                asyncio.create_task(kill_workers(run, random.Random(SEED + 3))),
                asyncio.create_task(
                    lose_redis(
                        run,
                        redis,
                        prefix,
                        at_s=SIZE.arrival_window_s / 2,
                        atomic=REDIS_LOSS != "scan",
                    )
                ),
            ]
            await asyncio.sleep(SIZE.chaos_s)
            run.chaos_over.set()
            await asyncio.gather(*agents)
            chaos_ended = time.monotonic()
            print(f"  chaos over at {run.elapsed():.0f} s; faults cleared, both workers up")
            await asyncio.gather(*playing)
            quiet = await _wait_quiescent(db, inbox, chaos_ended + SIZE.settle_timeout_s)
            settled_s = time.monotonic() - chaos_ended
            outcome = await _collect(run)
            ledger_problems = await _ledger_problems(db, outcome)
            crashed = procs.crashed()
            owed = [(row.kind, row.ref) for row in outcome.pending_outbox] + [
                ("check", o.pay_no)
                for o in outcome.orders.values()
                if o.status == "awaiting_payment"
            ]
            arq_state = await _arq_state(redis, env, owed)
        finally:
            procs.stop_all()
            if ARTIFACTS:
                _copy_logs(tmp_path, Path(ARTIFACTS) / run_id)
            await db.dispose()
            async for key in redis.scan_iter(match=f"*{prefix}*", count=1000):
                await redis.delete(key)
            await redis.aclose()

    print(_summary(run, shoppers, outcome, inbox, settled_s, database))

    problems: dict[str, list[str]] = {}
    for shopper in shoppers:
        if shopper.error or shopper.pay_no is None:
            problems[f"shopper-{shopper.index}"] = [f"harness: {shopper.error}"]
            continue
        found = _order_problems(shopper, outcome.orders[shopper.pay_no], outcome)
        if shopper.kind in ("pay", "pay_twice") and shopper.pay_answers[:1] not in ([], [200]):
            found.append(f"the sandbox refused the shopper's payment: {shopper.pay_answers}")
        if found:
            problems[shopper.pay_no] = found
    general = _webhook_problems(outcome, inbox, secret)
    general += [
        f"outbox still owes {row.kind} {row.ref} (created {row.created_at:%H:%M:%S.%f}; "
        f"{arq_state[f'{row.kind}:{row.ref}']})"
        for row in outcome.pending_outbox
    ]
    general += [
        f"awaiting_payment {key.split(':', 1)[1]}: {state}"
        for key, state in arq_state.items()
        if key.startswith("check:")
    ]
    general += [f"delivery {row.id} still pending" for row in outcome.pending_deliveries]
    general += [f"anomaly {row.pay_no} {row.kind} {row.detail}" for row in outcome.anomalies]
    general += [f"process exited by itself: {name}" for name in crashed]
    general += ledger_problems
    failed = sum(
        o.status == "prepay_failed" and not _refused_by_breaker(o, outcome.at_channel.get(o.pay_no))
        for o in outcome.orders.values()
    )
    if failed != EXPECTED_PREPAY_FAILED:
        general.append(f"{failed} prepay_failed, expected {EXPECTED_PREPAY_FAILED}")
    if not quiet:
        general.append(f"not quiescent {SIZE.settle_timeout_s:.0f} s after the chaos ended")

    if problems or general:
        report = [f"{len(problems)} payments wrong, {len(general)} other problems"]
        report += [f"  {p}" for p in general[:30]]
        report += [f"  {pay_no}: {'; '.join(found)}" for pay_no, found in problems.items()]
        report += [_evidence(run, outcome, p) for p in list(problems)[:8] if p in outcome.orders]
        print("\n".join(report))
        pytest.fail("\n".join(report[:60]), pytrace=False)
