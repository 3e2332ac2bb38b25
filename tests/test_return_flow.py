"""The return process (rulebook §1.1) end to end: real Prefect server, served deployments, the
sandbox platform over loopback, the case database and a real notification receiver."""

from __future__ import annotations

import json
from decimal import Decimal
from uuid import UUID

import httpx
import pyotp
import pytest
from prefect.input.run_input import keyset_from_paused_state
from sqlmodel import select

from aftersales.approvals.auth import DEMO_STAFF
from aftersales.approvals.resume import ResumeRefused, resume_wait
from aftersales.domain.models import Case
from aftersales.domain.outcomes import Outcome
from aftersales.integrations.db import session_scope
from aftersales.domain.calendar import shop_time
from tests.support.records import card_shows_the_close, card_shows_the_wait, case_view, events, ledger, wait_row
from tests.support.stack import wait_until

PHONE = "13812345678"


def form_input(stack, run_id, key: str):
    """One of a paused run's form inputs (its schema, its description) as the Prefect server keeps
    it for the UI, or None while there is none."""
    try:
        return json.loads(stack.prefect().read_flow_run_input(run_id, key))
    except httpx.HTTPStatusError as missing:
        if missing.response.status_code != 404:
            raise
        return None


def describe_form(stack, wait) -> str:
    """The description above the Resume form (Prefect saves it just after the run pauses)."""
    run = stack.prefect().read_flow_run(UUID(wait.flow_run_id))
    return wait_until(lambda: form_input(stack, run.id, keyset_from_paused_state(run.state)["description"]), 30, f"the form of {wait.key}")


def ship(stack, case_id: str, postage: str = "10.00"):
    return stack.answer(case_id, "buyer-shipment", carrier="yuantong", tracking_number="YT1234567890", return_postage=postage)


def test_happy_path_refunds_once_and_tells_everyone(stack, sandbox_clean, team):
    order = stack.make_order(paid="128.00")
    case_id = stack.open_return(order, reason="尺码不合适 wrong size")

    review = stack.waiting(case_id, "seller-review")
    assert review.addressed_to == "supervisor"  # 128 CNY is above the agent's 20 CNY (§1.3)
    # the run page shows the case without opening the form, and the run sits in the supervisors' queue
    card, tags, money = case_view(stack, case_id)
    assert order["order_id"] in card and "¥128.00" in card and "主管 supervisors" in card
    assert shop_time(review.deadline) in card and "+08:00" in card and review.default_action in card
    assert "waiting:supervisor" in tags and f"deadline:{shop_time(review.deadline)[:10]}" in tags and "process:return" in tags
    assert PHONE not in card
    assert stack.approve(case_id, "seller-review", team["S002"], decision="agree").status == "answered"
    stack.waiting(case_id, "buyer-shipment")
    card, tags, _ = case_view(stack, case_id)
    assert "买家 the buyer" in card and "waiting:buyer" in tags and "waiting:supervisor" not in tags
    assert team["S002"] in card  # who decided, in the timeline
    card_shows_the_wait(stack, case_id, stack.waiting(case_id, "buyer-shipment"), mask=PHONE)
    assert ship(stack, case_id).status == "answered"
    card = card_shows_the_wait(stack, case_id, stack.waiting(case_id, "receipt"), mask=PHONE)
    assert "YT1234567890" in card and "buyer" in card  # the waybill the buyer reported, and who reported it
    assert stack.approve(case_id, "receipt", team["S004"], note="外箱完好").status == "answered"
    card = card_shows_the_wait(stack, case_id, stack.waiting(case_id, "inspection"), mask=PHONE)
    assert team["S004"] in card  # who signed for the parcel, in the timeline
    assert stack.approve(case_id, "inspection", team["S004"], result="pass", refund_amount="128.00").status == "answered"

    case = stack.finished(case_id)
    assert case.outcome == "refunded"
    refunds = stack.refunds(order["order_id"])
    assert [Decimal(r["amount"]) for r in refunds] == [Decimal("128.00")]
    card, money = card_shows_the_close(stack, case_id, Outcome(case.outcome).label)
    _, tags, _ = case_view(stack, case_id)
    assert "process:return" in tags
    assert {(row["kind"], row["amount"], row["approved_by"]) for row in money} >= {("refund", "128.00", team["S004"])}

    lines = {(line.kind, line.bearer): line for line in ledger(case_id)}
    assert lines[("refund", "seller")].amount == Decimal("128.00")
    assert lines[("refund", "seller")].approved_by == team["S004"]
    assert lines[("refund", "seller")].platform_ref == refunds[0]["refund_id"]
    # §1.1 postage: a no-reason return's postage is the buyer's
    assert lines[("return_postage", "buyer")].amount == Decimal("10.00")

    actors = {(e.action, e.details.get("step")): e.actor for e in events(case_id)}
    assert actors[("wait.accepted", "seller-review")] == team["S002"]
    assert actors[("wait.accepted", "buyer-shipment")] == "buyer"
    assert actors[("wait.accepted", "inspection")] == team["S004"]

    supervisor = stack.messages("/staff/supervisor")
    approval = [m for m in supervisor if case_id in json.dumps(m.json, ensure_ascii=False)]
    assert approval, "the supervisor was told a return waits for them"
    staff_text = json.dumps([m.json for m in stack.messages("/staff/")], ensure_ascii=False)
    assert PHONE not in staff_text and "138****5678" in staff_text  # masked for staff
    buyer_text = json.dumps([m.json for m in stack.customer_messages(order)], ensure_ascii=False)
    assert "128.00" in buyer_text and case_id in buyer_text
    assert any("finance" in m.path and case_id in json.dumps(m.json, ensure_ascii=False) for m in stack.messages("/staff/finance"))


