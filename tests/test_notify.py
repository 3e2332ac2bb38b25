"""The notification outbox, end to end: a real SQLite case database per test, real HTTP and SMTP
receivers on local sockets, and Apprise sending to them. Nothing of ours is mocked.
"""

from __future__ import annotations

import logging
import os
import threading
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlmodel import col, select

from aftersales.domain.calendar import utcnow
from aftersales.domain.models import Case, CaseEvent, OutboxMessage
from aftersales.domain.settings import get_settings
from aftersales.integrations import notify
from aftersales.integrations.db import get_engine, migrate, session_scope
from aftersales.integrations.notify import TemplateError
from tests.support.receivers import free_port, start_http_receiver, start_smtp_receiver
from tests.support.stack import case_database_url

BUYER_PHONE = "13812345678"
BUYER_ADDRESS = "浙江省杭州市西湖区文三路 123 号 4 幢 501"
RETURN_ADDRESS = "浙江省杭州市余杭区仓前街道 88 号 售后仓 收"
STAFF_TAGS = ("supervisor", "manager", "agent", "warehouse", "finance")


# --- fixtures ------------------------------------------------------------------------------------


# AFTERSALES_TEST_DB=postgres runs these tests on the local PostgreSQL (a fresh schema per test,
# as tests/support/stack.py does); the default is a SQLite file per test.
TEST_DB = os.environ.get("AFTERSALES_TEST_DB", "sqlite")


@pytest.fixture
def case_db(tmp_path, monkeypatch):
    """A fresh case database for this test, behind the application's own settings and engine."""
    url, drop = case_database_url(TEST_DB, tmp_path)
    monkeypatch.setenv("AFTERSALES_DATABASE_URL", url)
    _forget_settings()
    migrate(url)
    yield url
    get_engine().dispose()
    drop()
    _forget_settings()


@pytest.fixture
def staff_inbox(tmp_path, monkeypatch, case_db):
    """Staff channels: one JSON webhook per tag on a live local receiver, like config/apprise.yml."""
    base_url, records, stop = start_http_receiver()
    _use_staff_config(tmp_path, monkeypatch, base_url)
    yield records
    stop()


@pytest.fixture
def buyer_inbox(monkeypatch, case_db):
    """Buyer channels: the sandbox-style JSON inbox per customer id."""
    base_url, records, stop = start_http_receiver()
    host = base_url.removeprefix("http://")
    monkeypatch.setenv("AFTERSALES_CUSTOMER_NOTIFY_URL", f"json://{host}/sandbox/messages/{{customer_id}}")
    _forget_settings()
    yield records
    stop()


def _forget_settings() -> None:
    get_settings.cache_clear()
    get_engine.cache_clear()


def _use_staff_config(tmp_path: Path, monkeypatch, base_url: str, tags=STAFF_TAGS) -> Path:
    """Write an Apprise YAML config with a channel per tag at ``base_url``/staff-<tag>."""
    host = base_url.removeprefix("http://")
    lines = ["version: 1", "urls:"]
    for tag in tags:
        lines += [f"  - json://{host}/staff-{tag}?+X-Api-Key=test-key:", f"      tag: {tag}"]
    path = tmp_path / "apprise.yml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    monkeypatch.setenv("AFTERSALES_APPRISE_CONFIG", str(path))
    _forget_settings()
    return path


def _open_case(case_id: str = "return-O20261122-001", customer_id: str = "C1001") -> str:
    with session_scope() as session:
        if session.get(Case, case_id) is None:
            session.add(Case(id=case_id, process="return", order_id=case_id.split("-", 1)[1],
                             customer_id=customer_id, requested_by="buyer",
                             amount=Decimal("199.00"), reason="尺码不合适"))
    return case_id


def _return_opened_context() -> dict:
    return {
        "order_id": "O20261122-001",
        "amount": Decimal("199"),
        "reason": "尺码不合适,买家留言:请打 13812345678 联系我",
        "customer_name": "张三",
        "customer_phone": BUYER_PHONE,
        "link": notify.flow_run_link("3f2a"),
    }


