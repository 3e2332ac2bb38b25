"""The approval page: a staff member decides from the link in their own message, on a phone.

- ``GET /approve/{token}``: the case (what, for how much, whose buyer, masked), its timeline, the
  wait's form with its choices and prefilled values, and the person's queue (every open wait
  addressed to their role, soonest deadline first).
- ``POST /approve/{token}``: the form; the run resumes as that person (``resume_wait(page_for=…)``)
  and the page shows the flow's verdict: accepted, escalated above their limit, or refused and why.
- ``POST /approve/{token}/batch``: several waits of the queue at once, each as its form comes
  prefilled, with one one-time code; each is decided on its own merits (role, limit, requester).

The signed link is the credential (``approvals/links.py``), so these routes need no API key. A link
that was altered, has expired, or whose wait is answered is refused with a page that says why.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup, escape
from prefect import get_client
from prefect.input.run_input import keyset_from_paused_state
from sqlmodel import select

from aftersales.approvals.auth import burn_code
from aftersales.approvals.links import ApprovalLink, BadLink, read_link
from aftersales.approvals.resume import ResumeRefused, form_schema, resume_wait, wait_for_verdict
from aftersales.domain.calendar import shop_time
from aftersales.domain.masking import mask_text
from aftersales.domain.models import Case, Staff, Wait, WaitStatus, addressee_label
from aftersales.integrations import case_store
from aftersales.integrations.db import session_scope

_pages = Environment(loader=PackageLoader("aftersales.api", "pages"), autoescape=select_autoescape(["html"]))
_FORM = "application/x-www-form-urlencoded"
# who answers is the link's person; these are not the page's to show
NOT_SHOWN = ("staff_id", "code", "proof", "reported_by")
VERDICT_PATIENCE = 45.0  # seconds the page waits for the flow's verdict before saying "being processed"


@dataclass
class FormField:
    name: str
    title: str
    description: str
    kind: str  # "choice", "yesno", "text", "long_text"
    value: Any
    required: bool
    choices: list[str] = field(default_factory=list)


def page(kind: str, status: int, **context: Any) -> HTMLResponse:
    return HTMLResponse(_pages.get_template("approval.html").render(kind=kind, **context), status_code=status)


def add_approval_page(router: APIRouter) -> None:
    @router.get("/approve/{token}", response_class=HTMLResponse, summary="A staff member's approval page (signed link)")
    async def show(token: str) -> HTMLResponse:
        person, refused = _person(token)
        if refused is not None:
            return refused
        link, staff = person
        return await _form_page(link, staff, token)

    @router.post("/approve/{token}", response_class=HTMLResponse, summary="Submit the decision of the link's wait")
    async def submit(token: str, request: Request) -> HTMLResponse:
        person, refused = _person(token)
        if refused is not None:
            return refused
        link, staff = person
        values = {k: v[-1] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items() if k not in NOT_SHOWN}
        with session_scope() as session:
            wait = _wait(session, link.case_id, link.wait_key)
        if wait is None or wait.status != WaitStatus.OPEN:
            return _closed(link, wait)
        try:
            await resume_wait(link.case_id, values, wait.step, page_for=staff.id, key=wait.key)
        except (ResumeRefused, LookupError) as refused_answer:
            return await _form_page(link, staff, token, error=str(refused_answer), status=409, values=values)
        return page("verdict", 200, staff=staff, results=[await _verdict(link.case_id, wait.key)], token=token)

    @router.post("/approve/{token}/batch", response_class=HTMLResponse, summary="Decide several waits of the queue with one code")
    async def batch(token: str, request: Request) -> HTMLResponse:
        person, refused = _person(token)
        if refused is not None:
            return refused
        link, staff = person
        fields = parse_qs((await request.body()).decode("utf-8", "replace"))
        chosen = [tuple(item.split("|", 1)) for item in fields.get("wait", []) if "|" in item]
        code = (fields.get("code") or [""])[-1].strip()
        if not chosen:
            return page("batch_refused", 422, staff=staff, reason="请勾选要批量处理的事项 tick the waits to decide", token=token)
        with session_scope() as session:
            queue = {(wait.case_id, wait.key): wait for wait, _case in _queue(session, staff)}
            burnt = burn_code(session, session.get(Staff, staff.id), code, link.case_id) if re.fullmatch(r"\d{6}", code) else \
                "请输入身份验证器上的 6 位动态口令 enter the 6-digit code from your authenticator app"
        if burnt:  # nothing was submitted
            return page("batch_refused", 403, staff=staff, reason=burnt, token=token)
        results = []
        for case_id, key in chosen:
            wait = queue.get((case_id, key))
            if wait is None:
                results.append({"case_id": case_id, "key": key, "outcome": "closed", "reason": "已不在您的待办中 no longer in your queue"})
                continue
            try:  # each as its form comes prefilled; the flow judges each on its own merits
                await resume_wait(case_id, {}, wait.step, page_for=staff.id, key=key)
            except (ResumeRefused, LookupError) as refused_answer:
                results.append({"case_id": case_id, "key": key, "outcome": "refused", "reason": str(refused_answer)})
                continue
            results.append(None)  # decided below, once every run has been resumed
        pending = [(case_id, key) for (case_id, key), result in zip(chosen, results) if result is None]
        verdicts = iter(await asyncio.gather(*(_verdict(case_id, key) for case_id, key in pending)))
        results = [result if result is not None else next(verdicts) for result in results]
        return page("verdict", 200, staff=staff, results=results, token=token)


def _person(token: str) -> tuple[tuple[ApprovalLink, Staff] | None, HTMLResponse | None]:
    try:
        link = read_link(token)
    except BadLink as bad:
        return None, page("bad_link", 403, reason=str(bad))
    with session_scope() as session:
        staff = session.get(Staff, link.staff_id)
        if staff is not None:
            session.expunge(staff)
    if staff is None or not staff.active:
        return None, page("bad_link", 403, reason=f"工号 {link.staff_id} 不存在或已停用 unknown or inactive staff id {link.staff_id}")
    return (link, staff), None


def _wait(session, case_id: str, key: str) -> Wait | None:
    wait = session.exec(select(Wait).where(Wait.case_id == case_id, Wait.key == key)).first()
    if wait is not None:
        session.expunge(wait)
    return wait


def _closed(link: ApprovalLink, wait: Wait | None) -> HTMLResponse:
    if wait is None:
        return page("bad_link", 404, reason=f"没有这个待办 no wait {link.wait_key} on case {link.case_id}")
    return page("closed", 409, case_id=link.case_id, wait=wait, actor=wait.actor or "", decided=str(wait.status))


# the page lists the soonest of the person's queue (a role may have thousands of open waits): this many
QUEUE_SHOWN = 50


def _queue(session, staff: Staff, limit: int | None = None) -> list[tuple[Wait, Case]]:
    """The open waits addressed to the person's role, soonest deadline first, but their own
    requests (the first ``limit`` of them)."""
    return case_store.open_waits(session, addressed_to=staff.role, not_requested_by=staff.id, claimed=False, limit=limit)


def _queue_size(session, staff: Staff) -> int:
    return case_store.count_open_waits(session, addressed_to=staff.role, not_requested_by=staff.id, claimed=False)


async def _form_page(link: ApprovalLink, staff: Staff, token: str, *, error: str = "", status: int = 200,
                     values: dict[str, Any] | None = None) -> HTMLResponse:
    with session_scope() as session:
        wait = _wait(session, link.case_id, link.wait_key)
        if wait is None or wait.status != WaitStatus.OPEN:
            return _closed(link, wait)
        case = case_store.get_case(session, link.case_id)
        timeline = [{"at": shop_time(e.at), "actor": e.actor, "action": e.action} for e in case_store.timeline(session, case.id)]
        queue = [{"case_id": w.case_id, "key": w.key, "step": w.step, "deadline": shop_time(w.deadline), "amount": f"{c.amount:.2f}",
                  "this": (w.case_id, w.key) == (link.case_id, link.wait_key)} for w, c in _queue(session, staff, QUEUE_SHOWN)]
        queue_total = _queue_size(session, staff)
        session.expunge(case)
    async with get_client() as client:
        run = await client.read_flow_run(UUID(wait.flow_run_id))
        if not (run.state and run.state.is_paused() and run.state.state_details.pause_key == wait.key):
            return page("busy", 409, case_id=case.id)
        try:
            schema = await form_schema(client, run)
            summary = json.loads(await client.read_flow_run_input(run.id, keyset_from_paused_state(run.state)["description"]))
        except Exception:  # noqa: BLE001 - the form is being saved: say so, the person reloads
            return page("busy", 409, case_id=case.id)
    return page("form", status, staff=staff, role=addressee_label(staff.role), case=case, wait=wait, token=token,
                deadline=shop_time(wait.deadline), summary=_markdown(summary), fields=_fields(schema, values or {}),
                timeline=timeline, queue=queue, queue_total=queue_total, error=error)


def _fields(schema: dict[str, Any], values: dict[str, Any]) -> list[FormField]:
    """The form's fields as the page shows them: choices as buttons, yes/no, text, long text."""
    definitions = schema.get("definitions") or schema.get("$defs") or {}
    required = set(schema.get("required") or ())
    shown = []
    for name, prop in (schema.get("properties") or {}).items():
        if name in NOT_SHOWN:
            continue
        refs = [prop.get("$ref")] + [part.get("$ref") for part in prop.get("allOf", [])]
        target = next((definitions.get(ref.rsplit("/", 1)[-1]) for ref in refs if ref), None) or prop
        value = values.get(name, prop.get("default", ""))
        if "enum" in target:
            kind, choices = "choice", [str(choice) for choice in target["enum"]]
        elif prop.get("type") == "boolean":
            kind, choices = "yesno", []
        else:
            kind, choices = ("long_text" if (prop.get("maxLength") or 0) >= 200 else "text"), []
        shown.append(FormField(name, prop.get("title", name), prop.get("description", ""), kind, value, name in required, choices))
    return shown


def _markdown(text: str) -> list[Markup]:
    """The form's description (the few markdown marks ``waits.describe`` uses) as safe lines."""
    lines = []
    for block in text.split("\n\n"):
        line = str(escape(mask_text(block.strip().lstrip("#> ").strip())))
        # bold opens at a word's start only: a masked phone (138****5678) is not markdown
        line = re.sub(r"(?<![^\s>])\*\*([^*]+?)\*\*", r"<b>\1</b>", line)
        line = re.sub(r"`(.+?)`", r"<code>\1</code>", line)
        if line:
            lines.append(Markup(line))
    return lines


async def _verdict(case_id: str, key: str) -> dict[str, Any]:
    try:
        wait = await wait_for_verdict(case_id, key, timeout=VERDICT_PATIENCE)
    except TimeoutError:
        return {"case_id": case_id, "key": key, "outcome": "processing", "reason": ""}
    outcome = {WaitStatus.ANSWERED: "accepted", WaitStatus.ESCALATED: "escalated"}.get(wait.status, "refused")
    return {"case_id": case_id, "key": key, "outcome": outcome, "reason": wait.reason}