def test_refusal_needs_a_note_and_closes_without_refund(stack, sandbox_clean, team):
    order = stack.make_order(paid="88.00")
    case_id = stack.open_return(order)

    first = stack.approve(case_id, "seller-review", team["S002"], decision="refuse", note="")
    assert first.status == "rejected" and "note" in first.reason
    second = stack.waiting(case_id, "seller-review")
    assert second.key == "seller-review-2" and "note" in second.notice

    stack.approve(case_id, "seller-review", team["S006"], decision="refuse", note="商品已使用，不符合退货条件")
    case = stack.finished(case_id)
    assert case.outcome == "refused"
    assert stack.refunds(order["order_id"]) == []
    assert ledger(case_id) == []
    assert "商品已使用" in json.dumps([m.json for m in stack.customer_messages(order)], ensure_ascii=False)


def test_a_run_resumed_without_an_answer_opens_the_wait_again(stack, sandbox_clean, team):
    """Someone sets a waiting case's run to Scheduled in the Prefect UI (or a Resume sends no form):
    the run goes on with no answer. The case does not fail: the wait is refused as unanswered and
    opens again under the next key, its addressee told, and the next answer moves the case on."""
    from prefect.states import Scheduled

    order = stack.make_order(paid="47.00")
    case_id = stack.open_return(order)
    first = stack.waiting(case_id, "seller-review")
    told = len([m for m in stack.messages("/staff/supervisor") if case_id in json.dumps(m.json, ensure_ascii=False)])
    stack.prefect().set_flow_run_state(UUID(first.flow_run_id), Scheduled(), force=True)

    second = stack.waiting(case_id, "seller-review")
    assert second.key == "seller-review-2" and "without an answer" in second.notice
    refused = wait_row(case_id, "seller-review-1")
    assert refused.status == "rejected" and refused.actor is None and refused.decision == {}
    assert ("seller-review-1:rejected", "system", "wait.rejected") in [(e.key, e.actor, e.action) for e in events(case_id)]
    wait_until(lambda: len([m for m in stack.messages("/staff/supervisor") if case_id in json.dumps(m.json, ensure_ascii=False)]) > told,
               30, "the supervisor to be told again")

    assert stack.approve(case_id, "seller-review", team["S002"]).status == "answered"
    stack.waiting(case_id, "buyer-shipment")
    assert stack.refunds(order["order_id"]) == []


def test_seller_review_deadline_agrees_automatically(stack, sandbox_clean):
    order = stack.make_order(paid="59.00")
    case_id = stack.open_return(order)
    stack.waiting(case_id, "seller-review")

    assert stack.sweep(case_id, days=4)["resumed"] == []  # not yet: 5 days (§1.1 step 2)
    assert stack.sweep(case_id, days=5.1)["resumed"] == [case_id]
    stack.waiting(case_id, "buyer-shipment")
    review = wait_row(case_id, "seller-review-1")
    assert review.status == "answered" and review.actor == "system"
    assert any(e.action == "wait.accepted.by_deadline" and e.actor == "system" for e in events(case_id))
    assert "退货地址" in json.dumps([m.json for m in stack.customer_messages(order)], ensure_ascii=False) or any(
        "return address" in json.dumps(m.json).lower() for m in stack.customer_messages(order))