def _enqueue_return_opened(case_id: str, key: str = "return-opened:staff", **overrides) -> None:
    with session_scope() as session:
        notify.enqueue(session, case_id=case_id, key=key, audience="staff",
                       template="return_opened", context=_return_opened_context(), **overrides)


def _outbox(key: str) -> OutboxMessage:
    with session_scope() as session:
        return session.exec(select(OutboxMessage).where(OutboxMessage.key == key)).one()


def _outbox_count() -> int:
    with session_scope() as session:
        return len(session.exec(select(OutboxMessage)).all())


# --- staff ---------------------------------------------------------------------------------------


def test_staff_message_reaches_its_tags_only_with_the_buyer_phone_masked(staff_inbox):
    case_id = _open_case()
    _enqueue_return_opened(case_id)  # default tags of return_opened: supervisor, agent

    report = notify.deliver_pending()

    assert report == notify.DeliveryReport(sent=1, failed=0, dead=0)
    assert sorted(r.path for r in staff_inbox) == ["/staff-agent", "/staff-supervisor"]
    for request in staff_inbox:
        assert request.headers["X-Api-Key"] == "test-key"
        text = request.json["title"] + request.json["message"]
        assert BUYER_PHONE not in text
        assert "138****5678" in text
        assert request.json["title"].startswith("新退货申请 return-O20261122-001")
        # Chinese first, English alongside, in one message
        body = request.json["message"]
        assert body.index("申请退货") < body.index("English") < body.index("asks to return")
        assert "¥199.00" in body and "CNY 199.00" in body
        assert "http://127.0.0.1:4200/runs/flow-run/3f2a" in body
    message = _outbox("return-opened:staff")
    assert message.status == "sent" and message.sent_at is not None and message.attempts == 1
    assert notify.deliver_pending() == notify.DeliveryReport()  # nothing left to send


def test_approval_needed_goes_to_the_addressed_role_with_deadline_default_action_and_link(staff_inbox):
    case_id = _open_case()
    with session_scope() as session:
        notify.enqueue(
            session, case_id=case_id, key="approval-needed:refund-approval-1", audience="staff",
            template="approval_needed", tags=["manager"],
            context={"order_id": "O20261122-001", "step": "refund-approval", "amount": Decimal("680"),
                     "reason": "质量问题,超出主管权限", "default_action": "refund",
                     "deadline": datetime(2026, 11, 24, 2, 0, tzinfo=timezone.utc),
                     "link": notify.flow_run_link("run-9")},
        )

    notify.deliver_pending()

    assert [r.path for r in staff_inbox] == ["/staff-manager"]
    body = staff_inbox[0].json["message"]
    assert "截止时间:2026-11-24 10:00 (UTC+08:00)" in body
    assert "逾期默认处理:系统自动退款给买家" in body
    assert "If nobody decides by then: the system refunds the buyer automatically" in body
    assert "退款审批" in staff_inbox[0].json["title"] and "run-9" in body


def test_a_staff_message_without_any_tag_is_refused_at_enqueue(case_db):
    case_id = _open_case()
    with session_scope() as session, pytest.raises(ValueError, match="needs tags"):
        notify.enqueue(session, case_id=case_id, key="k", audience="staff",
                       template="approval_needed", context={})


