"""the shop platform a case's order is on: its steps talk to that platform for the case's life

Revision ID: 0008_case_platform
Revises: 0007_carrier_push
Create Date: 2026-12-06 13:00:00

Cases opened before are the gateway's (the only platform there was).
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0008_case_platform'
down_revision = '0007_carrier_push'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('case', schema=None) as batch_op:
        batch_op.add_column(sa.Column('platform', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False,
                                      server_default='gateway'))


def downgrade() -> None:
    with op.batch_alter_table('case', schema=None) as batch_op:
        batch_op.drop_column('platform')
