"""The chart of accounts: which accounts exist, on which side each keeps its balance, how
each is named, and which are hot. Accounts are created on first use."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from core.store.db import Database
from core.store.tables import ledger_accounts, ledger_hot_merchants

PLATFORM = "platform"


class Side(enum.StrEnum):
    DEBIT = "debit"
    CREDIT = "credit"


class AccountKind(enum.StrEnum):
    # What payfront owes the merchant for payments not yet settled (a liability).
    MERCHANT_PENDING = "merchant_pending"
    # What the merchant may withdraw: fed by settlement, which is not built (docs/ledger.md).
    MERCHANT_AVAILABLE = "merchant_available"
    # What a channel owes payfront for collected payments, net of its fee (an asset).
    CHANNEL_CLEARING = "channel_clearing"
    # Fees a channel withheld, less what was charged on to merchants: zero when merchants
    # bear every fee, as they do now (an expense account kept as a control).
    CHANNEL_FEES = "channel_fees"
    # What payfront owes a wallet's holder (core.wallets), one account per wallet.
    WALLET = "wallet"
    # payfront's own revenue: no posting scheme credits it yet (no platform fee is charged).
    PLATFORM_REVENUE = "platform_revenue"


NORMAL_SIDE: dict[AccountKind, Side] = {
    AccountKind.MERCHANT_PENDING: Side.CREDIT,
    AccountKind.MERCHANT_AVAILABLE: Side.CREDIT,
    AccountKind.CHANNEL_CLEARING: Side.DEBIT,
    AccountKind.CHANNEL_FEES: Side.DEBIT,
    AccountKind.WALLET: Side.CREDIT,
    AccountKind.PLATFORM_REVENUE: Side.CREDIT,
}
# Accounts owned by a merchant (a wallet is owned by its wallet id: what payfront owes the
# wallet's holder, not the merchant).
MERCHANT_KINDS = frozenset({AccountKind.MERCHANT_PENDING, AccountKind.MERCHANT_AVAILABLE})


@dataclass(frozen=True, slots=True, order=True)
class AccountRef:
    """An account by what it is: kind, owner (merchant, channel account or platform),
    currency and mode. Its id is derived, so posting code never looks ids up."""

    kind: AccountKind
    owner_id: str
    currency: str
    livemode: bool

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.owner_id}:{self.currency}:{'live' if self.livemode else 'test'}"

    @property
    def normal_side(self) -> Side:
        return NORMAL_SIDE[self.kind]

    @property
    def merchant_id(self) -> str | None:
        return self.owner_id if self.kind in MERCHANT_KINDS else None


def merchant_pending(merchant_id: str, currency: str, livemode: bool) -> AccountRef:
    return AccountRef(AccountKind.MERCHANT_PENDING, merchant_id, currency, livemode)


def merchant_available(merchant_id: str, currency: str, livemode: bool) -> AccountRef:
    return AccountRef(AccountKind.MERCHANT_AVAILABLE, merchant_id, currency, livemode)


def wallet(wallet_id: str, currency: str, livemode: bool) -> AccountRef:
    return AccountRef(AccountKind.WALLET, wallet_id, currency, livemode)


def channel_clearing(channel_account_id: str, currency: str, livemode: bool) -> AccountRef:
    return AccountRef(AccountKind.CHANNEL_CLEARING, channel_account_id, currency, livemode)


def channel_fees(channel_account_id: str, currency: str, livemode: bool) -> AccountRef:
    return AccountRef(AccountKind.CHANNEL_FEES, channel_account_id, currency, livemode)


def _now() -> datetime:
    return datetime.now(UTC)


def ensure_accounts(conn: sa.Connection, refs: list[AccountRef]) -> dict[str, bool]:
    """Create the accounts that do not exist yet (concurrent callers are fine); answer
    each account's hot flag by id. A merchant's pending account is created hot when the
    merchant is flagged hot."""
    ids = sorted({ref.id for ref in refs})
    found = dict(
        conn.execute(
            sa.select(ledger_accounts.c.id, ledger_accounts.c.hot).where(
                ledger_accounts.c.id.in_(ids)
            )
        ).all()
    )
    missing = sorted({ref for ref in refs if ref.id not in found})
    if missing:
        hot_merchants = set(
            conn.execute(
                sa.select(ledger_hot_merchants.c.merchant_id).where(
                    ledger_hot_merchants.c.merchant_id.in_(
                        {ref.owner_id for ref in missing if ref.merchant_id}
                    )
                )
            ).scalars()
        )
        now = _now()
        rows = [
            {
                "id": ref.id,
                "kind": ref.kind.value,
                "owner_id": ref.owner_id,
                "merchant_id": ref.merchant_id,
                "currency": ref.currency,
                "livemode": ref.livemode,
                "normal_side": ref.normal_side.value,
                "balance_minor": 0,
                "hot": ref.kind is AccountKind.MERCHANT_PENDING and ref.owner_id in hot_merchants,
                "created_at": now,
                "updated_at": now,
            }
            for ref in missing
        ]
        conn.execute(_insert_ignoring_existing(conn), rows)
        found = dict(
            conn.execute(
                sa.select(ledger_accounts.c.id, ledger_accounts.c.hot).where(
                    ledger_accounts.c.id.in_(ids)
                )
            ).all()
        )
    return {account_id: bool(hot) for account_id, hot in found.items()}


def _insert_ignoring_existing(conn: sa.Connection) -> sa.Insert:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(ledger_accounts).on_conflict_do_nothing(index_elements=["id"])
    return sqlite.insert(ledger_accounts).on_conflict_do_nothing(index_elements=["id"])


async def set_account_hot(db: Database, ref: AccountRef, hot: bool) -> None:
    """Flag one account hot (its postings go to the buffer) or not; creates it if needed."""

    def work(conn: sa.Connection) -> None:
        ensure_accounts(conn, [ref])
        conn.execute(
            ledger_accounts.update()
            .where(ledger_accounts.c.id == ref.id)
            .values(hot=hot, updated_at=_now())
        )

    await db.run_write(work)


async def set_merchant_hot(db: Database, merchant_id: str, hot: bool) -> None:
    """Flag a merchant hot: its pending accounts, those there now and those created later,
    take their postings into the buffer (or, with ``hot=False``, stop doing so)."""

    def work(conn: sa.Connection) -> None:
        conn.execute(
            ledger_hot_merchants.delete().where(ledger_hot_merchants.c.merchant_id == merchant_id)
        )
        if hot:
            conn.execute(
                ledger_hot_merchants.insert().values(merchant_id=merchant_id, created_at=_now())
            )
        conn.execute(
            ledger_accounts.update()
            .where(
                ledger_accounts.c.merchant_id == merchant_id,
                ledger_accounts.c.kind == AccountKind.MERCHANT_PENDING.value,
            )
            .values(hot=hot, updated_at=_now())
        )

    await db.run_write(work)