def test_one_sweep_takes_every_expired_wait_in_batches_and_passes_runs_that_are_gone(stack, sandbox_clean):
    """More expired waits than a claim's ``limit``: one sweep claims batch after batch until none is
    left, resumes several at once, and a wait whose run was deleted (in the UI, say) is given back as
    stuck without stopping the others. Deadlines are moved to 2000 so that no other test's wait is due."""
    from datetime import datetime, timedelta, timezone
    from uuid import uuid4

    from aftersales.domain.models import Wait
    from aftersales.flows.deadline_sweeper import deadline_sweeper

    cases = [stack.open_return(stack.make_order(paid="59.00")) for _ in range(3)]
    for case_id in cases:
        stack.waiting(case_id, "seller-review")
    long_ago = datetime(2000, 1, 1, tzinfo=timezone.utc)
    with session_scope() as session:
        for n, case_id in enumerate(cases):
            wait = session.exec(select(Wait).where(Wait.case_id == case_id, Wait.key == "seller-review-1")).one()
            wait.deadline = long_ago + timedelta(days=1, minutes=n)
            session.add(wait)
        gone = [Wait(case_id=cases[0], key=f"gone-{n}", step="gone", form="ApprovalForm", flow_run_id=str(uuid4()),
                     addressed_to="supervisor", deadline=long_ago, default_action="agree") for n in (1, 2)]
        session.add_all(gone)
    try:
        swept = stack.run(deadline_sweeper(as_of=long_ago + timedelta(days=365), limit=2))
        assert sorted(swept["resumed"]) == sorted(cases)  # batches of 2: the 2 gone, then 2 and 1 cases
        assert swept["stuck"] == [cases[0], cases[0]] and swept["pending"] == []
        for case_id in cases:
            stack.waiting(case_id, "buyer-shipment")
            assert wait_row(case_id, "seller-review-1").actor == "system"
        assert {wait_row(cases[0], f"gone-{n}").status for n in (1, 2)} == {"open"}  # given back, visible
    finally:
        with session_scope() as session:
            for n in (1, 2):
                session.delete(session.exec(select(Wait).where(Wait.case_id == cases[0], Wait.key == f"gone-{n}")).one())


def test_the_sweeper_puts_back_a_form_prefect_failed_to_save(stack, sandbox_clean, monkeypatch):
    """Seen with 100 returns opened at once on a SQLite Prefect server (bench/cases_bench.py): a run
    went Suspended, then Prefect's save of its form failed (`database is locked` → 503, retried for
    about a minute) — the run waited with no form, and no answer or default could reach it until
    serve restarted. The sweeper puts the form back from the wait's copy and applies the default."""
    import aftersales.approvals.resume as resume

    order = stack.make_order(paid="59.00")
    case_id = stack.open_return(order)
    wait = stack.waiting(case_id, "seller-review")
    run = stack.prefect().read_flow_run(UUID(wait.flow_run_id))
    keyset = keyset_from_paused_state(run.state)
    for part in ("schema", "description"):  # as if Prefect's own save had never landed
        stack.prefect().delete_flow_run_input(run.id, keyset[part])
    assert form_input(stack, run.id, keyset["schema"]) is None

    monkeypatch.setattr(resume, "FORM_LOST_AFTER_SECONDS", 0)  # long suspended, as a wait past its deadline is
    assert stack.sweep(case_id, days=5.1)["resumed"] == [case_id]
    stack.waiting(case_id, "buyer-shipment")
    assert wait_row(case_id, "seller-review-1").actor == "system"


def test_a_run_whose_form_save_fails_puts_the_form_back_itself(stack, sandbox_clean, team):
    """The same failure seen live (a SQLite Prefect server under load, `tests/test_operations.py`):
    Prefect set the run Suspended and the server refused the save of its form. The run's own
    process puts the form back from the wait's copy as soon as the server takes it, then stops as
    Prefect would have: the seller's review goes through at once, with no restart and no
    ten-minute wait for the sweeper."""
    order = stack.make_order(paid="59.00")
    with stack.prefect_refuses_form_saves("seller-review-1"):
        case_id = stack.open_return(order)
        wait = stack.waiting(case_id, "seller-review")
        wait_until(lambda: "wait seller-review-1: suspending failed" in stack.serve_log.read_text(errors="replace"), 60,
                   "the run to see its form refused")
        run = stack.prefect().read_flow_run(UUID(wait.flow_run_id))
        keyset = keyset_from_paused_state(run.state)
        assert form_input(stack, run.id, keyset["schema"]) is None  # refused, and not put back while refused
    schema = wait_until(lambda: form_input(stack, run.id, keyset["schema"]), 60, "the run to put its form back")
    assert schema == form_input(stack, run.id, "copy-seller-review-1-schema")
    assert form_input(stack, run.id, keyset["description"]) == form_input(stack, run.id, "copy-seller-review-1-description")

    stack.approve(case_id, "seller-review", team["S002"])
    stack.waiting(case_id, "buyer-shipment")
    assert wait_row(case_id, "seller-review-1").actor == team["S002"]


