"""ledger lines that record a payment the platform confirmed (finance reconciles against them)

Revision ID: 0004_ledger_platform_paid
Revises: 0003_order_tracking
Create Date: 2026-11-24 09:00:00

Lines written before this revision keep ``platform_paid = false``: which of them were platform
payments (and whether their amount was the platform's confirmed one) is not known from the row, so
none is certified after the fact. Months exported from such lines show no platform-paid total.
"""
from alembic import op
import sqlalchemy as sa


revision = '0004_ledger_platform_paid'
down_revision = '0003_order_tracking'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('ledger_line', schema=None) as batch_op:
        batch_op.add_column(sa.Column('platform_paid', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('ledger_line', schema=None) as batch_op:
        batch_op.drop_column('platform_paid')
