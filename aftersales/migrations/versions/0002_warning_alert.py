"""early-warning alerts (reporting)

Revision ID: 0002_warning_alert
Revises: 0001
Create Date: 2026-11-23 20:40:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import aftersales.domain.models


revision = '0002_warning_alert'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('warning_alert',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('subject_kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('subject', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('window_start', aftersales.domain.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('window_end', aftersales.domain.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('threshold', sa.Float(), nullable=False),
    sa.Column('department', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
    sa.Column('created_at', aftersales.domain.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', aftersales.domain.models.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('warning_alert', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_warning_alert_key'), ['key'], unique=True)
        batch_op.create_index(batch_op.f('ix_warning_alert_status'), ['status'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('warning_alert', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_warning_alert_status'))
        batch_op.drop_index(batch_op.f('ix_warning_alert_key'))
    op.drop_table('warning_alert')
