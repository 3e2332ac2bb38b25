"""Customer data stays in the case database: Prefect (its UI and API) sees the case id only.

Rulebook §4 (privacy): a run's parameters, its run inputs (the Resume forms and their
descriptions), its logs, artifacts and events are visible to everyone who can open the Prefect UI.
A complaint, a dispute and a return are opened with the buyer's phone, e-mail and address (on the
order, and quoted in the free text), driven to their first wait, and then everything Prefect stores
is read back through its API: no phone number, e-mail address or street address in clear. Masked
forms (``138****5678``, ``h***@buyer.example``, ``浙江省杭州市西湖区****``) are fine.
"""

from __future__ import annotations

import json
import uuid

from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError

from aftersales.domain.details import details_of
from aftersales.domain.models import Case
from aftersales.integrations.db import session_scope

PHONE = "13812345678"  # every sandbox order's buyer (tests/support/stack.py)
ADDRESS_PARTS = ("文三路", "123 号", "4 幢 501")  # the street part of the buyer's address


def dump(value) -> str:
    if hasattr(value, "model_dump"):
        value = value.model_dump(mode="json")
    return json.dumps(value, ensure_ascii=False, default=str)


async def everything_prefect_stores() -> dict[str, list[str]]:
    """Flow runs (parameters, tags, state), task runs, run inputs, logs, artifacts and events,
    each as JSON text, as any user of the Prefect UI or API could read them."""
    found: dict[str, list[str]] = {"flow runs": [], "task runs": [], "run inputs": [], "logs": [], "artifacts": [], "events": []}
    async with get_client() as client:
        runs, offset = [], 0
        while batch := await client.read_flow_runs(limit=200, offset=offset):
            runs += batch
            offset += len(batch)
        for run in runs:
            found["flow runs"].append(dump(run))
            inputs = await client.filter_flow_run_input(run.id, key_prefix="", limit=1000, exclude_keys=set())
            found["run inputs"] += [f"{i.key}: {i.value}" for i in inputs]
            # the pause/suspend form: its schema and description under the state's run-input keys
            keyset = (run.state.state_details.run_input_keyset or {}) if run.state else {}
            for key in keyset.values():
                try:
                    found["run inputs"].append(f"{key}: {await client.read_flow_run_input(run.id, key)}")
                except (ObjectNotFound, PrefectHTTPStatusError) as missing:
                    if getattr(getattr(missing, "response", None), "status_code", 404) != 404:
                        raise
                    # e.g. the response of a wait nobody has answered yet
        offset = 0
        while batch := await client.read_task_runs(limit=200, offset=offset):
            found["task runs"] += [dump(task_run) for task_run in batch]
            offset += len(batch)
        offset = 0
        while batch := await client.read_logs(limit=200, offset=offset):
            found["logs"] += [dump(log) for log in batch]
            offset += len(batch)
        offset = 0
        while batch := await client.read_artifacts(limit=200, offset=offset):
            found["artifacts"] += [dump(artifact) for artifact in batch]
            offset += len(batch)
        page = await client.read_events(limit=50)
        for _ in range(200):
            found["events"] += [dump(event) for event in page.events]
            if not page.next_page:
                break
            page = await client.read_events_page(str(page.next_page))
    return found


def test_contact_details_never_reach_prefect(stack, sandbox_clean):
    from aftersales.intake.complaint import open_complaint
    from aftersales.intake.dispute import open_dispute

    complained, disputed, returned = (stack.make_order(paid="299.00") for _ in range(3))
    emails = [order["customer"]["email"] for order in (complained, disputed, returned)]
    guest_email = f"guest-{uuid.uuid4().hex[:8]}@buyer.example"

    complaint = stack.run(open_complaint(
        channel="phone", category="1001", level=2, customer_name="韩梅梅", contact=PHONE, order_id=complained["order_id"],
        object="纯棉T恤", cause=f"洗一次就缩水，请回电 {PHONE} 或发邮件 {emails[0]}", demand="赔偿 compensation",
        ticket=f"PII{uuid.uuid4().hex[:8].upper()}")).case_id
    guest = stack.run(open_complaint(
        channel="email", category="4001", level=3, customer_name="李雷", contact=guest_email, object="客服态度",
        cause="客服挂断电话 the agent hung up", demand="道歉 an apology", ticket=f"PII{uuid.uuid4().hex[:8].upper()}")).case_id
    dispute = stack.run(open_dispute(
        disputed["order_id"], "not_as_described", f"颜色与图片不符，请联系 {PHONE} / {emails[1]}",
        platform_ref=f"WQ{uuid.uuid4().hex[:6].upper()}", claimed_amount="100.00")).case_id
    return_case = stack.open_return(returned, "299.00", reason=f"尺码不合适，取件请打 {PHONE}")

    stack.waiting(complaint, "first-response")
    stack.waiting(guest, "first-response")
    stack.waiting(dispute, "shop-reply")
    stack.waiting(return_case, "seller-review")

    # the case database is the system of record: it has the contact details, in clear
    with session_scope() as session:
        for case_id, customer_email in ((complaint, emails[0]), (dispute, emails[1])):
            case = session.get(Case, case_id)
            assert case.flow_run_id, f"{case_id} is linked to its run"
            assert details_of(case).customer.phone == PHONE
            assert details_of(case).customer.email == customer_email
            assert "文三路" in details_of(case).customer.address
        assert details_of(session.get(Case, guest)).customer.email == guest_email

    stored = stack.run(everything_prefect_stores())
    names = "".join(stored["flow runs"])
    assert all(case_id in names for case_id in (complaint, guest, dispute, return_case))
    assert any("138****5678" in text for text in stored["run inputs"])  # the forms show the buyer, masked
    assert stored["logs"] and stored["task runs"]
    secrets = [PHONE, guest_email, *emails, *ADDRESS_PARTS]
    leaks = [f"{where}: {secret!r} in {text[:300]}…" for where, texts in stored.items() for text in texts
             for secret in secrets if secret in text]
    assert not leaks, "customer data in clear in Prefect:\n" + "\n".join(leaks[:20])
