"""a waiting case says for whom it waits: "waiting" becomes "wait_seller" or "wait_buyer"

Revision ID: 0005_case_status_wait_for_whom
Revises: 0004_ledger_platform_paid
Create Date: 2026-12-02 22:20:00

A case that waits at an open wait addressed to the buyer becomes ``wait_buyer``; any other
"waiting" case (a staff wait, or one between steps) ``wait_seller``. Downgrading folds both back.
"""
from alembic import op


revision = '0005_case_status_wait_for_whom'
down_revision = '0004_ledger_platform_paid'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        UPDATE "case" SET status = 'wait_buyer'
        WHERE status = 'waiting' AND EXISTS (
            SELECT 1 FROM wait WHERE wait.case_id = "case".id AND wait.addressed_to = 'buyer' AND wait.status IN ('open', 'expiring'))
    """)
    op.execute("""UPDATE "case" SET status = 'wait_seller' WHERE status = 'waiting'""")


def downgrade() -> None:
    op.execute("""UPDATE "case" SET status = 'waiting' WHERE status IN ('wait_seller', 'wait_buyer')""")
