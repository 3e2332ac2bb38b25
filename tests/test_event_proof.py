"""Outside events carry proof (approvals/proof.py): the buyer's "I shipped it" is believed when our
intake signed it for that wait and those values, or when a staff member entered it with their code.
A hand-made resume through the Prefect API — by anyone who holds its credentials — changes nothing.
A buyer-declared return postage is refunded up to the standard postage; more needs a staff member."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

from aftersales.approvals.proof import event_proof
from aftersales.approvals.resume import form_schema, wait_for_verdict
from aftersales.domain.models import Case
from aftersales.integrations.db import session_scope
from tests.support.records import events, ledger, wait_row

FORGED = {"reported_by": "buyer", "carrier": "yuantong", "tracking_number": "YT0000000000", "return_postage": "0.00"}


def by_hand(stack, case_id: str, step: str, values: dict):
    """A resume typed against the Prefect API (with its credentials), past our intake; the verdict row."""
    from prefect import get_client

    wait = stack.waiting(case_id, step)

    async def go():
        async with get_client() as client:
            run = await client.read_flow_run(UUID(wait.flow_run_id))
            await form_schema(client, run)  # the form is saved, as the UI would have found it
            await client.resume_flow_run(run.id, run_input=values)
        return await wait_for_verdict(case_id, wait.key, timeout=90)

    return stack.run(go())


def where(case_id: str) -> tuple[str, str]:
    with session_scope() as session:
        case = session.get(Case, case_id)
        return case.status, case.stage


def test_a_forged_shipment_is_refused_and_the_case_does_not_move(stack, sandbox_clean, team):
    order = stack.make_order(paid="128.00")
    case_id = stack.open_return(order, reason="尺码不合适 wrong size")
    stack.approve(case_id, "seller-review", team["S002"])
    first = stack.waiting(case_id, "buyer-shipment")

    def proof_for(key: str, values: dict) -> str:
        return event_proof(case_id, key, {**values, "staff_id": "", "code": ""})

    tampered = {**FORGED, "tracking_number": "YT1111111111"}
    attempts = [
        (FORGED, "needs our intake's proof"),  # no proof at all: the security review's forged answer
        ({**FORGED, "proof": "ab" * 32}, "does not match"),  # a made-up proof
        ({**FORGED, "proof": proof_for(first.key, tampered)}, "does not match"),  # signed for other values
        ({**FORGED, "proof": proof_for("buyer-shipment-9", FORGED)}, "does not match"),  # signed for another wait
        ({**FORGED, "proof": proof_for(first.key, FORGED)}, "does not match"),  # replayed: made for an earlier wait
    ]
    for values, reason in attempts:
        verdict = by_hand(stack, case_id, "buyer-shipment", values)
        assert (verdict.status, verdict.actor) == ("rejected", "buyer"), verdict
        assert reason in verdict.reason
        assert where(case_id) == ("wait_buyer", "buyer-shipment")
    assert not [e for e in events(case_id) if e.action.startswith("parcel.")]
    assert stack.waiting(case_id, "buyer-shipment").key == "buyer-shipment-6"  # each refusal reopened the same wait
    assert "needs our intake's proof" in wait_row(case_id, "buyer-shipment-2").notice  # shown above the next form

    # through our intake (signed for the wait it answers) the same shipment is believed
    assert stack.answer(case_id, "buyer-shipment", carrier="yuantong", tracking_number="YT1234567890").status == "answered"
    stack.waiting(case_id, "receipt")
    assert [e.actor for e in events(case_id) if e.action == "wait.accepted"][-1] == "buyer"


def test_a_staff_member_enters_an_event_with_their_code_and_it_is_theirs(stack, sandbox_clean, team):
    """Entered by hand in the UI's form: the staff id and code instead of a proof; the trail names
    the person, and the return postage they saw the receipt of is refunded in full."""
    order = stack.make_order(paid="128.00")
    case_id = stack.open_return(order, kind="quality", reason="开线 seam came apart")
    stack.approve(case_id, "seller-review", team["S002"])
    wrong_code = by_hand(stack, case_id, "buyer-shipment", {**FORGED, "staff_id": team["S004"], "code": "000000"})
    assert wrong_code.status == "rejected" and where(case_id) == ("wait_buyer", "buyer-shipment")
    entered = by_hand(stack, case_id, "buyer-shipment", {**FORGED, "return_postage": "30.00", "staff_id": team["S004"],
                                                         "code": stack.code(team["S004"])})
    assert (entered.status, entered.actor) == ("answered", team["S004"]), entered
    stack.waiting(case_id, "receipt")
    assert stack.sweep(case_id, days=10.1)["resumed"] == [case_id]  # no receipt confirmed: refunded by the rulebook
    stack.finished(case_id)
    refunds = {r["kind"]: Decimal(r["amount"]) for r in stack.refunds(order["order_id"])}
    assert refunds == {"goods": Decimal("128.00"), "postage": Decimal("30.00")}


def test_the_buyers_declared_postage_is_refunded_up_to_the_standard_postage(stack, sandbox_clean, team):
    order = stack.make_order(paid="128.00")
    case_id = stack.open_return(order, kind="quality", reason="开线 seam came apart")
    stack.approve(case_id, "seller-review", team["S002"])
    stack.answer(case_id, "buyer-shipment", carrier="yuantong", tracking_number="YT1234567890", return_postage="30.00")
    stack.waiting(case_id, "receipt")
    assert stack.sweep(case_id, days=10.1)["resumed"] == [case_id]
    stack.finished(case_id)
    refunds = {r["kind"]: Decimal(r["amount"]) for r in stack.refunds(order["order_id"])}
    assert refunds == {"goods": Decimal("128.00"), "postage": Decimal("12.00")}  # the standard postage, no receipt seen

    # a no-reason return: the buyer bears the postage, so nothing is capped; the ledger keeps what they declared
    order = stack.make_order(paid="128.00")
    case_id = stack.open_return(order, reason="不想要了 changed my mind")
    stack.approve(case_id, "seller-review", team["S002"])
    stack.answer(case_id, "buyer-shipment", carrier="yuantong", tracking_number="YT1234567891", return_postage="30.00")
    stack.waiting(case_id, "receipt")
    assert stack.sweep(case_id, days=10.1)["resumed"] == [case_id]
    stack.finished(case_id)
    assert {(line.kind, line.bearer): line.amount for line in ledger(case_id)}[("return_postage", "buyer")] == Decimal("30.00")
    assert [r["kind"] for r in stack.refunds(order["order_id"])] == ["goods"]