def test_a_case_whose_run_request_failed_gets_its_run_from_the_scheduled_sweep(stack, sandbox_clean):
    """The case is recorded at the door, then its run is asked for; the Prefect API refuses the
    request (a busy SQLite Prefect server answers 503). The buyer's request is not lost: ten minutes
    on, the sweep asks for the run again, with the case id as its key, and the case waits for the
    seller's review. A later sweep asks nothing more."""
    from datetime import datetime, timedelta, timezone

    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName
    from prefect.settings import PREFECT_API_URL, PREFECT_CLIENT_MAX_RETRIES, temporary_settings

    from aftersales.flows.deadline_sweeper import deadline_sweeper
    from aftersales.intake.core import RUN_MISSING_AFTER
    from aftersales.intake.returns import open_return

    order = stack.make_order(paid="59.00")
    with temporary_settings(updates={PREFECT_API_URL: "http://127.0.0.1:9/api", PREFECT_CLIENT_MAX_RETRIES: 0}):
        with pytest.raises(Exception):  # the caller is told the open failed
            stack.run(open_return(order["order_id"], order["paid_amount"]))
    with session_scope() as session:
        case = session.exec(select(Case).where(Case.order_id == order["order_id"])).one()
        case_id = case.id
        assert case.flow_run_id is None
        case.opened_at -= RUN_MISSING_AFTER + timedelta(minutes=1)  # ten minutes on
        session.add(case)

    no_wait_due = datetime(2000, 1, 1, tzinfo=timezone.utc)
    assert case_id in stack.run(deadline_sweeper(as_of=no_wait_due))["runs_asked_again"]
    stack.waiting(case_id, "seller-review")
    assert case_id not in stack.run(deadline_sweeper(as_of=no_wait_due))["runs_asked_again"]
    runs = stack.prefect().read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[case_id])))
    assert len(runs) == 1
    assert [e.action for e in events(case_id)][:1] == ["case.opened"]


def test_buyer_not_shipping_in_7_days_closes_the_request(stack, sandbox_clean, team):
    order = stack.make_order(paid="59.00")
    case_id = stack.open_return(order)
    stack.approve(case_id, "seller-review", team["S002"])
    stack.waiting(case_id, "buyer-shipment")

    stack.sweep(case_id, days=7.2)
    case = stack.finished(case_id)
    assert case.outcome == "closed_not_shipped"
    assert stack.refunds(order["order_id"]) == []


def test_ten_days_without_receipt_refunds_automatically(stack, sandbox_clean, team):
    order = stack.make_order(paid="128.00")
    case_id = stack.open_return(order, kind="quality", reason="开线 seam came apart")
    stack.approve(case_id, "seller-review", team["S002"])
    ship(stack, case_id, postage="12.00")
    stack.waiting(case_id, "receipt")

    assert stack.sweep(case_id, days=9)["resumed"] == []
    assert stack.sweep(case_id, days=10.1)["resumed"] == [case_id]
    case = stack.finished(case_id)
    assert case.outcome == "refunded_automatically"
    # quality problem: the seller is at fault and refunds the return postage too (§1.1 postage)
    refunds = {r["kind"]: Decimal(r["amount"]) for r in stack.refunds(order["order_id"])}
    assert refunds == {"goods": Decimal("128.00"), "postage": Decimal("12.00")}
    lines = {(line.kind, line.bearer): line for line in ledger(case_id)}
    assert lines[("refund", "seller")].approved_by == "system"
    assert lines[("return_postage", "seller")].amount == Decimal("12.00")
    assert any(case_id in json.dumps(m.json, ensure_ascii=False) for m in stack.messages("/staff/supervisor"))


