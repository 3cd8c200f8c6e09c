"""refund orders, anomaly status, the resolutions trail, attempts and payment policies

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 14:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from core.store.tables import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pay_orders", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("refunded_minor", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("paid_minor", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("payer_id", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("client_ip", sa.String(length=45), nullable=True))
    with op.batch_alter_table("trade_orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("current_pay_no", sa.String(length=40), nullable=True))
    with op.batch_alter_table("merchants", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "partial_payment_policy",
                sa.String(length=16),
                nullable=False,
                server_default="refund",
            )
        )
        batch_op.add_column(
            sa.Column(
                "late_payment_policy", sa.String(length=16), nullable=False, server_default="refund"
            )
        )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("refund_no", sa.String(length=40), nullable=True))
    op.create_table(
        "refund_orders",
        sa.Column("refund_no", sa.String(length=40), nullable=False),
        sa.Column("pay_no", sa.String(length=40), nullable=False),
        sa.Column("trade_no", sa.String(length=40), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("channel_account_id", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("merchant_refund_no", sa.String(length=64), nullable=True),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("reason", sa.String(length=256), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("channel_refund_no", sa.String(length=64), nullable=True),
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
            name=op.f("fk_refund_orders_channel_account_id_channel_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_refund_orders_merchant_id_merchants")
        ),
        sa.ForeignKeyConstraint(
            ["pay_no"], ["pay_orders.pay_no"], name=op.f("fk_refund_orders_pay_no_pay_orders")
        ),
        sa.ForeignKeyConstraint(
            ["trade_no"],
            ["trade_orders.trade_no"],
            name=op.f("fk_refund_orders_trade_no_trade_orders"),
        ),
        sa.PrimaryKeyConstraint("refund_no", name=op.f("pk_refund_orders")),
        sa.UniqueConstraint(
            "merchant_id", "merchant_refund_no", name="uq_refund_orders_merchant_refund"
        ),
    )
    op.create_index("ix_refund_orders_pay_no", "refund_orders", ["pay_no"], unique=False)
    op.create_index(
        "ix_refund_orders_status_updated", "refund_orders", ["status", "updated_at"], unique=False
    )
    with op.batch_alter_table("anomalies", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("status", sa.String(length=16), nullable=False, server_default="open")
        )
        batch_op.add_column(sa.Column("resolved_at", UTCDateTime(), nullable=True))
    op.create_index(
        "ix_anomalies_status_created", "anomalies", ["status", "created_at"], unique=False
    )
    op.create_table(
        "resolutions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("subject_type", sa.String(length=16), nullable=False),
        sa.Column("subject_id", sa.String(length=40), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("api_key_prefix", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=1000), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_resolutions_merchant_id_merchants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_resolutions")),
    )
    op.create_index(
        "ix_resolutions_subject", "resolutions", ["subject_type", "subject_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_resolutions_subject", table_name="resolutions")
    op.drop_table("resolutions")
    op.drop_index("ix_anomalies_status_created", table_name="anomalies")
    with op.batch_alter_table("anomalies", schema=None) as batch_op:
        batch_op.drop_column("resolved_at")
        batch_op.drop_column("status")
    op.drop_index("ix_refund_orders_status_updated", table_name="refund_orders")
    op.drop_index("ix_refund_orders_pay_no", table_name="refund_orders")
    op.drop_table("refund_orders")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_column("refund_no")
    with op.batch_alter_table("merchants", schema=None) as batch_op:
        batch_op.drop_column("late_payment_policy")
        batch_op.drop_column("partial_payment_policy")
    with op.batch_alter_table("trade_orders", schema=None) as batch_op:
        batch_op.drop_column("current_pay_no")
    with op.batch_alter_table("pay_orders", schema=None) as batch_op:
        batch_op.drop_column("client_ip")
        batch_op.drop_column("payer_id")
        batch_op.drop_column("paid_minor")
        batch_op.drop_column("refunded_minor")
