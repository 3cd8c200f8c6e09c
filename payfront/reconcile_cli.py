"""``payfront reconcile``: reconcile channel statement days from the command line, with a
progress bar on stderr and a summary on stdout (a table for people, JSON or CSV for
machines)."""

from __future__ import annotations

import asyncio
import csv
import io
import sys
from datetime import date
from typing import Any

import orjson
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from core.settings import Settings

COLUMNS = (
    "channel_account",
    "date",
    "statement_lines",
    "matched",
    "long",
    "short",
    "amount_mismatch",
    "status_mismatch",
    "fee_mismatch",
    "fixed",
    "open",
)
_TEXT = frozenset({"channel_account", "date"})
_LABELS = {
    "channel_account": "account",
    "statement_lines": "lines",
    "amount_mismatch": "amount",
    "status_mismatch": "status",
    "fee_mismatch": "fee",
}
_STAGES = {"download": "downloading", "match": "matching", "fix": "fixing"}


def run_reconcile(
    settings: Settings,
    *,
    account_id: str | None,
    channel: str | None,
    day: date,
    output_format: str,
    test_mode: bool,
) -> int:
    """Reconcile and print; the exit status is 1 when an account could not be reconciled."""
    from core.logs import configure_logging

    # Logs go to stderr: stdout carries only the summary (JSON and CSV are for machines).
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    mode_settings = settings.for_mode("test" if test_mode else "live")
    summaries, failures = asyncio.run(_reconcile(mode_settings, account_id, channel, day))
    for account, message in failures:
        print(f"payfront: {account}: {message}", file=sys.stderr)
    if output_format == "json":
        print(
            orjson.dumps({"object": "list", "data": summaries}, option=orjson.OPT_INDENT_2).decode()
        )
    elif output_format == "csv":
        sys.stdout.write(summary_csv(summaries))
    else:
        Console().print(summary_table(summaries, day))
    return 1 if failures else 0


async def _reconcile(
    settings: Settings, account_id: str | None, channel: str | None, day: date
) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    from arq import create_pool
    from arq.connections import RedisSettings

    from channels.errors import ChannelError
    from core.errors import PayfrontError
    from core.reconcile.statements import accounts_of_channel
    from workers.context import WorkerContext
    from workers.reconcile import reconcile_day

    redis = await create_pool(
        RedisSettings.from_dsn(settings.redis_url),
        job_serializer=orjson.dumps,
        job_deserializer=orjson.loads,
    )
    w = WorkerContext.build(settings, redis)
    summaries: list[dict[str, Any]] = []
    failures: list[tuple[str, str]] = []
    console = Console(stderr=True)
    try:
        accounts = [account_id] if account_id else await accounts_of_channel(w.db, channel or "")
        if not accounts:
            failures.append((channel or "", "no enabled channel account of that channel"))
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=not console.is_terminal,
        ) as bar:
            for account in accounts:
                task = bar.add_task(f"{account}: starting", total=None)

                def progress(
                    stage: str,
                    done: int,
                    total: int | None,
                    task: TaskID = task,
                    name: str = account,
                ) -> None:
                    bar.update(
                        task,
                        description=f"{name}: {_STAGES.get(stage, stage)}",
                        completed=done,
                        total=total,
                    )

                try:
                    summaries.append(await reconcile_day(w, account, day, progress))
                except (ChannelError, PayfrontError) as exc:
                    failures.append((account, f"{exc.code}: {exc.message}"))
                bar.update(task, description=f"{account}: done")
    finally:
        await w.close()
        await redis.aclose()
    return summaries, failures


def _row(summary: dict[str, Any]) -> list[str]:
    counts = summary["counts"]
    values = {
        **counts,
        **{k: summary[k] for k in ("channel_account", "date", "statement_lines", "fixed", "open")},
    }
    return [str(values.get(column, 0)) for column in COLUMNS]


def summary_csv(summaries: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(_row(summary) for summary in summaries)
    return out.getvalue()


def summary_table(summaries: list[dict[str, Any]], day: date) -> Table:
    table = Table(title=f"Reconciliation of {day.isoformat()} (amount, status, fee: mismatches)")
    for column in COLUMNS:
        label = _LABELS.get(column, column)
        table.add_column(label, justify="left" if column in _TEXT else "right", no_wrap=True)
    for summary in summaries:
        table.add_row(*_row(summary), style="red" if summary["open"] else None)
    return table