def test_partial_inspection_and_inspection_deadline(stack, sandbox_clean, team):
    partial_order = stack.make_order(paid="300.00")
    partial = stack.open_return(partial_order)
    stack.approve(partial, "seller-review", team["S002"])
    ship(stack, partial)
    stack.approve(partial, "receipt", team["S007"])
    too_much = stack.approve(partial, "inspection", team["S004"], result="partial", refund_amount="301.00", note="吊牌缺失")
    assert too_much.status == "rejected" and "301" in too_much.reason
    stack.approve(partial, "inspection", team["S004"], result="partial", refund_amount="150.50", note="吊牌缺失 tag missing")
    assert stack.finished(partial).outcome == "partly_refunded"
    assert [Decimal(r["amount"]) for r in stack.refunds(partial_order["order_id"])] == [Decimal("150.50")]

    late_order = stack.make_order(paid="66.00")
    late = stack.open_return(late_order)
    stack.approve(late, "seller-review", team["S006"])
    ship(stack, late)
    stack.approve(late, "receipt", team["S007"])
    stack.waiting(late, "inspection")
    stack.sweep(late, days=5)  # 2 working days, whatever the weekday
    assert stack.finished(late).outcome == "refunded"
    assert [Decimal(r["amount"]) for r in stack.refunds(late_order["order_id"])] == [Decimal("66.00")]


def test_over_limit_escalates_to_the_next_level(stack, sandbox_clean, team):
    order = stack.make_order(paid="899.00")
    case_id = stack.open_return(order)
    assert stack.waiting(case_id, "seller-review").addressed_to == "manager"

    by_supervisor = stack.approve(case_id, "seller-review", team["S002"])
    assert by_supervisor.status == "escalated" and "500" in by_supervisor.reason
    escalated = stack.waiting(case_id, "seller-review")
    assert escalated.key == "seller-review-2" and escalated.addressed_to == "manager"
    assert any(case_id in json.dumps(m.json, ensure_ascii=False) for m in stack.messages("/staff/manager"))

    assert stack.approve(case_id, "seller-review", team["S003"]).status == "answered"
    stack.waiting(case_id, "buyer-shipment")
    assert wait_row(case_id, "seller-review-2").actor == team["S003"]

    agent_order = stack.make_order(paid="128.00")
    agent_case = stack.open_return(agent_order)
    by_agent = stack.approve(agent_case, "seller-review", team["S001"])  # the agent's limit is 20 CNY
    assert by_agent.status == "escalated"
    assert stack.waiting(agent_case, "seller-review").addressed_to == "supervisor"


def test_nobody_approves_their_own_request(stack, sandbox_clean, team):
    order = stack.make_order(paid="128.00")
    case_id = stack.open_return(order, requested_by=team["S002"])
    own = stack.approve(case_id, "seller-review", team["S002"])
    assert own.status == "rejected" and team["S002"] in own.reason
    assert stack.approve(case_id, "seller-review", team["S006"]).status == "answered"


def test_wrong_and_replayed_codes_are_refused(stack, sandbox_clean):
    first_order, second_order = stack.make_order(paid="60.00"), stack.make_order(paid="70.00")
    first, second = stack.open_return(first_order), stack.open_return(second_order)

    secret = {m.id: m.totp_secret for m in DEMO_STAFF}["S002"]
    totp = pyotp.TOTP(secret)
    stale = totp.generate_otp(totp.timecode(__import__("datetime").datetime.now()) - 20)  # ten minutes old
    wrong = stack.answer(first, "seller-review", staff_id="S002", code=stale)
    assert wrong.status == "rejected" and "wrong" in wrong.reason

    code = stack.code("S002")
    assert stack.answer(first, "seller-review", staff_id="S002", code=code).status == "answered"
    replayed = stack.answer(second, "seller-review", staff_id="S002", code=code)
    assert replayed.status == "rejected" and "already used" in replayed.reason

    unknown = stack.answer(second, "seller-review", staff_id="S999", code="123456")
    assert unknown.status == "rejected" and "S999" in unknown.reason
    # the server refuses input that does not fit the form, and the run stays paused
    with pytest.raises(ResumeRefused):
        stack.run(resume_wait(second, {"staff_id": "S002", "code": "12ab"}, "seller-review"))
    assert stack.waiting(second, "seller-review").key == "seller-review-3"