# --- buyers --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "subject", "greeting"),
    [("en", "Your return request is accepted (order O20261122-001)", "Dear Alice Wang,"),
     ("zh-CN", "您的退货申请已同意(订单 O20261122-001)", "Alice Wang,您好:")],
)
def test_buyer_message_in_their_language_to_their_own_channel_unmasked(
    buyer_inbox, language, subject, greeting
):
    case_id = _open_case(customer_id="C1001")
    with session_scope() as session:
        notify.enqueue(
            session, case_id=case_id, key=f"return-agreed:{language}", audience="customer",
            template="return_agreed", language=language,
            to_url=notify.customer_url({"customer_id": "C1001", "contact": BUYER_PHONE}),
            context={"order_id": "O20261122-001", "customer_name": "Alice Wang",
                     "return_address": RETURN_ADDRESS, "ship_days": 7,
                     "customer_phone": BUYER_PHONE, "address": BUYER_ADDRESS},
        )

    assert notify.deliver_pending().sent == 1

    [request] = buyer_inbox
    assert request.path == "/sandbox/messages/C1001"
    assert request.json["title"] == subject
    assert request.json["message"].startswith(greeting)
    assert RETURN_ADDRESS in request.json["message"]  # their own message: nothing masked
    assert "7" in request.json["message"]


def test_buyer_message_by_email_reaches_the_smtp_server(case_db, monkeypatch):
    address, mails, stop = start_smtp_receiver()
    try:
        monkeypatch.setenv("AFTERSALES_CUSTOMER_NOTIFY_URL",
                           f"mailto://{address}?mode=insecure&from=aftersales@shop.example&to={{contact}}")
        _forget_settings()
        case_id = _open_case()
        buyer = {"customer_id": "C1001", "contact": "alice.wang@example.com"}
        with session_scope() as session:
            notify.enqueue(session, case_id=case_id, key="refund-paid:customer", audience="customer",
                           template="refund_paid", language="en", to_url=notify.customer_url(buyer),
                           context={"order_id": "O20261122-001", "customer_name": "Alice",
                                    "refund_amount": Decimal("199"), "refund_note": ""})

        assert notify.deliver_pending().sent == 1

        [mail] = mails
        assert mail.rcpt_tos == ["alice.wang@example.com"]
        assert mail.mail_from == "aftersales@shop.example"
        assert mail.subject == "Your refund is on its way (order O20261122-001)"
        assert "CNY 199.00" in mail.text
    finally:
        stop()


def test_customer_url_fills_the_buyer_into_the_channel_template(case_db, monkeypatch):
    monkeypatch.setenv("AFTERSALES_CUSTOMER_NOTIFY_URL", "mailto://smtp.example?to={contact}&name={customer_id}")
    _forget_settings()

    class Buyer:
        customer_id = "C 7"
        contact = "a+b@example.com"

    assert notify.customer_url(Buyer()) == "mailto://smtp.example?to=a+b@example.com&name=C%207"
    with pytest.raises(ValueError, match="C8 has no contact"):
        notify.customer_url({"customer_id": "C8"})
    # the platform's customer record has email and phone, no "contact": the email is used
    platform_customer = {"customer_id": "C9", "email": "c9@example.com", "phone": BUYER_PHONE}
    assert notify.customer_url(platform_customer) == "mailto://smtp.example?to=c9@example.com&name=C9"


# --- a channel that is down ----------------------------------------------------------------------


def test_a_dead_channel_delays_the_message_and_delivers_it_once_when_back(tmp_path, monkeypatch, case_db):
    port = free_port()  # nothing listens here yet
    _use_staff_config(tmp_path, monkeypatch, f"http://127.0.0.1:{port}")
    case_id = _open_case()
    _enqueue_return_opened(case_id, tags=["supervisor"])
    first_round = utcnow()

    report = notify.deliver_pending(now=first_round)  # must not raise

    assert report == notify.DeliveryReport(sent=0, failed=1, dead=0)
    message = _outbox("return-opened:staff")
    assert message.status == "pending" and message.attempts == 1
    assert "connection error" in message.last_error.lower()
    assert message.next_attempt_at == first_round + timedelta(seconds=30)
    assert notify.deliver_pending(now=first_round + timedelta(seconds=10)) == notify.DeliveryReport()

    base_url, records, stop = start_http_receiver(port=port)  # the channel comes back
    try:
        later = first_round + timedelta(seconds=31)
        assert notify.deliver_pending(now=later).sent == 1
        assert notify.deliver_pending(now=later + timedelta(hours=2)) == notify.DeliveryReport()
    finally:
        stop()
    assert [r.path for r in records] == ["/staff-supervisor"]
    message = _outbox("return-opened:staff")
    assert message.status == "sent" and message.attempts == 2 and message.last_error == ""


