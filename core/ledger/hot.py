"""Hot accounts: postings to them are appended to a buffer instead of updating one contended
balance row, and this batch job folds the buffer into the stored balances. Each batch deletes
the rows it folds (``DELETE … RETURNING``) in the transaction that adds them up, so two folds
running at once never apply a row twice; on PostgreSQL they skip each other's rows."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

import sqlalchemy as sa

from core.store.db import Database
from core.store.tables import ledger_accounts, ledger_hot_postings

DEFAULT_BATCH = 5_000


def fold_batch(conn: sa.Connection, batch_size: int = DEFAULT_BATCH) -> int:
    """Fold up to ``batch_size`` buffered postings (oldest first); return how many."""
    oldest = (
        sa.select(ledger_hot_postings.c.id).order_by(ledger_hot_postings.c.id).limit(batch_size)
    )
    if conn.dialect.name == "postgresql":
        oldest = oldest.with_for_update(skip_locked=True)
    claimed = conn.execute(
        ledger_hot_postings.delete()
        .where(ledger_hot_postings.c.id.in_(oldest.scalar_subquery()))
        .returning(ledger_hot_postings.c.account_id, ledger_hot_postings.c.delta_minor)
    ).all()
    sums: dict[str, int] = defaultdict(int)
    for account_id, delta in claimed:
        sums[account_id] += delta
    now = datetime.now(UTC)
    for account_id, delta in sorted(sums.items()):
        conn.execute(
            ledger_accounts.update()
            .where(ledger_accounts.c.id == account_id)
            .values(balance_minor=ledger_accounts.c.balance_minor + delta, updated_at=now)
        )
    return len(claimed)


async def apply_hot_postings(
    db: Database, *, batch_size: int = DEFAULT_BATCH, max_batches: int = 100
) -> int:
    """Fold the buffer in batches until it is empty (or ``max_batches``); return the rows."""
    total = 0
    for _ in range(max_batches):
        folded = await db.run_write(fold_batch, batch_size)
        total += folded
        if folded < batch_size:
            break
    return total