def test_the_form_the_ui_receives_keeps_descriptions_and_constraints(stack, sandbox_clean, team):
    order = stack.make_order(paid="128.00")
    case_id = stack.open_return(order)
    stack.approve(case_id, "seller-review", team["S002"])
    ship(stack, case_id)
    stack.approve(case_id, "receipt", team["S004"])
    wait = stack.waiting(case_id, "inspection")
    run_id = UUID(wait.flow_run_id)

    # Prefect saves the form just after the run is Suspended: on a loaded machine the UI may ask in between
    schema = wait_until(lambda: form_input(stack, run_id, f"suspended-{wait.key}-schema"), 30, "the inspection form's schema")
    description = wait_until(lambda: form_input(stack, run_id, f"suspended-{wait.key}-description"), 30, "its description")
    props = schema["properties"]
    assert props["refund_amount"]["default"] == "128.00"  # prefilled from the case …
    assert props["refund_amount"]["pattern"]  # … keeping its constraint
    assert "Refund amount" in props["refund_amount"]["title"] and props["refund_amount"]["description"]
    assert props["code"]["pattern"] == r"^(\d{6}|[0-9a-f]{64})$" and "authenticator" in props["code"]["description"]
    result_ref = props["result"]["$ref"].split("/")[-1]
    assert schema["definitions"][result_ref]["enum"] == ["pass", "partial", "fail"]
    assert case_id in description and "138****5678" in description and PHONE not in description
    assert "Asia/Shanghai" in description


def test_refund_paid_once_under_retries_repeated_resume_and_restart(stack, sandbox_clean, team):
    order = stack.make_order(paid="128.00")
    case_id = stack.open_return(order)
    stack.approve(case_id, "seller-review", team["S002"])
    ship(stack, case_id)
    wait = stack.waiting(case_id, "receipt")

    # a restart while the case waits: the wait survives and can still be answered, also when the
    # machine died in the instant between Prefect's pausing the run and its saving the form (the
    # record that leaves: a suspended run without its form); serve puts the form back as it starts
    run = stack.prefect().read_flow_run(UUID(wait.flow_run_id))
    form_keys = keyset_from_paused_state(run.state)
    for part in ("schema", "description"):
        stack.prefect().delete_flow_run_input(run.id, form_keys[part])
    stack.stop_serving(hard=True)
    stack.start_serving()
    schema = wait_until(lambda: form_input(stack, run.id, form_keys["schema"]), 60, "the receipt form back")
    assert "staff_id" in schema["properties"] and case_id in form_input(stack, run.id, form_keys["description"])
    stack.approve(case_id, "receipt", team["S007"])
    inspection = stack.waiting(case_id, "inspection")

    # the platform commits the refund but answers 500 more often than the client retries (2):
    # the client gives up, Prefect retries the task, and the idempotency key keeps it to one refund
    stack.faults(fail_after_commit=4)
    verdict = stack.approve(case_id, "inspection", team["S004"], result="pass", refund_amount="128.00")
    with pytest.raises(ResumeRefused):  # a second answer to the same wait is refused
        stack.run(resume_wait(case_id, {"staff_id": team["S007"], "code": stack.code(team["S007"]), "result": "pass", "refund_amount": "128.00"}, "inspection"))
    assert verdict.status == "answered" and inspection.key == "inspection-1" and wait.key == "receipt-1"
    case = stack.finished(case_id, timeout=150)
    assert case.outcome == "refunded"
    assert [Decimal(r["amount"]) for r in stack.refunds(order["order_id"])] == [Decimal("128.00")]
    assert len([line for line in ledger(case_id) if line.kind == "refund"]) == 1
    assert len([e for e in events(case_id) if e.action == "refund.paid"]) == 1


def test_short_shipment_reships_the_missing_item_once(stack, sandbox_clean, team):
    items = [{"sku": "SKU-CUP", "name": "马克杯", "category": "home", "quantity": 1, "unit_price": "35.00"},
             {"sku": "SKU-SPOON", "name": "勺子", "category": "home", "quantity": 1, "unit_price": "15.00"}]
    order = stack.make_order(paid="50.00", items=items, delivered_days_ago=0.2)
    case_id = stack.open_return(order, amount="15.00", kind="short_shipment", missing_skus=["SKU-SPOON"])
    assert stack.waiting(case_id, "short-shipment-remedy").addressed_to == "agent"
    stack.approve(case_id, "short-shipment-remedy", team["S001"], remedy="reship_missing", note="补发勺子")
    assert stack.finished(case_id).outcome == "reshipped"
    assert len(stack.reshipments(order["order_id"])) == 1
    assert stack.refunds(order["order_id"]) == []
    assert {line.kind for line in ledger(case_id)} == {"reshipment", "outbound_postage"}

    late = stack.make_order(paid="50.00", items=items, delivered_days_ago=0.2)
    late_case = stack.open_return(late, amount="15.00", kind="short_shipment", missing_skus=["SKU-SPOON"])
    stack.waiting(late_case, "short-shipment-remedy")
    stack.sweep(late_case, days=6)  # 3 working days → refund the missing part
    assert stack.finished(late_case).outcome == "refunded"
    assert [Decimal(r["amount"]) for r in stack.refunds(late["order_id"])] == [Decimal("15.00")]


