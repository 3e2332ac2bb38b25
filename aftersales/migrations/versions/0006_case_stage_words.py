"""a case's stage is a step of its flow chart without the wait's round or level

Revision ID: 0006_case_stage_words
Revises: 0005_case_status_wait_for_whom
Create Date: 2026-12-06 00:50:00

Stages were the wait's step as it came (``solution-2``, ``repair-receipt-supervisor``); they are now
the words of ``domain/stages.py`` (``solution``, ``repair-receipt``). A stored stage that is none of
them is left as it is (``case show`` prints it as stored). The round and the level stay in the
wait's own row, so downgrading changes nothing back.
"""
import sqlalchemy as sa
from alembic import op

from aftersales.domain.stages import stage_of

revision = '0006_case_stage_words'
down_revision = '0005_case_status_wait_for_whom'
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    cases = sa.table("case", sa.column("id", sa.String), sa.column("stage", sa.String))
    for case_id, stage in bind.execute(sa.select(cases.c.id, cases.c.stage)).all():
        try:
            words = stage_of(stage).value
        except ValueError:
            continue
        if words != stage:
            bind.execute(cases.update().where(cases.c.id == case_id).values(stage=words))


def downgrade() -> None:
    pass
