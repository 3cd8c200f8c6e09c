"""ledger: accounts, entries, lines, the hot-posting buffer; channel fee rates

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from core.store.tables import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("channel_accounts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("fee_rate_bps", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("fee_fixed_minor", sa.BigInteger(), nullable=False, server_default="0")
        )
    op.create_table(
        "ledger_accounts",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("owner_id", sa.String(length=64), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.Column("normal_side", sa.String(length=6), nullable=False),
        sa.Column("balance_minor", sa.BigInteger(), nullable=False),
        sa.Column("hot", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("normal_side IN ('debit', 'credit')", name="ck_ledger_accounts_side"),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_ledger_accounts_merchant_id_merchants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_accounts")),
    )
    op.create_index(
        "ix_ledger_accounts_merchant", "ledger_accounts", ["merchant_id", "kind"], unique=False
    )
    op.create_table(
        "ledger_entries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("source_event_id", sa.String(length=40), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("pay_no", sa.String(length=40), nullable=True),
        sa.Column("refund_no", sa.String(length=40), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.Column("debits_minor", sa.BigInteger(), nullable=False),
        sa.Column("credits_minor", sa.BigInteger(), nullable=False),
        sa.Column("effective_at", UTCDateTime(), nullable=False),
        sa.Column("posted_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("debits_minor = credits_minor", name="ck_ledger_entries_balanced"),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_ledger_entries_merchant_id_merchants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_entries")),
        sa.UniqueConstraint("source_event_id", name=op.f("uq_ledger_entries_source_event_id")),
    )
    op.create_index(
        "ix_ledger_entries_merchant_effective",
        "ledger_entries",
        ["merchant_id", "effective_at"],
        unique=False,
    )
    op.create_index("ix_ledger_entries_pay_no", "ledger_entries", ["pay_no"], unique=False)
    op.create_table(
        "ledger_lines",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.String(length=128), nullable=False),
        sa.Column("side", sa.String(length=6), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.CheckConstraint("side IN ('debit', 'credit')", name="ck_ledger_lines_side"),
        sa.CheckConstraint("amount_minor > 0", name="ck_ledger_lines_positive"),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["ledger_accounts.id"],
            name=op.f("fk_ledger_lines_account_id_ledger_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["ledger_entries.id"],
            name=op.f("fk_ledger_lines_entry_id_ledger_entries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_lines")),
    )
    op.create_index("ix_ledger_lines_entry", "ledger_lines", ["entry_id"], unique=False)
    op.create_index("ix_ledger_lines_account", "ledger_lines", ["account_id"], unique=False)
    op.create_table(
        "ledger_hot_postings",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.String(length=128), nullable=False),
        sa.Column("delta_minor", sa.BigInteger(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["ledger_accounts.id"],
            name=op.f("fk_ledger_hot_postings_account_id_ledger_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_hot_postings")),
    )
    op.create_index(
        "ix_ledger_hot_postings_account", "ledger_hot_postings", ["account_id"], unique=False
    )
    op.create_table(
        "ledger_hot_merchants",
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.id"],
            name=op.f("fk_ledger_hot_merchants_merchant_id_merchants"),
        ),
        sa.PrimaryKeyConstraint("merchant_id", name=op.f("pk_ledger_hot_merchants")),
    )


def downgrade() -> None:
    op.drop_table("ledger_hot_merchants")
    op.drop_index("ix_ledger_hot_postings_account", table_name="ledger_hot_postings")
    op.drop_table("ledger_hot_postings")
    op.drop_index("ix_ledger_lines_account", table_name="ledger_lines")
    op.drop_index("ix_ledger_lines_entry", table_name="ledger_lines")
    op.drop_table("ledger_lines")
    op.drop_index("ix_ledger_entries_pay_no", table_name="ledger_entries")
    op.drop_index("ix_ledger_entries_merchant_effective", table_name="ledger_entries")
    op.drop_table("ledger_entries")
    op.drop_index("ix_ledger_accounts_merchant", table_name="ledger_accounts")
    op.drop_table("ledger_accounts")
    with op.batch_alter_table("channel_accounts", schema=None) as batch_op:
        batch_op.drop_column("fee_fixed_minor")
        batch_op.drop_column("fee_rate_bps")