def test_a_case_step_is_not_held_up_by_a_dead_channel(tmp_path, monkeypatch, case_db):
    """The flow's transaction writes the event and the message; delivery failing changes nothing."""
    _use_staff_config(tmp_path, monkeypatch, f"http://127.0.0.1:{free_port()}")
    case_id = _open_case()
    with session_scope() as session:
        session.add(CaseEvent(case_id=case_id, key="opened", actor="buyer", action="return_opened"))
        notify.enqueue(session, case_id=case_id, key="return-opened:staff", audience="staff",
                       template="return_opened", context=_return_opened_context())

    notify.deliver_pending()

    with session_scope() as session:
        assert session.exec(select(CaseEvent)).one().action == "return_opened"
    assert _outbox("return-opened:staff").status == "pending"


def test_one_failure_per_channel_per_round_the_rest_wait_without_spending_attempts(
    tmp_path, monkeypatch, case_db
):
    _use_staff_config(tmp_path, monkeypatch, f"http://127.0.0.1:{free_port()}")
    case_id = _open_case()
    for number in range(3):
        _enqueue_return_opened(case_id, key=f"msg-{number}", tags=["warehouse"])

    assert notify.deliver_pending() == notify.DeliveryReport(sent=0, failed=1, dead=0)
    assert [_outbox(f"msg-{n}").attempts for n in range(3)] == [1, 0, 0]


