"""Statements and daily reconciliation: download one channel account's statement for one
day through its adapter, store it, match it against the orders (core.reconcile), and fix the
safe differences through the paths a callback or the check jobs take — never by writing a
state directly.

Safe to run again: the statement is replaced, differences are kept once per key, and the
fixes are the check jobs, idempotent themselves."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import structlog
from arq import Retry, cron
from arq.cron import CronJob

from channels.base import HttpRequest, StatementLine
from channels.errors import ChannelError, ChannelFatal, ChannelRetryable, ChannelUnknownOutcome
from channels.transport import send
from core import context
from core.metrics import CHANNEL_ERRORS, CHANNEL_LATENCY
from core.reconcile import service
from core.reconcile import statements as stored
from core.reconcile.matching import Fix
from core.reconcile.statements import LineRecord, enabled_accounts, load_account, previous_day
from core.settings import Settings
from workers import limits
from workers.check import check_order
from workers.context import WorkerContext
from workers.instrument import instrumented
from workers.refund import check_refund

log = structlog.get_logger(__name__)

# progress(stage, done, total): stages "download" (pages; total unknown), "match" (lines),
# "fix" (differences payfront fixes).
Progress = Callable[[str, int, int | None], None]
MAX_PAGES = 10_000
# A job whose channel could not answer runs again (the notify pool allows three tries).
RETRIES, RETRY_AFTER_S = 3, 300.0


def _now() -> datetime:
    return datetime.now(UTC)


def _quiet(stage: str, done: int, total: int | None) -> None:
    return None


def _error_kind(exc: ChannelError) -> str:
    if isinstance(exc, ChannelRetryable):
        return "retryable"
    if isinstance(exc, ChannelUnknownOutcome):
        return "unknown_outcome"
    return "fatal"


def line_record(line: StatementLine) -> LineRecord:
    return LineRecord(
        kind=line.kind.value,
        out_trade_no=line.out_trade_no,
        amount_minor=line.amount_minor,
        currency=line.currency,
        fee_minor=line.fee_minor,
        occurred_at=line.occurred_at,
        channel_state=line.channel_state,
        channel_trade_no=line.channel_trade_no,
        out_refund_no=line.out_refund_no,
        channel_refund_no=line.channel_refund_no,
    )


async def download_statement(
    w: WorkerContext, account_id: str, day: date, progress: Progress = _quiet
) -> list[LineRecord]:
    """Every line of the account's statement of ``day``, following the adapter's pages."""
    channel, _ = await w.channels.get(account_id)
    request: HttpRequest | None = channel.build_statement(day, now=_now())
    cursor: dict[str, str] = {}
    lines: list[LineRecord] = []
    for page_no in range(1, MAX_PAGES + 1):
        if request is None:
            return lines
        labels = (channel.name, account_id, "statement")
        started = time.perf_counter()
        try:
            async with limits.guarded(w, account_id):
                response = await send(w.http, request, traceparent=context.outbound_traceparent())
            page = channel.parse_statement(response, cursor=cursor, now=_now())
        except ChannelError as exc:
            CHANNEL_ERRORS.labels(*labels, _error_kind(exc)).inc()
            raise
        finally:
            CHANNEL_LATENCY.labels(*labels).observe(time.perf_counter() - started)
        lines.extend(line_record(line) for line in page.lines)
        request, cursor = page.next_request, dict(page.cursor)
        progress("download", page_no, None)
    raise ChannelFatal("STATEMENT_TOO_LONG", f"more than {MAX_PAGES} statement pages")


async def store_day(
    w: WorkerContext, account_id: str, day: date, progress: Progress = _quiet
) -> int:
    """Download and store the day's statement (replacing an earlier download)."""
    account = await load_account(w.db, account_id)
    lines = await download_statement(w, account_id, day, progress)
    return await stored.store_statement(w.db, account, day, lines, _now())


