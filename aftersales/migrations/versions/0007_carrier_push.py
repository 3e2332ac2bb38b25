"""carrier push subscriptions: on the tracker's watch list, and the return parcels a buyer sends back

Revision ID: 0007_carrier_push
Revises: 0006_case_stage_words
Create Date: 2026-12-06 10:00:00

Rows already on the watch list start unsubscribed (push_status ""): the next tracker sweep
subscribes them.
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import aftersales.domain.models


revision = '0007_carrier_push'
down_revision = '0006_case_stage_words'
branch_labels = None
depends_on = None


def subscription_columns() -> list[sa.Column]:
    text = sqlmodel.sql.sqltypes.AutoString
    moment = aftersales.domain.models.UTCDateTime(timezone=True)
    return [
        sa.Column('subscribed_at', moment, nullable=True),
        sa.Column('subscriptions', sa.Integer(), nullable=False, server_default='0'),
        sa.Column('push_status', text(length=16), nullable=False, server_default=''),
        sa.Column('push_note', text(length=200), nullable=False, server_default=''),
        sa.Column('last_push_at', moment, nullable=True),
        sa.Column('resubscribe_at', moment, nullable=True),
        sa.Column('carrier_was', text(length=32), nullable=False, server_default=''),
    ]


def upgrade() -> None:
    with op.batch_alter_table('tracked_order', schema=None) as batch_op:
        for column in subscription_columns():
            batch_op.add_column(column)
        batch_op.create_index('ix_tracked_order_push_status', ['push_status'], unique=False)
    op.create_table('return_parcel',
    *subscription_columns(),
    sa.Column('case_id', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('order_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('carrier', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('waybill', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('receipt_step', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('last_state', sa.Integer(), nullable=True),
    sa.Column('last_event_at', aftersales.domain.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('signed_at', aftersales.domain.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('acted_on', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('case_id')
    )
    with op.batch_alter_table('return_parcel', schema=None) as batch_op:
        batch_op.create_index('ix_return_parcel_push_status', ['push_status'], unique=False)


def downgrade() -> None:
    op.drop_table('return_parcel')
    with op.batch_alter_table('tracked_order', schema=None) as batch_op:
        batch_op.drop_index('ix_tracked_order_push_status')
        for column in reversed(subscription_columns()):
            batch_op.drop_column(column.name)