def test_parcel_refused_at_the_door_is_checked_and_refunded(stack, sandbox_clean, team):
    order = stack.make_order(paid="128.00", delivered_days_ago=None, status="shipped", refused_hours_ago=3)
    case_id = stack.open_return(order, kind="refused_at_delivery", reason="外箱破损拒收")
    stack.approve(case_id, "refused-parcel-back", team["S007"], note="拒收件已退回")
    stack.approve(case_id, "inspection", team["S004"], result="pass", refund_amount="128.00")
    assert stack.finished(case_id).outcome == "refunded"
    assert [Decimal(r["amount"]) for r in stack.refunds(order["order_id"])] == [Decimal("128.00")]


def test_a_repeated_request_opens_no_second_case(stack, sandbox_clean):
    order = stack.make_order(paid="40.00")
    first = stack.open_return(order)
    again = stack.open_return(order)
    assert first == again
    stack.waiting(first, "seller-review")
    with session_scope() as session:
        assert len(session.exec(select(Case).where(Case.order_id == order["order_id"])).all()) == 1


# --- finance: the export agrees with the platform (free-shipping no-reason return) -----------------


def _cell_formula_value(formula: str, detail: list[list], summary_row: dict) -> Decimal:
    """Evaluate a summary cell's SUMIFS/COUNTIFS over the detail rows the way a spreadsheet does
    (the workbook carries no cached values: openpyxl cannot compute them)."""
    import re

    match = re.fullmatch(r"=(SUMIFS|COUNTIFS)\((.*)\)", formula)
    assert match, formula
    function, args = match.group(1), re.findall(r"'[^']*'!\$([A-Z]+):\$[A-Z]+|(\"[^\"]*\"(?:&\$[A-Z]+\d+)?)", match.group(2))
    columns = [ord(col) - ord("A") for col, _ in args if col]
    criteria = [crit for col, crit in args if crit]
    if function == "SUMIFS":
        sum_column, columns = columns[0], columns[1:]
    assert len(columns) == len(criteria), formula

    def resolve(criterion: str) -> str:
        text, _, ref = criterion.partition("&")
        text = text.strip('"')
        return text + str(summary_row[ref.replace("$", "")]) if ref else text

    def matches(value, criterion: str) -> bool:
        if criterion.startswith("<>"):
            return value not in (None, "") if criterion == "<>" else value != criterion[2:]
        return value == criterion.removeprefix("=")

    tests = [(column, resolve(criterion)) for column, criterion in zip(columns, criteria)]
    hits = [row for row in detail if all(matches(row[column] if column < len(row) else None, c) for column, c in tests)]
    if function == "COUNTIFS":
        return Decimal(len(hits))
    return sum((Decimal(str(row[sum_column])) for row in hits if isinstance(row[sum_column], (int, float))), Decimal("0"))