async def reconcile_day(
    w: WorkerContext, account_id: str, day: date, progress: Progress = _quiet
) -> dict[str, Any]:
    """Download, store, match, fix what is safe, and return the run's summary."""
    await store_day(w, account_id, day, progress)
    found = await service.match_stored_day(
        w.db, account_id, day, progress=lambda done, total: progress("match", done, total)
    )
    fixed = 0
    ctx = {"payfront": w}
    for done, (difference_id, finding) in enumerate(found.fixable, start=1):
        if finding.fix is Fix.QUERY_PAYMENT and finding.pay_no is not None:
            outcome = await check_order(ctx, finding.pay_no)
        elif finding.fix is Fix.QUERY_REFUND and finding.refund_no is not None:
            outcome = await check_refund(ctx, finding.refund_no)
        else:
            continue
        assert finding.fix is not None
        if await service.confirm_fix(w.db, difference_id, finding.fix, str(outcome)):
            fixed += 1
        log.info("reconcile.fix", fix=finding.fix, reference=finding.reference, outcome=outcome)
        progress("fix", done, len(found.fixable))
    summary = await service.finish_run(w.db, found, fixed)
    log.info(
        "reconcile.day",
        account_id=account_id,
        day=day.isoformat(),
        counts=summary["counts"],
        fixed=fixed,
        still_open=summary["open"],
    )
    return summary


def _day(text: str) -> date:
    return date.fromisoformat(text)


async def store_statement(ctx: dict[str, Any], account_id: str, day: str) -> str:
    """arq job: download and store one account's statement of one day."""
    w: WorkerContext = ctx["payfront"]
    try:
        count = await store_day(w, account_id, _day(day))
    except ChannelError as exc:
        log.warning("statement.channel_error", code=exc.code, message=exc.message)
        return f"channel_error:{exc.code}"
    return f"stored:{count}"


async def reconcile_statement(ctx: dict[str, Any], account_id: str, day: str) -> str:
    """arq job: reconcile one account's day (download, match, fix, summary)."""
    w: WorkerContext = ctx["payfront"]
    structlog.contextvars.bind_contextvars(job="reconcile", channel_account_id=account_id)
    try:
        summary = await reconcile_day(w, account_id, _day(day))
    except ChannelError as exc:
        log.warning("reconcile.channel_error", code=exc.code, message=exc.message)
        job_try: int = ctx.get("job_try", 1)
        if isinstance(exc, ChannelRetryable | ChannelUnknownOutcome) and job_try < RETRIES:
            # The channel could not answer now: the whole day again, later (it is idempotent).
            raise Retry(defer=RETRY_AFTER_S * job_try) from exc
        return f"channel_error:{exc.code}"
    finally:
        structlog.contextvars.unbind_contextvars("job", "channel_account_id")
    return f"open:{summary['open']}"


async def reconcile_yesterday(ctx: dict[str, Any]) -> str:
    """arq cron: enqueue the reconciliation of every enabled account's previous statement day
    (one job each, with a stable id: a second enqueue of the same day is a no-op)."""
    w: WorkerContext = ctx["payfront"]
    queue = w.settings.notify_queue_name
    enqueued = 0
    for account_id, channel in await enabled_accounts(w.db):
        day = previous_day(channel, _now()).isoformat()
        job = await w.redis.enqueue_job(
            reconcile_statement.__name__,
            account_id,
            day,
            _job_id=f"{queue}:reconcile:{account_id}:{day}",
            _queue_name=queue,
        )
        enqueued += job is not None
    return f"enqueued:{enqueued}"


def reconcile_crons(settings: Settings) -> list[CronJob]:
    """The daily schedule, in live mode only (test-mode accounts talk to the sandbox and are
    reconciled on demand): at 02:30 UTC, 10:30 in Beijing — after WeChat Pay (09:00) and Alipay
    publish the previous day's bills, and 2.5 hours after Stripe's UTC day ended."""
    if settings.mode != "live":
        return []
    return [
        cron(
            instrumented(reconcile_yesterday),
            name=f"{settings.notify_queue_name}:reconcile_yesterday",
            hour={2},
            minute={30},
            second={0},
            unique=True,
        )
    ]