def test_out_of_attempts_the_message_is_kept_dead_and_requeue_delivers_it(tmp_path, monkeypatch, case_db):
    port = free_port()
    _use_staff_config(tmp_path, monkeypatch, f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AFTERSALES_OUTBOX_MAX_ATTEMPTS", "3")
    _forget_settings()
    case_id = _open_case()
    _enqueue_return_opened(case_id, tags=["finance"])

    moment = utcnow()
    reports = []
    for _ in range(4):
        reports.append(notify.deliver_pending(now=moment))
        moment += timedelta(hours=2)

    assert [(r.failed, r.dead) for r in reports] == [(1, 0), (1, 0), (0, 1), (0, 0)]
    message = _outbox("return-opened:staff")
    assert message.status == "dead" and message.attempts == 3 and message.last_error

    base_url, records, stop = start_http_receiver(port=port)
    try:
        assert notify.requeue_dead(case_id) == 1
        assert notify.deliver_pending().sent == 1
    finally:
        stop()
    assert [r.path for r in records] == ["/staff-finance"]
    assert _outbox("return-opened:staff").status == "sent"


def test_after_a_partial_failure_only_the_tags_still_owed_get_the_message(tmp_path, monkeypatch, case_db):
    base_url, records, stop = start_http_receiver()
    agent_port = free_port()
    host = base_url.removeprefix("http://")
    config = tmp_path / "apprise.yml"
    config.write_text(
        "urls:\n"
        f"  - json://{host}/staff-supervisor:\n      tag: supervisor\n"
        f"  - json://127.0.0.1:{agent_port}/staff-agent:\n      tag: agent\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("AFTERSALES_APPRISE_CONFIG", str(config))
    _forget_settings()
    try:
        case_id = _open_case()
        _enqueue_return_opened(case_id)  # supervisor and agent
        first = notify.deliver_pending()
        message = _outbox("return-opened:staff")
        assert first.failed == 1 and message.tags == "agent"
        assert message.last_error.startswith("delivered to supervisor; failed agent:")

        config.write_text(config.read_text().replace(f"127.0.0.1:{agent_port}", host))
        assert notify.deliver_pending(now=utcnow() + timedelta(minutes=1)).sent == 1
    finally:
        stop()
    assert sorted(r.path for r in records) == ["/staff-agent", "/staff-supervisor"]


def test_an_invalid_buyer_channel_is_recorded_not_raised(case_db):
    case_id = _open_case()
    with session_scope() as session:
        notify.enqueue(session, case_id=case_id, key="closed:customer", audience="customer",
                       template="case_closed", to_url="nosuchscheme://C1001",
                       context={"order_id": "O1", "customer_name": "张三", "outcome": "refunded"})

    assert notify.deliver_pending().failed == 1
    assert "not valid" in _outbox("closed:customer").last_error


# --- idempotency and concurrency -----------------------------------------------------------------


def test_enqueue_with_the_same_key_writes_one_row(staff_inbox):
    case_id = _open_case()
    with session_scope() as session:
        first = notify.enqueue(session, case_id=case_id, key="return-opened:staff", audience="staff",
                               template="return_opened", context=_return_opened_context())
        again = notify.enqueue(session, case_id=case_id, key="return-opened:staff", audience="staff",
                               template="return_opened", context=_return_opened_context())
        assert again.id == first.id
    # A replay after commit (the flow resumed and ran the step again) in a new transaction:
    with session_scope() as session:
        replay = notify.enqueue(session, case_id=case_id, key="return-opened:staff", audience="staff",
                                template="return_opened", context=_return_opened_context())
        session.add(CaseEvent(case_id=case_id, key="replayed", actor="system", action="noted"))
    assert replay.id == first.id
    assert _outbox_count() == 1
    with session_scope() as session:  # the caller's own work in that transaction still committed
        assert session.exec(select(CaseEvent)).one().key == "replayed"

    notify.deliver_pending()
    assert len(staff_inbox) == 2  # supervisor and agent, once each


def test_two_delivery_processes_send_each_message_exactly_once(staff_inbox):
    case_id = _open_case()
    for number in range(25):
        _enqueue_return_opened(case_id, key=f"msg-{number}", tags=["warehouse"])
    start = threading.Barrier(2)
    reports: list[notify.DeliveryReport] = []

    def delivery_worker() -> None:
        start.wait()
        reports.append(notify.deliver_pending())

    workers = [threading.Thread(target=delivery_worker) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)

    assert sum(report.sent for report in reports) == 25
    assert sum(report.failed + report.dead for report in reports) == 0
    assert len(staff_inbox) == 25
    with session_scope() as session:
        statuses = session.exec(select(OutboxMessage.status, OutboxMessage.attempts)).all()
    assert set(statuses) == {("sent", 1)}


def test_a_message_stuck_in_sending_is_taken_again_after_its_claim_runs_out(staff_inbox):
    case_id = _open_case()
    _enqueue_return_opened(case_id, key="stuck", tags=["agent"])
    _enqueue_return_opened(case_id, key="in-flight", tags=["agent"])
    now = utcnow()
    with session_scope() as session:  # as a process would leave them: one crashed, one busy
        session.execute(update(OutboxMessage).where(col(OutboxMessage.key) == "stuck")
                        .values(status="sending", next_attempt_at=now - timedelta(seconds=1)))
        session.execute(update(OutboxMessage).where(col(OutboxMessage.key) == "in-flight")
                        .values(status="sending", next_attempt_at=now + timedelta(minutes=9)))

    assert notify.deliver_pending(now=now).sent == 1

    assert _outbox("stuck").status == "sent"
    assert _outbox("in-flight").status == "sending"
    assert len(staff_inbox) == 1


def test_deliver_pending_can_be_limited_to_one_case(staff_inbox):
    first, second = _open_case("return-O1"), _open_case("return-O2")
    _enqueue_return_opened(first, key="a", tags=["agent"])
    _enqueue_return_opened(second, key="b", tags=["agent"])

    assert notify.deliver_pending(case_id=second).sent == 1
    assert _outbox("a").status == "pending" and _outbox("b").status == "sent"


def test_replays_racing_each_other_still_write_one_row(case_db):
    """Two workers replaying the same step at once: no IntegrityError, one message."""
    case_id = _open_case()
    start = threading.Barrier(4)
    errors: list[Exception] = []

    def replay() -> None:
        start.wait()
        try:
            _enqueue_return_opened(case_id, key="return-opened:staff")
        except Exception as exc:  # pragma: no cover - shown by the assertion below
            errors.append(exc)

    workers = [threading.Thread(target=replay) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)

    assert errors == []
    assert _outbox_count() == 1


# --- rendering -----------------------------------------------------------------------------------


def test_unknown_template_is_named_in_the_error():
    with pytest.raises(TemplateError, match="unknown message template 'return_lost'"):
        notify.render("return_lost", "zh-CN", "customer")


def test_a_missing_placeholder_is_named_with_its_template():
    with pytest.raises(TemplateError) as error:
        notify.render("return_agreed", "en", "customer", order_id="O1", customer_name="A",
                      case_id="c1", ship_days=7)
    assert str(error.value) == "message template 'return_agreed' (customer, en) needs 'return_address' — not given"


def test_a_template_without_text_for_the_audience_says_so():
    with pytest.raises(TemplateError, match="'return_agreed' has no 'staff' text"):
        notify.render("return_agreed", "zh-CN", "staff")


def test_enqueue_fails_loudly_on_a_template_mistake(case_db):
    case_id = _open_case()
    with session_scope() as session, pytest.raises(TemplateError, match="'refund_amount'"):
        notify.enqueue(session, case_id=case_id, key="x", audience="customer", template="refund_paid",
                       to_url="json://127.0.0.1:1/x", context={"order_id": "O1", "customer_name": "A"})


def test_every_template_renders_for_each_of_its_audiences_in_both_languages():
    expected = {
        "return_opened", "approval_needed", "approval_escalated", "approval_rejected", "work_needed", "work_escalated",
        "return_agreed", "return_refused", "await_buyer_shipment_expired", "parcel_received",
        "inspection_needed", "refund_paid", "auto_refund_deadline", "short_shipment", "reshipped",
        "case_closed",
    }
    assert expected <= set(notify.template_ids())
    for template_id in notify.template_ids():
        for audience in ("staff", "customer"):
            try:
                needed = notify.placeholders(template_id, audience)
            except TemplateError:
                continue
            context = {name: f"<{name}>" for name in needed}
            for language in ("zh-CN", "en"):
                subject, body = notify.render(template_id, language, audience, **context)
                assert "{" not in subject + body and subject and body
                assert all(f"<{name}>" in subject + body for name in needed if name != "customer_phone")


def test_staff_text_masks_the_buyer_data_and_customer_text_does_not():
    context = {"case_id": "c1", "order_id": "O1", "customer_name": "张三", "fix_days": 3, "link": "L",
               "missing": "袜子 ×2(买家邮箱 zhang.san@example.com,电话 13812345678)"}
    _, staff_body = notify.render("short_shipment", "zh-CN", "staff", **context)
    assert "z***@example.com" in staff_body and "138****5678" in staff_body
    assert "zhang.san@" not in staff_body and BUYER_PHONE not in staff_body
    _, buyer_body = notify.render("short_shipment", "zh-CN", "customer", **context)
    assert "zhang.san@example.com" in buyer_body and BUYER_PHONE in buyer_body


def test_staff_masking_goes_by_the_placeholder_name():
    masked = notify.mask_customer_data({
        "address": BUYER_ADDRESS, "customer_phone": "+86 138 1234 5678", "buyer_email": "li.si@example.com",
        "contact": BUYER_PHONE, "order_id": "O20261122-001", "amount": Decimal("1.00"),
    })
    assert masked == {
        "address": "浙江省杭州市西湖区****", "customer_phone": "+86 138****5678",
        "buyer_email": "l***@example.com", "contact": "138****5678", "order_id": "O20261122-001",
        "amount": Decimal("1.00"),
    }


def test_empty_values_and_times_read_well():
    subject, body = notify.render(
        "approval_needed", "zh-CN", "staff", case_id="c1", order_id="O1", step="seller-review",
        amount=Decimal("5"), reason="", default_action="agree", link="L",
        deadline=datetime(2026, 11, 27, 16, 30, tzinfo=timezone.utc))
    assert "说明:—" in body and "Note: —" in body
    assert "截止时间:2026-11-28 00:30 (UTC+08:00)" in body
    _, body = notify.render("return_opened", "zh-CN", "staff",
                            **_return_opened_context() | {"case_id": "c1", "customer_phone": ""})
    assert "(电话 —)" in body  # no phone on file: a dash, not a mask
    with pytest.raises(TemplateError, match="naive datetime"):
        notify.render("approval_needed", "zh-CN", "staff", deadline=datetime(2026, 11, 27))


def test_known_codes_read_as_sentences_in_each_language():
    subject, body = notify.render("approval_rejected", "zh-CN", "staff", case_id="c1", step="seller-review",
                                  reason="self_approval", deadline=utcnow(), link="L")
    assert "不能审批自己发起的申请" in body
    assert "nobody may approve a request they opened themselves" in body
    assert "卖家审核退货申请" in subject and "seller review of the return request" in subject


def test_buyer_language_falls_back_to_chinese():
    assert notify.normalize_language("en-US") == "en"
    assert notify.normalize_language("en_GB") == "en"
    assert notify.normalize_language("fr") == "zh-CN"
    assert notify.normalize_language(None) == "zh-CN"


# --- logs ----------------------------------------------------------------------------------------


def test_apprise_log_never_shows_the_buyer_phone(buyer_inbox, caplog):
    case_id = _open_case()
    with session_scope() as session:
        notify.enqueue(session, case_id=case_id, key="closed", audience="customer",
                       template="case_closed", to_url=notify.customer_url({"customer_id": "C1001"}),
                       context={"order_id": "O1", "customer_name": f"张三 {BUYER_PHONE}",
                                "outcome": "refunded"})

    with caplog.at_level(logging.DEBUG, logger="apprise"):
        assert notify.deliver_pending().sent == 1

    assert "JSON Payload" in caplog.text  # Apprise did log the message it sent ...
    assert BUYER_PHONE not in caplog.text  # ... masked
    assert BUYER_PHONE in buyer_inbox[0].json["message"]  # while the buyer got it whole


def test_staff_texts_are_written_for_staff():
    """A review of every staff text, in both languages (issue 16): whom a step was for is said in
    the reader's language (a role tag is English: the Chinese half uses its Chinese word), a staff
    text never speaks to the buyer, and an amount appears only where money is being decided."""
    from aftersales.integrations.notify.templates import _catalog

    catalog = _catalog()
    role_placeholders = {"handler", "next_level"} | {"level"}  # level: §1.3's approver (a complaint's level is a number)
    reviewed = 0
    for template_id in notify.template_ids():
        template = catalog.template(template_id)
        if "staff" not in template.texts:
            continue
        zh, en = template.text("staff", "zh-CN"), template.text("staff", "en")
        zh_text, en_text = zh.subject + zh.body, en.subject + en.body
        roles_in_zh = {name for name in role_placeholders if "{" + name + "}" in zh_text}
        if template_id.startswith("complaint_"):
            roles_in_zh.discard("level")
        assert not roles_in_zh, f"{template_id}: the Chinese half shows the English role tag {roles_in_zh}; use the _zh word"
        for buyer_words in ("您已寄出", "您的订单", "您的退款", "您的包裹"):
            assert buyer_words not in zh_text, f"{template_id}: a staff text addressing the buyer ({buyer_words})"
        for buyer_words in ("you have sent", "your order", "your refund", "your parcel"):
            assert buyer_words not in en_text.lower(), f"{template_id}: a staff text addressing the buyer ({buyer_words})"
        if template_id.startswith(("work_", "deadline_")):
            assert "{amount}" not in zh_text + en_text, f"{template_id}: a step that decides no money shows an amount"
        reviewed += 1
    assert reviewed > 40
