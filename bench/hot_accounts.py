"""Issue 5, point 2: postings per second to ONE merchant account from K concurrent writers,
each posting a whole payment entry (core.ledger.posting.write_entry, its own transaction),
with per-posting balance-row updates and with the hot-account buffer (folded meanwhile, as
the ``apply_hot_postings`` cron does), on SQLite and PostgreSQL, measured in the same run."""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.machine import Machine, code_version
from bench.report import run_dir, say, write_json
from bench.session import saved, scratch_dir, usable_databases
from bench.stack import ROOT, scratch_database
from core.ledger import hot
from core.ledger.accounts import (
    channel_clearing,
    channel_fees,
    merchant_pending,
    set_account_hot,
    set_merchant_hot,
)
from core.ledger.balances import account_balance, check_ledger
from core.ledger.entries import payment_entry
from core.ledger.posting import write_entry
from core.merchants import create_merchant
from core.store.db import Database
from core.store.tables import ledger_hot_postings

MODES = ("per-row", "hot")
AMOUNT, FEE = 1_000, 6
CHANNEL_ACCOUNT = "wx_bench_hot"


@dataclass(frozen=True, slots=True)
class HotOptions:
    databases: tuple[str, ...]
    writers: tuple[int, ...]
    duration_s: float
    warmup_s: float


@dataclass(frozen=True, slots=True)
class Step:
    database: str
    mode: str
    writers: int
    postings: int
    seconds: float
    p50_ms: float
    p99_ms: float
    folded: int  # buffered rows folded during the step (hot mode)
    backlog: int  # buffered rows left unfolded when the step ended
    exact: bool  # the balance read equalled the sum of what was posted

    @property
    def per_s(self) -> float:
        return self.postings / self.seconds if self.seconds else 0.0

    def as_json(self) -> dict[str, Any]:
        return asdict(self) | {"postings_per_s": round(self.per_s, 1)}


def _percentile(samples: list[float], q: float) -> float:
    if not samples:
        return 0.0
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Bench:
    """One database: a fresh merchant per step, so each step starts from empty accounts."""

    def __init__(self, kind: str, url: str) -> None:
        self.kind = kind
        self.db = Database(url)

    async def step(self, mode: str, writers: int, duration_s: float) -> Step:
        merchant_id = await create_merchant(self.db, f"bench {mode} {writers}")
        pending = merchant_pending(merchant_id, "CNY", False)
        clearing = channel_clearing(f"{CHANNEL_ACCOUNT}_{merchant_id[-6:]}", "CNY", False)
        if mode == "hot":
            await set_merchant_hot(self.db, merchant_id, True)
            await set_account_hot(self.db, clearing, True)
            await set_account_hot(self.db, channel_fees(clearing.owner_id, "CNY", False), True)
        latencies: list[float] = []
        deadline = time.perf_counter() + duration_s
        stop = asyncio.Event()

        async def writer(n: int) -> int:
            done = 0
            while time.perf_counter() < deadline:
                plan = payment_entry(
                    event_id=f"evt_b{uuid.uuid4().hex[:24]}",
                    merchant_id=merchant_id,
                    pay_no=f"pay_b{n}_{done}",
                    channel_account_id=clearing.owner_id,
                    currency="CNY",
                    livemode=False,
                    amount_minor=AMOUNT,
                    fee_minor=FEE,
                    effective_at=datetime.now(UTC),
                )
                started = time.perf_counter()
                await self.db.run_write(write_entry, plan)
                latencies.append((time.perf_counter() - started) * 1000)
                done += 1
            return done

        async def folder() -> int:
            folded = 0
            while not stop.is_set():
                folded += await hot.apply_hot_postings(self.db, batch_size=2_000, max_batches=5)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.05)
            return folded

        fold_task = asyncio.create_task(folder()) if mode == "hot" else None
        started = time.perf_counter()
        counts = await asyncio.gather(*(writer(n) for n in range(writers)))
        seconds = time.perf_counter() - started
        stop.set()
        folded = await fold_task if fold_task is not None else 0
        postings = sum(counts)
        expected = postings * (AMOUNT - FEE)
        exact = await account_balance(self.db, pending.id) == expected
        backlog = await self._backlog()
        await hot.apply_hot_postings(self.db, max_batches=10_000)
        exact = exact and await account_balance(self.db, pending.id) == expected
        return Step(
            database=self.kind,
            mode=mode,
            writers=writers,
            postings=postings,
            seconds=seconds,
            p50_ms=statistics.median(latencies) if latencies else 0.0,
            p99_ms=_percentile(latencies, 0.99),
            folded=folded,
            backlog=backlog,
            exact=exact,
        )

    async def _backlog(self) -> int:
        async with self.db.read() as conn:
            return int(
                (
                    await conn.execute(sa.select(sa.func.count()).select_from(ledger_hot_postings))
                ).scalar_one()
            )


