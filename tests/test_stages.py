"""A case's stage is one word of its flow chart, in the shop's words (domain/stages.py): every step
the processes wait at or record is a stage, whatever its round or level, and reads Chinese first."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from aftersales.domain.repair_rules import RepairStage
from aftersales.domain.stages import Stage, stage_label, stage_of

PACKAGE = Path(__file__).resolve().parents[1] / "aftersales"


@pytest.mark.parametrize("step, stage", [
    ("seller-review", Stage.SELLER_REVIEW),
    ("solution-2", Stage.SOLUTION),
    ("compensation-approval-1-supervisor", Stage.COMPENSATION_APPROVAL),
    ("approval-manager", Stage.APPROVAL),
    ("repair-receipt-supervisor", Stage.REPAIR_RECEIPT),
    ("first-response-overdue-3", Stage.FIRST_RESPONSE),
    ("customer-answer-1", Stage.CUSTOMER_ANSWER),
])
def test_a_steps_round_and_level_are_not_its_stage(step, stage):
    assert stage_of(step) is stage


def test_a_step_that_is_no_stage_is_named():
    with pytest.raises(ValueError, match="'sign-here'"):
        stage_of("sign-here")
    assert stage_label("sign-here") == "sign-here"  # an old row shows as stored


def test_every_stage_reads_chinese_first():
    assert all(re.match(r"^[\u4e00-\u9fff]", stage.label) for stage in Stage)


def test_every_step_the_processes_declare_is_a_stage():
    """The steps written in the code (a wait's ``step=``, a recorded ``stage=``, ``set_stage``) and
    the repair's six stages: each is a stage, so no case is ever at a step the shop has no word for."""
    written = set()
    for source in PACKAGE.rglob("*.py"):
        text = source.read_text(encoding="utf-8")
        # an f-string's literal start (f"solution-{round_}" → solution)
        written |= {step.rstrip("-") for step in re.findall(r"\b(?:step|stage)=f?\"([a-z][a-z0-9_-]*)", text)}
        written |= set(re.findall(r"set_stage\(session, case_id, \"([a-z-]+)\"", text))
        # a step set on a spec afterwards (spec.step, spec.title = "refused-parcel-back", …) and a default step
        written |= set(re.findall(r"\.step(?:, [\w.]+)* = \"([a-z][a-z0-9_-]*)\"", text))
        written |= set(re.findall(r"\bstep: str = \"([a-z][a-z0-9_-]*)\"", text))
    written |= {stage.value for stage in RepairStage}
    assert len(written) > 30
    assert not [step for step in written if step not in set(Stage) and not _is_stage(step)]


def _is_stage(step: str) -> bool:
    try:
        stage_of(step)
        return True
    except ValueError:
        return False


def test_stages_stored_with_their_round_are_migrated_to_their_words(tmp_path):
    import sqlalchemy as sa
    from alembic import command
    from alembic.config import Config

    from aftersales.integrations.db import MIGRATIONS

    url = f"sqlite:///{tmp_path / 'cases.db'}"
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url)
    command.upgrade(cfg, "0005_case_status_wait_for_whom")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for case_id, stage in (("complaint-T1", "solution-2"), ("repair-R1", "repair-receipt-supervisor"), ("x-1", "made-up")):
            conn.execute(sa.text("INSERT INTO \"case\" (id, process, order_id, customer_id, status, stage, requested_by, reason, amount,"
                                 " currency, details, opened_at, updated_at) VALUES (:id, 'complaint', '', 'C1', 'open', :stage, 'buyer',"
                                 " '', 0, 'CNY', '{}', '2026-12-01 00:00:00', '2026-12-01 00:00:00')"), {"id": case_id, "stage": stage})
    command.upgrade(cfg, "head")
    with engine.connect() as conn:
        stages = dict(conn.execute(sa.text("SELECT id, stage FROM \"case\"")).all())
    engine.dispose()
    assert stages == {"complaint-T1": "solution", "repair-R1": "repair-receipt", "x-1": "made-up"}
