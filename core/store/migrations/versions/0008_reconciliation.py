"""statements and their lines, reconciliation runs and differences

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25 17:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from core.store.tables import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _account_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["channel_account_id"],
        ["channel_accounts.id"],
        name=op.f(f"fk_{table}_channel_account_id_channel_accounts"),
    )


def _merchant_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["merchant_id"], ["merchants.id"], name=op.f(f"fk_{table}_merchant_id_merchants")
    )


def upgrade() -> None:
    op.create_table(
        "statements",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("channel_account_id", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("line_count", sa.Integer(), nullable=False),
        sa.Column("downloaded_at", UTCDateTime(), nullable=False),
        _account_fk("statements"),
        _merchant_fk("statements"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_statements")),
        sa.UniqueConstraint(
            "channel_account_id", "business_date", name="uq_statements_account_day"
        ),
    )
    op.create_table(
        "statement_lines",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("statement_id", sa.Integer(), nullable=False),
        sa.Column("channel_account_id", sa.String(length=64), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("out_trade_no", sa.String(length=64), nullable=False),
        sa.Column("out_refund_no", sa.String(length=64), nullable=True),
        sa.Column("channel_trade_no", sa.String(length=64), nullable=True),
        sa.Column("channel_refund_no", sa.String(length=64), nullable=True),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("fee_minor", sa.BigInteger(), nullable=False),
        sa.Column("channel_state", sa.String(length=32), nullable=False),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["statement_id"],
            ["statements.id"],
            name=op.f("fk_statement_lines_statement_id_statements"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_statement_lines")),
        sa.UniqueConstraint("statement_id", "line_no", name="uq_statement_lines_line"),
    )
    op.create_index(
        "ix_statement_lines_trade",
        "statement_lines",
        ["channel_account_id", "out_trade_no"],
        unique=False,
    )
    op.create_index(
        "ix_statement_lines_refund",
        "statement_lines",
        ["channel_account_id", "out_refund_no"],
        unique=False,
    )
    op.create_table(
        "reconciliation_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("channel_account_id", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("statement_lines", sa.Integer(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("totals", sa.JSON(), nullable=False),
        sa.Column("fixed", sa.Integer(), nullable=False),
        sa.Column("open", sa.Integer(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=False),
        _account_fk("reconciliation_runs"),
        _merchant_fk("reconciliation_runs"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconciliation_runs")),
    )
    op.create_index(
        "ix_reconciliation_runs_account_day",
        "reconciliation_runs",
        ["channel_account_id", "business_date"],
        unique=False,
    )
    op.create_table(
        "reconciliation_differences",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("channel_account_id", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("object", sa.String(length=8), nullable=False),
        sa.Column("reference", sa.String(length=64), nullable=False),
        sa.Column("pay_no", sa.String(length=40), nullable=True),
        sa.Column("refund_no", sa.String(length=40), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("payfront_amount_minor", sa.BigInteger(), nullable=True),
        sa.Column("channel_amount_minor", sa.BigInteger(), nullable=True),
        sa.Column("payfront_status", sa.String(length=32), nullable=True),
        sa.Column("channel_status", sa.String(length=32), nullable=True),
        sa.Column("expected_fee_minor", sa.BigInteger(), nullable=True),
        sa.Column("channel_fee_minor", sa.BigInteger(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("fix", sa.JSON(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("resolved_at", UTCDateTime(), nullable=True),
        _account_fk("reconciliation_differences"),
        _merchant_fk("reconciliation_differences"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconciliation_differences")),
        sa.UniqueConstraint(
            "channel_account_id",
            "business_date",
            "kind",
            "object",
            "reference",
            name="uq_reconciliation_differences_key",
        ),
    )
    op.create_index(
        "ix_reconciliation_differences_merchant",
        "reconciliation_differences",
        ["merchant_id", "status", "created_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_reconciliation_differences_merchant", table_name="reconciliation_differences")
    op.drop_table("reconciliation_differences")
    op.drop_index("ix_reconciliation_runs_account_day", table_name="reconciliation_runs")
    op.drop_table("reconciliation_runs")
    op.drop_index("ix_statement_lines_refund", table_name="statement_lines")
    op.drop_index("ix_statement_lines_trade", table_name="statement_lines")
    op.drop_table("statement_lines")
    op.drop_table("statements")
