"""wallets, wallet movements, transfers and withdrawals; recharge trades

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 15:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from core.store.tables import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("trade_orders", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=16), nullable=False, server_default="payment")
        )
        batch_op.add_column(sa.Column("wallet_id", sa.String(length=40), nullable=True))
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("transfer_no", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("withdrawal_no", sa.String(length=40), nullable=True))
    op.create_table(
        "wallets",
        sa.Column("wallet_id", sa.String(length=40), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("owner_ref", sa.String(length=64), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("balance_minor", sa.BigInteger(), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("balance_minor >= 0", name="ck_wallets_balance"),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_wallets_merchant_id_merchants")
        ),
        sa.PrimaryKeyConstraint("wallet_id", name=op.f("pk_wallets")),
        sa.UniqueConstraint("merchant_id", "owner_ref", "currency", name="uq_wallets_owner"),
    )
    op.create_table(
        "wallet_movements",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("wallet_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("ref", sa.String(length=40), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("balance_after_minor", sa.BigInteger(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["wallet_id"],
            ["wallets.wallet_id"],
            name=op.f("fk_wallet_movements_wallet_id_wallets"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wallet_movements")),
        sa.UniqueConstraint("wallet_id", "kind", "ref", name="uq_wallet_movements_ref"),
    )
    op.create_index(
        "ix_wallet_movements_wallet", "wallet_movements", ["wallet_id", "id"], unique=False
    )
    op.create_table(
        "wallet_transfers",
        sa.Column("transfer_no", sa.String(length=40), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("from_wallet_id", sa.String(length=40), nullable=False),
        sa.Column("to_wallet_id", sa.String(length=40), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("merchant_transfer_no", sa.String(length=64), nullable=True),
        sa.Column("description", sa.String(length=256), nullable=True),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["from_wallet_id"],
            ["wallets.wallet_id"],
            name=op.f("fk_wallet_transfers_from_wallet_id_wallets"),
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.id"],
            name=op.f("fk_wallet_transfers_merchant_id_merchants"),
        ),
        sa.ForeignKeyConstraint(
            ["to_wallet_id"],
            ["wallets.wallet_id"],
            name=op.f("fk_wallet_transfers_to_wallet_id_wallets"),
        ),
        sa.PrimaryKeyConstraint("transfer_no", name=op.f("pk_wallet_transfers")),
        sa.UniqueConstraint(
            "merchant_id", "merchant_transfer_no", name="uq_wallet_transfers_merchant_no"
        ),
    )

    op.create_table(
        "withdrawals",
        sa.Column("withdrawal_no", sa.String(length=40), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("wallet_id", sa.String(length=40), nullable=False),
        sa.Column("channel_account_id", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("merchant_withdrawal_no", sa.String(length=64), nullable=True),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("payee_id", sa.String(length=128), nullable=False),
        sa.Column("payee_type", sa.String(length=32), nullable=True),
        sa.Column("payee_name", sa.String(length=128), nullable=True),
        sa.Column("remark", sa.String(length=128), nullable=True),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("channel_payout_no", sa.String(length=64), nullable=True),
        sa.Column("payee_action", sa.JSON(), nullable=True),
        sa.Column("failure_code", sa.String(length=64), nullable=True),
        sa.Column("failure_message", sa.String(length=512), nullable=True),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.Column("succeeded_at", UTCDateTime(), nullable=True),
        sa.Column("checked_at", UTCDateTime(), nullable=True),
        sa.Column("trace_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_account_id"],
            ["channel_accounts.id"],
            name=op.f("fk_withdrawals_channel_account_id_channel_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_withdrawals_merchant_id_merchants")
        ),
        sa.ForeignKeyConstraint(
            ["wallet_id"], ["wallets.wallet_id"], name=op.f("fk_withdrawals_wallet_id_wallets")
        ),
        sa.PrimaryKeyConstraint("withdrawal_no", name=op.f("pk_withdrawals")),
        sa.UniqueConstraint(
            "merchant_id", "merchant_withdrawal_no", name="uq_withdrawals_merchant_no"
        ),
    )
    op.create_index(
        "ix_withdrawals_status_updated", "withdrawals", ["status", "updated_at"], unique=False
    )
    # Anomalies about withdrawals too, and owned by a merchant directly.
    with op.batch_alter_table("anomalies", schema=None) as batch_op:
        batch_op.alter_column("pay_no", existing_type=sa.String(length=40), nullable=True)
        batch_op.add_column(sa.Column("merchant_id", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("withdrawal_no", sa.String(length=40), nullable=True))
        batch_op.create_foreign_key(
            op.f("fk_anomalies_merchant_id_merchants"), "merchants", ["merchant_id"], ["id"]
        )
        batch_op.create_foreign_key(
            op.f("fk_anomalies_withdrawal_no_withdrawals"),
            "withdrawals",
            ["withdrawal_no"],
            ["withdrawal_no"],
        )
        batch_op.create_unique_constraint(
            "uq_anomalies_withdrawal_source", ["withdrawal_no", "kind", "source_id"]
        )
    op.execute(
        "UPDATE anomalies SET merchant_id = (SELECT merchant_id FROM pay_orders"
        " WHERE pay_orders.pay_no = anomalies.pay_no) WHERE merchant_id IS NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("anomalies", schema=None) as batch_op:
        batch_op.drop_constraint("uq_anomalies_withdrawal_source", type_="unique")
        batch_op.drop_constraint(op.f("fk_anomalies_withdrawal_no_withdrawals"), type_="foreignkey")
        batch_op.drop_constraint(op.f("fk_anomalies_merchant_id_merchants"), type_="foreignkey")
        batch_op.drop_column("withdrawal_no")
        batch_op.drop_column("merchant_id")
        batch_op.alter_column("pay_no", existing_type=sa.String(length=40), nullable=False)
    op.drop_index("ix_withdrawals_status_updated", table_name="withdrawals")
    op.drop_table("withdrawals")
    op.drop_table("wallet_transfers")
    op.drop_index("ix_wallet_movements_wallet", table_name="wallet_movements")
    op.drop_table("wallet_movements")
    op.drop_table("wallets")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_column("withdrawal_no")
        batch_op.drop_column("transfer_no")
    with op.batch_alter_table("trade_orders", schema=None) as batch_op:
        batch_op.drop_column("wallet_id")
        batch_op.drop_column("kind")