def test_free_shipping_return_exports_what_the_platform_paid(stack, sandbox_clean, tmp_path, team):
    import openpyxl

    from aftersales.domain.settings import get_settings
    from aftersales.reporting.compensation import DETAIL_SHEET, SUMMARY_SHEET, export_compensation
    from aftersales.reporting.months import Month

    order = stack.make_order(paid="128.00", free_shipping=True)
    case_id = stack.open_return(order, reason="不喜欢 changed my mind")  # a no-reason return
    stack.approve(case_id, "seller-review", team["S002"], decision="agree")
    ship(stack, case_id, postage="10.00")
    receipt = stack.waiting(case_id, "receipt")
    assert "YT1234567890" in describe_form(stack, receipt) and "yuantong" in case_view(stack, case_id)[0]  # the waybill the buyer reported
    stack.approve(case_id, "receipt", team["S004"], note="外箱完好")
    inspection_form = describe_form(stack, stack.waiting(case_id, "inspection"))
    stack.sweep(case_id, days=5)  # 2 working days without inspection: passes, full refund
    assert stack.finished(case_id).outcome == "refunded"

    # §1.1 free shipping: the buyer's half of the outbound postage is deducted from the refund
    buyer_half = (get_settings().rules.standard_postage / 2).quantize(Decimal("0.01"))
    # the inspection form and the buyer's message both say what the platform pays, and why
    explained = f"¥128.00 − ¥{buyer_half:.2f}（包邮商品无理由退货"
    assert explained in inspection_form and f"= ¥{Decimal('128.00') - buyer_half:.2f}" in inspection_form
    paid_message = [m for m in stack.customer_messages(order) if "退款已原路退回" in json.dumps(m.json, ensure_ascii=False)]
    assert paid_message and explained in json.dumps(paid_message[0].json, ensure_ascii=False)
    platform = {r["refund_id"]: Decimal(r["amount"]) for r in stack.refunds(order["order_id"])}
    assert list(platform.values()) == [Decimal("128.00") - buyer_half]  # 122.00 at the platform

    lines = ledger(case_id)
    month = Month.previous(lines[0].created_at).next()
    output = tmp_path / f"compensation-{month}.xlsx"
    result = export_compensation(month, output)
    book = openpyxl.load_workbook(output)

    detail_sheet = book[DETAIL_SHEET]
    header = [cell.value for cell in detail_sheet[1]]

    def column(label: str) -> int:
        return next(i for i, h in enumerate(header) if label in h)

    CASE, KIND, AMOUNT, CURRENCY, BEARER, REF = (column(h) for h in ("Case", "Kind", "Amount", "Currency", "Bearer", "Platform ref"))
    detail = [[cell.value for cell in row] for row in detail_sheet.iter_rows(min_row=2)]
    ours = [row for row in detail if row[CASE] == case_id]

    # the refund line carries what the platform paid, under the platform's reference
    refund_rows = [row for row in ours if row[KIND] == "refund"]
    assert len(refund_rows) == 1
    (ref, paid), = platform.items()
    assert refund_rows[0][REF] == ref
    assert Decimal(str(refund_rows[0][AMOUNT])) == paid
    # the buyer's half stays visible as an informational, buyer-borne line
    buyer_rows = [row for row in ours if row[BEARER] == "buyer"]
    assert any(row[KIND] == "outbound_postage" and Decimal(str(row[AMOUNT])) == buyer_half for row in buyer_rows)

    # the platform-paid column: what the platform paid, by reference, and nothing else
    PAID = column("Platform paid")
    paid_by_ref: dict[str, Decimal] = {}
    for row in ours:
        if row[PAID] is not None:
            paid_by_ref[row[REF]] = paid_by_ref.get(row[REF], Decimal("0")) + Decimal(str(row[PAID]))
    assert paid_by_ref == platform

    # the summary: the shop's total excludes what others bear; platform-paid reconciles; differences ¥0.00
    summary_sheet = book[SUMMARY_SHEET]
    summary = {row[0].value: {"row": row[0].row, **{cell.column_letter: cell.value for cell in row}}
               for row in summary_sheet.iter_rows() if isinstance(row[0].value, str)}

    def total_row(label: str) -> dict:
        return next(row for key, row in summary.items() if label in key)

    def money(value) -> Decimal:
        return Decimal(str(value))

    cny = [row for row in detail if row[CURRENCY] == "CNY"]
    expected = {  # label: (lines it sums, the export's Decimal control total)
        "Shop bears": ([r for r in cny if r[BEARER] == "seller"], result.shop),
        "Others bear": ([r for r in cny if r[BEARER] != "seller"], result.others),
        "Platform paid": ([r for r in cny if r[PAID] is not None], result.platform_paid),
    }
    for label, (rows, control) in expected.items():
        row = total_row(label)
        amounts = [money(r[PAID] if label == "Platform paid" else r[AMOUNT]) for r in rows]
        assert money(row["E"]) == sum(amounts, Decimal("0")) == control.amount, label
        assert row["F"] == f"=D{row['row']}-E{row['row']}", label
        # the formula, evaluated over the detail sheet, gives the control total: difference ¥0.00
        assert _cell_formula_value(row["D"], detail, row) - money(row["E"]) == Decimal("0.00"), (label, row["D"])
        assert _cell_formula_value(row["C"], detail, row) == len(rows) == control.count, (label, row["C"])
    assert result.shop.amount + result.others.amount == result.total.amount
    # this case's share: the shop bears the refund and its own half of the outbound postage, not the buyer's
    ours_shop = sum((Decimal(str(r[AMOUNT])) for r in ours if r[BEARER] == "seller"), Decimal("0"))
    assert ours_shop == paid + (get_settings().rules.standard_postage - buyer_half)
