"""the deadline sweeper's claim reads only expired open waits: a partial index on the open waits' deadlines

Revision ID: 0009_wait_open_deadline
Revises: 0008_case_platform
Create Date: 2026-12-06 16:00:00

The claim (``approvals/waits.claim_expired``) asks for the open waits whose deadline has passed,
oldest first, ``FOR UPDATE SKIP LOCKED``. With only ``ix_wait_status`` and ``ix_wait_deadline`` a
database reads every open wait and sorts them, or every wait up to the moment — the answered ones
of the past included, which only grow. This index holds the open waits only (it stays as large as
what is waiting, however long the history), in deadline order: the claim reads the expired ones
and stops (bench/hold_bench.py: 10,000 waiting at once). SQLite and PostgreSQL both have partial
indexes.
"""
from alembic import op
import sqlalchemy as sa


revision = '0009_wait_open_deadline'
down_revision = '0008_case_platform'
branch_labels = None
depends_on = None

OPEN = sa.text("status = 'open'")


def upgrade() -> None:
    with op.batch_alter_table('wait', schema=None) as batch_op:
        batch_op.create_index('ix_wait_open_deadline', ['deadline'], unique=False, sqlite_where=OPEN, postgresql_where=OPEN)


def downgrade() -> None:
    with op.batch_alter_table('wait', schema=None) as batch_op:
        batch_op.drop_index('ix_wait_open_deadline')
