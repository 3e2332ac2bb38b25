"""the 15-day tracker's watch list and poller checkpoints

Revision ID: 0003_order_tracking
Revises: 0002_warning_alert
Create Date: 2026-11-23 20:50:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import aftersales.domain.models


revision = '0003_order_tracking'
down_revision = '0002_warning_alert'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('tracked_order',
    sa.Column('order_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('customer_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('carrier', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('waybill', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('phone_tail', sqlmodel.sql.sqltypes.AutoString(length=4), nullable=False),
    sa.Column('shipped_at', aftersales.domain.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('signed_at', aftersales.domain.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('watching', sa.Boolean(), nullable=False),
    sa.Column('next_check_at', aftersales.domain.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_checked_at', aftersales.domain.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_state', sa.Integer(), nullable=True),
    sa.Column('last_status_code', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('last_event_at', aftersales.domain.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('acted_on', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('order_id')
    )
    with op.batch_alter_table('tracked_order', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tracked_order_watching'), ['watching'], unique=False)
        batch_op.create_index(batch_op.f('ix_tracked_order_next_check_at'), ['next_check_at'], unique=False)
    op.create_table('checkpoint',
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('value', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('updated_at', aftersales.domain.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )


def downgrade() -> None:
    op.drop_table('checkpoint')
    with op.batch_alter_table('tracked_order', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tracked_order_next_check_at'))
        batch_op.drop_index(batch_op.f('ix_tracked_order_watching'))
    op.drop_table('tracked_order')