def _step_line(step: Step) -> str:
    exact = "balance exact" if step.exact else "BALANCE WRONG"
    fold = f", folded {step.folded:,} (backlog {step.backlog:,})" if step.mode == "hot" else ""
    return (
        f"    {step.database:<8} {step.mode:<7} {step.writers:>3} writers  "
        f"{step.per_s:9,.0f} postings/s  p50 {step.p50_ms:6.2f} ms  p99 {step.p99_ms:7.2f} ms"
        f"{fold}; {exact}"
    )


def _table(steps: list[Step]) -> list[str]:
    header = (
        f"{'database':<9} {'writers':>7} {'per-row/s':>10} {'hot/s':>10} {'hot ÷ per-row':>14} "
        f"{'p99 per-row':>12} {'p99 hot':>9}  balances"
    )
    lines = [header, "-" * len(header)]
    for (kind, writers), pair in _pairs(steps).items():
        row, hot_step = pair["per-row"], pair["hot"]
        ratio = hot_step.per_s / row.per_s if row.per_s else 0.0
        exact = "exact" if row.exact and hot_step.exact else "WRONG"
        lines.append(
            f"{kind:<9} {writers:>7} {row.per_s:>10,.0f} {hot_step.per_s:>10,.0f} "
            f"{ratio:>13.2f}x {row.p99_ms:>10.2f}ms {hot_step.p99_ms:>7.2f}ms  {exact}"
        )
    return lines


def _pairs(steps: list[Step]) -> dict[tuple[str, int], dict[str, Step]]:
    pairs: dict[tuple[str, int], dict[str, Step]] = {}
    for step in steps:
        pairs.setdefault((step.database, step.writers), {})[step.mode] = step
    return {key: pair for key, pair in pairs.items() if len(pair) == len(MODES)}


def _plot(steps: list[Step], path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for kind in dict.fromkeys(step.database for step in steps):
        for mode in MODES:
            chosen = [s for s in steps if s.database == kind and s.mode == mode]
            axes.plot(
                [s.writers for s in chosen], [s.per_s for s in chosen], "o-", label=f"{kind} {mode}"
            )
    axes.set_xscale("log", base=2)
    axes.set_xlabel("concurrent writers (one merchant account)")
    axes.set_ylabel("postings/s")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.suptitle("payfront ledger: per-row balance update vs hot-account buffer")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


async def _measure(kind: str, url: str, options: HotOptions) -> list[Step]:
    bench = Bench(kind, url)
    steps: list[Step] = []
    try:
        say(f"  {kind}: warm-up {options.warmup_s:g} s")
        await bench.step("per-row", max(options.writers), options.warmup_s)
        for writers in options.writers:
            # Both modes at each level in turn, so each ratio compares neighbouring figures.
            for mode in MODES:
                step = await bench.step(mode, writers, options.duration_s)
                steps.append(step)
                say(_step_line(step))
        check = await check_ledger(bench.db)
        say(f"  {kind}: ledger check {'ok' if check.ok else check}")
    finally:
        await bench.db.dispose()
    return steps


def run_hot_accounts(options: HotOptions) -> int:
    out = run_dir("hot-accounts")
    machine = Machine.probe()
    code = code_version(ROOT)
    say("payfront bench: hot accounts, postings to one merchant account")
    say(f"  payfront:  {code}")
    say(f"  machine:   {machine.describe()}")
    say(
        f"  each posting: one payment entry (5 lines, 3 accounts) in its own transaction, "
        f"{options.duration_s:g} s per step; writers are coroutines of this one process"
    )
    say(f"  results:   {out.relative_to(ROOT)}")
    steps: list[Step] = []
    with scratch_dir() as workdir:
        for kind in usable_databases(options.databases):
            with scratch_database(kind, workdir) as url:
                steps.extend(asyncio.run(_measure(kind, url, options)))
    after = Machine.probe()
    say()
    say(f"Machine after the run: {after.describe()}")
    say()
    say("Postings/s to one merchant account (hot ÷ per-row measured in the same run):")
    for line in _table(steps):
        say("  " + line)
    say(
        "  (per-row: every posting updates the balance rows in its transaction; hot: it "
        "appends buffer rows, folded every 50 ms meanwhile; balances exact = the balance read "
        "with the buffer, and again after the last fold, equals what was posted)"
    )
    path = write_json(
        out / "result.json",
        {
            "payfront": code,
            "machine": machine.as_json(),
            "machine_after": after.as_json(),
            "scenario": "hot-accounts",
            "options": asdict(options),
            "steps": [step.as_json() for step in steps],
            "ratios": [
                {
                    "database": kind,
                    "writers": writers,
                    "hot_over_per_row": round(pair["hot"].per_s / pair["per-row"].per_s, 3)
                    if pair["per-row"].per_s
                    else None,
                }
                for (kind, writers), pair in _pairs(steps).items()
            ],
        },
    )
    saved(path, _plot(steps, out / "hot-accounts.png"))
    return 0 if all(step.exact for step in steps) else 1
