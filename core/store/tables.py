"""The SQL tables of record (SQLAlchemy Core). Migrations in ``migrations/`` create them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Aware UTC datetimes on every database (SQLite keeps no zone; we store naive UTC)."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC)


metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

merchants = sa.Table(
    "merchants",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    # What payfront does, unasked, with money it was not asked for (core.policies).
    sa.Column("partial_payment_policy", sa.String(16), nullable=False, server_default="refund"),
    sa.Column("late_payment_policy", sa.String(16), nullable=False, server_default="refund"),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("merchant_id", sa.String(40), sa.ForeignKey("merchants.id"), nullable=False),
    # SHA-256 of the whole key; the key itself is never stored.
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("key_prefix", sa.String(16), nullable=False),
    sa.Column("livemode", sa.Boolean(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("revoked_at", UTCDateTime(), nullable=True),
)

channel_accounts = sa.Table(
    "channel_accounts",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("merchant_id", sa.String(40), sa.ForeignKey("merchants.id"), nullable=False),
    sa.Column("channel", sa.String(32), nullable=False),
    # AES-256-GCM under the master key; see core.secrets.
    sa.Column("credentials_enc", sa.Text(), nullable=False),
    sa.Column("enabled", sa.Boolean(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    # The channel's fee on a payment: basis points of the amount (rounded half up to the
    # minor unit) plus a fixed minor amount; see core.ledger.fees.
    sa.Column("fee_rate_bps", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("fee_fixed_minor", sa.BigInteger(), nullable=False, server_default="0"),
)

trade_orders = sa.Table(
    "trade_orders",
    metadata,
    sa.Column("trade_no", sa.String(40), primary_key=True),
    sa.Column("merchant_id", sa.String(40), sa.ForeignKey("merchants.id"), nullable=False),
    sa.Column("merchant_order_no", sa.String(64), nullable=False),
    sa.Column("amount_minor", sa.BigInteger(), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("description", sa.String(256), nullable=False),
    sa.Column("metadata", sa.JSON(), nullable=False),
    sa.Column("status", sa.String(24), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    # The pay order of the latest attempt: only it moves the trade to failed or closed.
    sa.Column("current_pay_no", sa.String(40), nullable=True),
    # "payment" (goods), or "recharge" (a top-up of ``wallet_id``, credited when paid).
    sa.Column("kind", sa.String(16), nullable=False, server_default="payment"),
    sa.Column("wallet_id", sa.String(40), nullable=True),
    sa.UniqueConstraint("merchant_id", "merchant_order_no", name="uq_trade_orders_merchant_order"),
)

pay_orders = sa.Table(
    "pay_orders",
    metadata,
    # pay_no is also the out_trade_no sent to the channel.
    sa.Column("pay_no", sa.String(40), primary_key=True),
    sa.Column("trade_no", sa.String(40), sa.ForeignKey("trade_orders.trade_no"), nullable=False),
    sa.Column("merchant_id", sa.String(40), sa.ForeignKey("merchants.id"), nullable=False),
    sa.Column(
        "channel_account_id", sa.String(64), sa.ForeignKey("channel_accounts.id"), nullable=False
    ),
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("method", sa.String(32), nullable=False),
    sa.Column("amount_minor", sa.BigInteger(), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("description", sa.String(256), nullable=False),
    sa.Column("token", sa.String(64), nullable=False, unique=True),
    sa.Column("status", sa.String(24), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("credential", sa.JSON(), nullable=True),
    sa.Column("failure_code", sa.String(64), nullable=True),
    sa.Column("failure_message", sa.String(512), nullable=True),
    sa.Column("channel_trade_no", sa.String(64), nullable=True),
    sa.Column("livemode", sa.Boolean(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    sa.Column("paid_at", UTCDateTime(), nullable=True),
    # When the compensation job last asked the channel about this order.
    sa.Column("checked_at", UTCDateTime(), nullable=True),
    # The W3C trace id of the request that created it (core.context).
    sa.Column("trace_id", sa.String(32), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    # The sum of this order's refunds that have not failed (in progress or succeeded). Raised
    # by one conditional UPDATE (``refunded_minor + :amount <= amount_minor``), which is what
    # keeps refunds within what was paid when several are asked for at once.
    sa.Column("refunded_minor", sa.BigInteger(), nullable=False, server_default="0"),
    # What the channel says was received: amount_minor, or less for a partial payment.
    sa.Column("paid_minor", sa.BigInteger(), nullable=True),
    # The shopper's id at the channel (WeChat JSAPI openid) and IP (WeChat H5), when given.
    sa.Column("payer_id", sa.String(128), nullable=True),
    sa.Column("client_ip", sa.String(45), nullable=True),
)
sa.Index("ix_pay_orders_trade_no", pay_orders.c.trade_no)
sa.Index("ix_pay_orders_status_updated", pay_orders.c.status, pay_orders.c.updated_at)

refund_orders = sa.Table(
    "refund_orders",
    metadata,
    # refund_no is also the out_refund_no (out_request_no, idempotency key) sent to the channel.
    sa.Column("refund_no", sa.String(40), primary_key=True),
    sa.Column("pay_no", sa.String(40), sa.ForeignKey("pay_orders.pay_no"), nullable=False),
    sa.Column("trade_no", sa.String(40), sa.ForeignKey("trade_orders.trade_no"), nullable=False),
    sa.Column("merchant_id", sa.String(40), sa.ForeignKey("merchants.id"), nullable=False),
    sa.Column(
        "channel_account_id", sa.String(64), sa.ForeignKey("channel_accounts.id"), nullable=False
    ),
    sa.Column("channel", sa.String(32), nullable=False),
    # The merchant's own refund reference, unique per merchant when given.
    sa.Column("merchant_refund_no", sa.String(64), nullable=True),
    sa.Column("amount_minor", sa.BigInteger(), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("reason", sa.String(256), nullable=True),
    sa.Column("metadata", sa.JSON(), nullable=False),
    sa.Column("status", sa.String(24), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("channel_refund_no", sa.String(64), nullable=True),
    sa.Column("failure_code", sa.String(64), nullable=True),
    sa.Column("failure_message", sa.String(512), nullable=True),
    sa.Column("livemode", sa.Boolean(), nullable=False),
    sa.Column("succeeded_at", UTCDateTime(), nullable=True),
    # When the compensation job last asked the channel about this refund.
    sa.Column("checked_at", UTCDateTime(), nullable=True),
    sa.Column("trace_id", sa.String(32), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint(
        "merchant_id", "merchant_refund_no", name="uq_refund_orders_merchant_refund"
    ),
)
sa.Index("ix_refund_orders_pay_no", refund_orders.c.pay_no)
sa.Index("ix_refund_orders_status_updated", refund_orders.c.status, refund_orders.c.updated_at)

# Work owed, recorded in the same transaction as the change that owes it. Redis only
# carries the wake-up; the sweeper re-enqueues pending rows Redis lost.
outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("ref", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("done_at", UTCDateTime(), nullable=True),
    sa.UniqueConstraint("kind", "ref", name="uq_outbox_kind_ref"),
)
sa.Index("ix_outbox_status_created", outbox.c.status, outbox.c.created_at)

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("merchant_id", sa.String(40), sa.ForeignKey("merchants.id"), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("response_status", sa.Integer(), nullable=False),
    sa.Column("response_body", sa.Text(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("merchant_id", sa.String(40), sa.ForeignKey("merchants.id"), nullable=False),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("pay_no", sa.String(40), nullable=True),
    # Set for events about a refund.
    sa.Column("refund_no", sa.String(40), nullable=True),
    # Set for events about a transfer between wallets, or a withdrawal.
    sa.Column("transfer_no", sa.String(40), nullable=True),
    sa.Column("withdrawal_no", sa.String(40), nullable=True),
    sa.Column("payload", sa.JSON(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

webhook_endpoints = sa.Table(
    "webhook_endpoints",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("merchant_id", sa.String(40), sa.ForeignKey("merchants.id"), nullable=False),
    sa.Column("url", sa.String(1024), nullable=False),
    sa.Column("secret_enc", sa.Text(), nullable=False),
    sa.Column("enabled", sa.Boolean(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(40), sa.ForeignKey("events.id"), nullable=False),
    sa.Column("endpoint_id", sa.String(40), sa.ForeignKey("webhook_endpoints.id"), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("next_attempt_at", UTCDateTime(), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("event_id", "endpoint_id", name="uq_webhook_deliveries_event_endpoint"),
)
sa.Index(
    "ix_webhook_deliveries_due", webhook_deliveries.c.status, webhook_deliveries.c.next_attempt_at
)

webhook_attempts = sa.Table(
    "webhook_attempts",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("delivery_id", sa.Integer(), sa.ForeignKey("webhook_deliveries.id"), nullable=False),
    sa.Column("attempt_no", sa.Integer(), nullable=False),
    sa.Column("attempted_at", UTCDateTime(), nullable=False),
    sa.Column("status_code", sa.Integer(), nullable=True),
    sa.Column("error", sa.String(512), nullable=True),
    sa.Column("duration_ms", sa.Integer(), nullable=False),
)
sa.Index("ix_webhook_attempts_delivery", webhook_attempts.c.delivery_id)

# Differences between what a channel says and what we hold that we refused to apply.
anomalies = sa.Table(
    "anomalies",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    # What it is about: a pay order (payments, refunds) or a withdrawal (payouts).
    sa.Column("pay_no", sa.String(40), sa.ForeignKey("pay_orders.pay_no"), nullable=True),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("source_id", sa.String(64), nullable=False),
    sa.Column("detail", sa.JSON(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    # "open" until a person resolves it (core.resolutions keeps who, why and evidence).
    sa.Column("status", sa.String(16), nullable=False, server_default="open"),
    sa.Column("resolved_at", UTCDateTime(), nullable=True),
    # Whose it is (rows from before migration 0007 are filled from their pay order).
    sa.Column("merchant_id", sa.String(40), sa.ForeignKey("merchants.id"), nullable=True),
    sa.Column(
        "withdrawal_no", sa.String(40), sa.ForeignKey("withdrawals.withdrawal_no"), nullable=True
    ),
    sa.UniqueConstraint("pay_no", "kind", "source_id", name="uq_anomalies_source"),
    sa.UniqueConstraint(
        "withdrawal_no", "kind", "source_id", name="uq_anomalies_withdrawal_source"
    ),
)
sa.Index("ix_anomalies_status_created", anomalies.c.status, anomalies.c.created_at)

# The audit trail of decisions people made through the API: an anomaly resolved, a payment
# whose outcome was lost settled by hand. Rows are only ever added.
resolutions = sa.Table(
    "resolutions",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("merchant_id", sa.String(40), sa.ForeignKey("merchants.id"), nullable=False),
    # "anomaly" (subject_id: the anomaly id) or "payment" (subject_id: the pay_no).
    sa.Column("subject_type", sa.String(16), nullable=False),
    sa.Column("subject_id", sa.String(40), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    # Who decided: the person named in the request, and the API key that sent it.
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("api_key_prefix", sa.String(16), nullable=False),
    sa.Column("reason", sa.String(1000), nullable=False),
    sa.Column("evidence", sa.JSON(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)
sa.Index("ix_resolutions_subject", resolutions.c.subject_type, resolutions.c.subject_id)

# --- routing ---
# A merchant's routing table (core.routing): for a payment that names no channel, the first
# rule by priority that matches its currency, amount and kind, and whose account's circuit
# is not open, picks the channel account and method.
routing_rules = sa.Table(
    "routing_rules",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("merchant_id", sa.String(40), sa.ForeignKey("merchants.id"), nullable=False),
    # Lower first.
    sa.Column("priority", sa.Integer(), nullable=False),
    sa.Column(
        "channel_account_id", sa.String(64), sa.ForeignKey("channel_accounts.id"), nullable=False
    ),
    sa.Column("method", sa.String(32), nullable=False),
    # NULL: any currency the channel accepts; amounts are inclusive bounds, NULL: none.
    sa.Column("currency", sa.String(3), nullable=True),
    sa.Column("min_amount_minor", sa.BigInteger(), nullable=True),
    sa.Column("max_amount_minor", sa.BigInteger(), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("merchant_id", "priority", name="uq_routing_rules_merchant_priority"),
)

# --- ledger ---
# Double-entry fund accounting (core.ledger): accounts with a stored balance, journal entries
# (one per money-moving event, unique by event id) and their lines, and the buffer of postings
# to hot accounts that a batch job folds into their balances.

ledger_accounts = sa.Table(
    "ledger_accounts",
    metadata,
    # "{kind}:{owner}:{currency}:{test|live}", e.g. "merchant_pending:mch_1:CNY:test".
    sa.Column("id", sa.String(128), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    # The merchant, the channel account, or "platform".
    sa.Column("owner_id", sa.String(64), nullable=False),
    sa.Column("merchant_id", sa.String(40), sa.ForeignKey("merchants.id"), nullable=True),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("livemode", sa.Boolean(), nullable=False),
    # "debit" (assets, expenses) or "credit" (what is owed, revenue): the balance is kept on
    # this side, so a positive balance is the normal one.
    sa.Column("normal_side", sa.String(6), nullable=False),
    sa.Column("balance_minor", sa.BigInteger(), nullable=False),
    # Postings to a hot account go to ledger_hot_postings, folded in batches.
    sa.Column("hot", sa.Boolean(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.CheckConstraint("normal_side IN ('debit', 'credit')", name="ck_ledger_accounts_side"),
)
sa.Index("ix_ledger_accounts_merchant", ledger_accounts.c.merchant_id, ledger_accounts.c.kind)

ledger_entries = sa.Table(
    "ledger_entries",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    # The event that moved the money: at most one entry each (a second posting is a no-op).
    sa.Column("source_event_id", sa.String(40), nullable=False, unique=True),
    sa.Column("event_type", sa.String(64), nullable=False),
    sa.Column("merchant_id", sa.String(40), sa.ForeignKey("merchants.id"), nullable=False),
    sa.Column("pay_no", sa.String(40), nullable=True),
    sa.Column("refund_no", sa.String(40), nullable=True),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("livemode", sa.Boolean(), nullable=False),
    # What the lines add up to on each side; the ledger writes no entry where they differ.
    sa.Column("debits_minor", sa.BigInteger(), nullable=False),
    sa.Column("credits_minor", sa.BigInteger(), nullable=False),
    # When the money moved (paid_at, succeeded_at): balances "at a time" and settlement days.
    sa.Column("effective_at", UTCDateTime(), nullable=False),
    sa.Column("posted_at", UTCDateTime(), nullable=False),
    sa.CheckConstraint("debits_minor = credits_minor", name="ck_ledger_entries_balanced"),
)
sa.Index(
    "ix_ledger_entries_merchant_effective",
    ledger_entries.c.merchant_id,
    ledger_entries.c.effective_at,
)
sa.Index("ix_ledger_entries_pay_no", ledger_entries.c.pay_no)

ledger_lines = sa.Table(
    "ledger_lines",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("entry_id", sa.Integer(), sa.ForeignKey("ledger_entries.id"), nullable=False),
    sa.Column("account_id", sa.String(128), sa.ForeignKey("ledger_accounts.id"), nullable=False),
    sa.Column("side", sa.String(6), nullable=False),
    sa.Column("amount_minor", sa.BigInteger(), nullable=False),
    # What the line is for: gross, fee, net, refund, fee_refund (the settlement view's key).
    sa.Column("role", sa.String(16), nullable=False),
    sa.CheckConstraint("side IN ('debit', 'credit')", name="ck_ledger_lines_side"),
    sa.CheckConstraint("amount_minor > 0", name="ck_ledger_lines_positive"),
)
sa.Index("ix_ledger_lines_entry", ledger_lines.c.entry_id)
sa.Index("ix_ledger_lines_account", ledger_lines.c.account_id)

# Append-only: each row is one posting's signed change to a hot account's balance, deleted
# by the batch job in the transaction that adds it to the stored balance.
ledger_hot_postings = sa.Table(
    "ledger_hot_postings",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("account_id", sa.String(128), sa.ForeignKey("ledger_accounts.id"), nullable=False),
    sa.Column("delta_minor", sa.BigInteger(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)
sa.Index("ix_ledger_hot_postings_account", ledger_hot_postings.c.account_id)

# Merchants whose pending accounts are hot (new ones are created hot).
ledger_hot_merchants = sa.Table(
    "ledger_hot_merchants",
    metadata,
    sa.Column("merchant_id", sa.String(40), sa.ForeignKey("merchants.id"), primary_key=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)


# --- wallets ---
# Stored value held by payfront for a merchant's users (core.wallets). The balance is moved
# only by conditional UPDATEs that keep it >= 0, in the transaction of the movement's row.
wallets = sa.Table(
    "wallets",
    metadata,
    sa.Column("wallet_id", sa.String(40), primary_key=True),
    sa.Column("merchant_id", sa.String(40), sa.ForeignKey("merchants.id"), nullable=False),
    # The merchant's own id for the wallet's holder (its user id).
    sa.Column("owner_ref", sa.String(64), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("balance_minor", sa.BigInteger(), nullable=False),
    sa.Column("livemode", sa.Boolean(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("merchant_id", "owner_ref", "currency", name="uq_wallets_owner"),
    sa.CheckConstraint("balance_minor >= 0", name="ck_wallets_balance"),
)

# Every change of a wallet's balance, once per (wallet, kind, ref): a credit applied twice
# (a duplicate callback, a re-run job) is refused by the unique constraint.
wallet_movements = sa.Table(
    "wallet_movements",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("wallet_id", sa.String(40), sa.ForeignKey("wallets.wallet_id"), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("ref", sa.String(40), nullable=False),
    sa.Column("amount_minor", sa.BigInteger(), nullable=False),
    sa.Column("balance_after_minor", sa.BigInteger(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("wallet_id", "kind", "ref", name="uq_wallet_movements_ref"),
)
sa.Index("ix_wallet_movements_wallet", wallet_movements.c.wallet_id, wallet_movements.c.id)

wallet_transfers = sa.Table(
    "wallet_transfers",
    metadata,
    sa.Column("transfer_no", sa.String(40), primary_key=True),
    sa.Column("merchant_id", sa.String(40), sa.ForeignKey("merchants.id"), nullable=False),
    sa.Column("from_wallet_id", sa.String(40), sa.ForeignKey("wallets.wallet_id"), nullable=False),
    sa.Column("to_wallet_id", sa.String(40), sa.ForeignKey("wallets.wallet_id"), nullable=False),
    sa.Column("amount_minor", sa.BigInteger(), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("merchant_transfer_no", sa.String(64), nullable=True),
    sa.Column("description", sa.String(256), nullable=True),
    sa.Column("livemode", sa.Boolean(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint(
        "merchant_id", "merchant_transfer_no", name="uq_wallet_transfers_merchant_no"
    ),
)

withdrawals = sa.Table(
    "withdrawals",
    metadata,
    # withdrawal_no is also the payout's number at the channel (out_biz_no, out_bill_no, ...).
    sa.Column("withdrawal_no", sa.String(40), primary_key=True),
    sa.Column("merchant_id", sa.String(40), sa.ForeignKey("merchants.id"), nullable=False),
    sa.Column("wallet_id", sa.String(40), sa.ForeignKey("wallets.wallet_id"), nullable=False),
    sa.Column(
        "channel_account_id", sa.String(64), sa.ForeignKey("channel_accounts.id"), nullable=False
    ),
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("merchant_withdrawal_no", sa.String(64), nullable=True),
    sa.Column("amount_minor", sa.BigInteger(), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("payee_id", sa.String(128), nullable=False),
    sa.Column("payee_type", sa.String(32), nullable=True),
    sa.Column("payee_name", sa.String(128), nullable=True),
    sa.Column("remark", sa.String(128), nullable=True),
    sa.Column("status", sa.String(24), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("channel_payout_no", sa.String(64), nullable=True),
    sa.Column("payee_action", sa.JSON(), nullable=True),
    sa.Column("failure_code", sa.String(64), nullable=True),
    sa.Column("failure_message", sa.String(512), nullable=True),
    sa.Column("livemode", sa.Boolean(), nullable=False),
    sa.Column("succeeded_at", UTCDateTime(), nullable=True),
    sa.Column("checked_at", UTCDateTime(), nullable=True),
    sa.Column("trace_id", sa.String(32), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("merchant_id", "merchant_withdrawal_no", name="uq_withdrawals_merchant_no"),
)
sa.Index("ix_withdrawals_status_updated", withdrawals.c.status, withdrawals.c.updated_at)


# --- reconciliation ---
# Channel statements as downloaded (core.reconcile.statements): one row per channel account and
# statement day, its lines replaced whole when the day is downloaded again.
statements = sa.Table(
    "statements",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column(
        "channel_account_id", sa.String(64), sa.ForeignKey("channel_accounts.id"), nullable=False
    ),
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("merchant_id", sa.String(40), sa.ForeignKey("merchants.id"), nullable=False),
    # The channel's own calendar day (Asia/Shanghai for WeChat Pay and Alipay, UTC for Stripe).
    sa.Column("business_date", sa.Date(), nullable=False),
    sa.Column("line_count", sa.Integer(), nullable=False),
    sa.Column("downloaded_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("channel_account_id", "business_date", name="uq_statements_account_day"),
)

statement_lines = sa.Table(
    "statement_lines",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("statement_id", sa.Integer(), sa.ForeignKey("statements.id"), nullable=False),
    # Copied from the statement: a line is looked up by number across days.
    sa.Column("channel_account_id", sa.String(64), nullable=False),
    sa.Column("line_no", sa.Integer(), nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),
    # The channel's copy of payfront's numbers ("" when the channel has none: not ours).
    sa.Column("out_trade_no", sa.String(64), nullable=False),
    sa.Column("out_refund_no", sa.String(64), nullable=True),
    sa.Column("channel_trade_no", sa.String(64), nullable=True),
    sa.Column("channel_refund_no", sa.String(64), nullable=True),
    sa.Column("amount_minor", sa.BigInteger(), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("fee_minor", sa.BigInteger(), nullable=False),
    sa.Column("channel_state", sa.String(32), nullable=False),
    sa.Column("occurred_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("statement_id", "line_no", name="uq_statement_lines_line"),
)
sa.Index(
    "ix_statement_lines_trade", statement_lines.c.channel_account_id, statement_lines.c.out_trade_no
)
sa.Index(
    "ix_statement_lines_refund",
    statement_lines.c.channel_account_id,
    statement_lines.c.out_refund_no,
)

# One row per reconciliation run of (channel account, day): what it found, in counts and totals.
reconciliation_runs = sa.Table(
    "reconciliation_runs",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column(
        "channel_account_id", sa.String(64), sa.ForeignKey("channel_accounts.id"), nullable=False
    ),
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("merchant_id", sa.String(40), sa.ForeignKey("merchants.id"), nullable=False),
    sa.Column("business_date", sa.Date(), nullable=False),
    sa.Column("statement_lines", sa.Integer(), nullable=False),
    # {"matched": n, "long": n, "short": n, "amount_mismatch": n, ...}
    sa.Column("counts", sa.JSON(), nullable=False),
    # {"CNY": {"channel_payments_minor": …, "payfront_payments_minor": …, …}}
    sa.Column("totals", sa.JSON(), nullable=False),
    sa.Column("fixed", sa.Integer(), nullable=False),
    # Differences of the day still open after the run (unexplained).
    sa.Column("open", sa.Integer(), nullable=False),
    sa.Column("started_at", UTCDateTime(), nullable=False),
    sa.Column("finished_at", UTCDateTime(), nullable=False),
)
sa.Index(
    "ix_reconciliation_runs_account_day",
    reconciliation_runs.c.channel_account_id,
    reconciliation_runs.c.business_date,
)

# What a daily reconciliation found that does not match: once per (account, day, kind,
# object, reference), so running the day again updates it instead of adding another.
reconciliation_differences = sa.Table(
    "reconciliation_differences",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("merchant_id", sa.String(40), sa.ForeignKey("merchants.id"), nullable=False),
    sa.Column(
        "channel_account_id", sa.String(64), sa.ForeignKey("channel_accounts.id"), nullable=False
    ),
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("business_date", sa.Date(), nullable=False),
    # long, short, amount_mismatch, status_mismatch, fee_mismatch.
    sa.Column("kind", sa.String(24), nullable=False),
    # "payment" or "refund".
    sa.Column("object", sa.String(8), nullable=False),
    # payfront's number (pay_no, refund_no), or the channel's own for a line that is not ours.
    sa.Column("reference", sa.String(64), nullable=False),
    sa.Column("pay_no", sa.String(40), nullable=True),
    sa.Column("refund_no", sa.String(40), nullable=True),
    sa.Column("currency", sa.String(3), nullable=True),
    sa.Column("payfront_amount_minor", sa.BigInteger(), nullable=True),
    sa.Column("channel_amount_minor", sa.BigInteger(), nullable=True),
    sa.Column("payfront_status", sa.String(32), nullable=True),
    sa.Column("channel_status", sa.String(32), nullable=True),
    sa.Column("expected_fee_minor", sa.BigInteger(), nullable=True),
    sa.Column("channel_fee_minor", sa.BigInteger(), nullable=True),
    sa.Column("detail", sa.JSON(), nullable=False),
    # open, fixed (by payfront, see "fix"), cleared (gone on a later run), resolved (a person).
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("fix", sa.JSON(), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("resolved_at", UTCDateTime(), nullable=True),
    sa.UniqueConstraint(
        "channel_account_id",
        "business_date",
        "kind",
        "object",
        "reference",
        name="uq_reconciliation_differences_key",
    ),
)
sa.Index(
    "ix_reconciliation_differences_merchant",
    reconciliation_differences.c.merchant_id,
    reconciliation_differences.c.status,
    reconciliation_differences.c.created_at,
)
