"""`aftersales` — the operations command line (Typer).

  aftersales return open --order O20261120-002 --amount 128 --reason "尺码不合适"
  aftersales waits list
  aftersales waits resume return-O20261120-002 --staff S002 --code 123456 --set decision=agree
  aftersales case show return-O20261120-002
  aftersales staff code S002          (demo staff only: prints the current one-time code)
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import datetime
from typing import Optional

import typer
from rich.console import Console
from rich.table import Column, Table

from aftersales.domain.calendar import in_shop_time, shop_time
from aftersales.domain.settings import get_settings

app = typer.Typer(help="E-commerce after-sales processes run as Prefect flows. 售后流程。", no_args_is_help=True)
waits_app = typer.Typer(help="Cases waiting for a person or an event 等待处理", no_args_is_help=True)
case_app = typer.Typer(help="One case 案件", no_args_is_help=True)
staff_app = typer.Typer(help="Staff and their one-time codes 员工", no_args_is_help=True)
db_app = typer.Typer(help="The case database 数据库", no_args_is_help=True)
app.add_typer(waits_app, name="waits")
app.add_typer(case_app, name="case")
app.add_typer(staff_app, name="staff")
app.add_typer(db_app, name="db")

console = Console()


def _add_process_commands() -> None:
    """`aftersales <process> open` for every registered process; the other commands of a group
    (`dispute register`, `export …`) come from ``aftersales.deployments.commands``."""
    import importlib
    import pkgutil

    import aftersales.deployments.commands as commands
    from aftersales.deployments.process_commands import process_app
    from aftersales.intake.registry import processes

    groups = {process.name: process_app(process) for process in processes()}
    for module_info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{module_info.name}")
        if module.NAME in groups:
            groups[module.NAME].registered_commands.extend(module.app.registered_commands)
        else:
            groups[module.NAME] = module.app
    for name, group in groups.items():
        app.add_typer(group, name=name)


_add_process_commands()


def _fail(message: str) -> None:
    from rich.markup import escape

    # escaped: the message may quote the user's input, which is not rich markup ("[/]" would crash)
    console.print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(code=2)


def _local(moment: Optional[datetime]) -> str:
    return shop_time(moment) if moment else "-"


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the case database (alembic upgrade head)."""
    from aftersales.integrations.db import migrate

    migrate()
    console.print("case database is at the newest schema")


@waits_app.command("list")
def waits_list(
    process: Optional[str] = typer.Option(None, help="only this process, e.g. return"),
    to: Optional[str] = typer.Option(None, "--to", help="only those waiting for this role (supervisor, warehouse, …) or buyer"),
    step: Optional[str] = typer.Option(None, help="only this step, e.g. seller-review"),
    expired: bool = typer.Option(False, "--expired", help="only those past their deadline (the next sweep applies their default)"),
    limit: int = typer.Option(50, min=0, help="rows a page (0: every open wait at once)"),
    page: int = typer.Option(1, min=1, help="which page, soonest deadline first"),
) -> None:
    """Open waits, soonest deadline first, a page at a time (how many in all below the table)."""
    from aftersales.domain.calendar import utcnow
    from aftersales.domain.models import addressee_label
    from aftersales.integrations import case_store
    from aftersales.integrations.db import session_scope

    filters = dict(addressed_to=to, step=step, due_before=utcnow() if expired else None)
    # ids are copied into the next command: never wrapped
    table = Table(Column("case", no_wrap=True), Column("step", no_wrap=True), "等待谁 waiting for", "截止 deadline (Asia/Shanghai)",
                  "到期默认 default action", "notice")
    with session_scope() as session:
        total = case_store.count_open_waits(session, process, **filters)
        rows = case_store.open_waits(session, process, **filters, limit=limit or None, offset=(page - 1) * limit)
        for wait, case in rows:
            table.add_row(case.id, wait.key, addressee_label(wait.addressed_to), _local(wait.deadline), wait.default_action, wait.notice or "")
    console.print(table)
    first = (page - 1) * limit + 1
    if not rows:
        console.print(f"共 {total} 项 {total} open waits; none on page {page}")
    elif len(rows) == total:
        console.print(f"共 {total} 项 {total} open waits")
    else:
        more = f"; next: --page {page + 1}" if first - 1 + len(rows) < total else ""
        console.print(f"第 {first}–{first - 1 + len(rows)} 项，共 {total} 项 {first}–{first - 1 + len(rows)} of {total} open waits{more}")


def _parse_sets(values: list[str]) -> dict:
    parsed = {}
    for item in values:
        if "=" not in item:
            _fail(f"--set expects field=value, got {item!r}")
        name, value = item.split("=", 1)
        parsed[name.strip()] = value
    return parsed


@waits_app.command("resume")
def waits_resume(
    case_id: str,
    staff: Optional[str] = typer.Option(None, "--staff", help="工号 your staff id (staff forms)"),
    code: Optional[str] = typer.Option(None, "--code", help="动态口令 your current one-time code"),
    set_: list[str] = typer.Option([], "--set", help="form field=value, repeatable (e.g. decision=agree)"),
    step: Optional[str] = typer.Option(None, "--step", help="only if the case waits at this step"),
    reported_by: Optional[str] = typer.Option(None, "--reported-by", help="for event forms: who reports it"),
) -> None:
    """Answer a case's open wait, as the Resume form in the Prefect UI does, and show the verdict."""
    from aftersales.approvals.resume import ResumeRefused, resume_wait, wait_for_verdict

    values = _parse_sets(set_)
    if staff:
        values["staff_id"] = staff
    if code:
        values["code"] = code
    if reported_by:
        values["reported_by"] = reported_by

    async def go():
        wait = await resume_wait(case_id, values, step)
        return await wait_for_verdict(case_id, wait.key)

    try:
        wait = asyncio.run(go())
    except (ResumeRefused, LookupError, TimeoutError) as exc:
        _fail(str(exc))
    colour = "green" if wait.status == "answered" else "yellow"
    console.print(f"{case_id} {wait.key}: [{colour}]{wait.status}[/] {wait.reason}")


@case_app.command("show")
def case_show(case_id: str, as_json: bool = typer.Option(False, "--json", help="print the case and its trail as JSON")) -> None:
    """A case and its timeline (the audit trail); long details wrap, nothing is cut off."""
    from aftersales.domain.masking import mask_text
    from aftersales.domain.models import CaseStatus
    from aftersales.domain.outcomes import Outcome
    from aftersales.domain.stages import stage_label
    from aftersales.integrations import case_store
    from aftersales.integrations.db import session_scope

    with session_scope() as session:
        try:
            case = case_store.get_case(session, case_id)
        except LookupError as exc:
            _fail(str(exc))
        events = case_store.timeline(session, case_id)
    outcome = Outcome(case.outcome) if case.outcome in set(Outcome) else None
    if as_json:
        print(json.dumps({
            "case_id": case.id, "process": case.process, "order_id": case.order_id, "amount": f"{case.amount:.2f}",
            "status": case.status, "stage": case.stage, "stage_label": stage_label(case.stage), "outcome": case.outcome, "outcome_label": outcome.label if outcome else None,
            "opened_at": _local(case.opened_at), "closed_at": _local(case.closed_at),
            "events": [{"at": _local(e.at), "actor": e.actor, "action": e.action,
                        "details": json.loads(mask_text(json.dumps(in_shop_time(e.details), ensure_ascii=False)))} for e in events],
        }, ensure_ascii=False, indent=2))
        return
    from rich.markup import escape

    ending = f" {case.outcome} {outcome.label}" if outcome else (f" {case.outcome}" if case.outcome else "")
    standing = CaseStatus(case.status).label if case.status in set(CaseStatus) else case.status
    where = standing if stage_label(case.stage) == standing else f"{standing} / {stage_label(case.stage)}"  # a closed case: once
    console.print(f"[bold]{escape(case.id)}[/] {escape(f'{case.process} order {case.order_id} ¥{case.amount:.2f} — {where}{ending}')}",
                  highlight=False)
    table = Table(Column("time (Asia/Shanghai)", no_wrap=True), "actor", "action", Column("details", overflow="fold"))
    for event in events:
        table.add_row(_local(event.at), escape(event.actor), escape(event.action), escape(mask_text(json.dumps(in_shop_time(event.details), ensure_ascii=False))))
    console.print(table)


@staff_app.command("list")
def staff_list() -> None:
    from sqlmodel import select

    from aftersales.domain.models import Staff
    from aftersales.integrations.db import session_scope

    table = Table("id", "name", "role", "approval limit (CNY)", "active")
    with session_scope() as session:
        for member in session.exec(select(Staff).order_by(Staff.id)):
            table.add_row(member.id, member.name, member.role, f"{member.approval_limit:.2f}", str(member.active))
    console.print(table)


@staff_app.command("add")
def staff_add(staff_id: str, name: str = typer.Option(...), role: str = typer.Option(...),
              limit: str = typer.Option("0", help="approval limit in CNY")) -> None:
    """Enrol a staff member; prints the otpauth:// URI for their authenticator app (show it as a QR code)."""
    import pyotp

    from aftersales.approvals.auth import enrolment_uri
    from aftersales.domain.models import Role, Staff
    from aftersales.domain.rules import parse_amount
    from aftersales.integrations.db import session_scope

    try:
        member = Staff(id=staff_id, name=name, role=Role(role), approval_limit=parse_amount(limit, "limit", allow_zero=True), totp_secret=pyotp.random_base32())
    except ValueError as exc:
        _fail(str(exc))
    with session_scope() as session:
        if session.get(Staff, staff_id) is not None:
            _fail(f"staff {staff_id} already exists")
        session.add(member)
    console.print(f"enrolled {staff_id}; scan this in an authenticator app:\n{enrolment_uri(member)}")


@staff_app.command("revoke")
def staff_revoke(staff_id: str) -> None:
    """Stop a staff member's decisions at once (they left, or their phone is lost): their codes are
    refused from now on; what they decided stays in the trail under their id."""
    from aftersales.domain.models import Staff
    from aftersales.integrations.db import session_scope

    with session_scope() as session:
        member = session.get(Staff, staff_id)
        if member is None:
            _fail(f"no staff member {staff_id}")
        member.active = False
        session.add(member)
    console.print(f"revoked {staff_id}: their codes are refused from now on (`aftersales staff rekey {staff_id}` enrols them again)")


@staff_app.command("rekey")
def staff_rekey(staff_id: str) -> None:
    """Give a staff member a new authenticator secret (a new phone) and make them active again;
    codes from the old secret are refused. Prints the new enrolment URI."""
    import pyotp

    from aftersales.approvals.auth import enrolment_uri
    from aftersales.domain.models import Staff
    from aftersales.integrations.db import session_scope

    with session_scope() as session:
        member = session.get(Staff, staff_id)
        if member is None:
            _fail(f"no staff member {staff_id}")
        member.totp_secret, member.active = pyotp.random_base32(), True
        session.add(member)
        uri = enrolment_uri(member)
    console.print(f"new secret for {staff_id}; the old one's codes are refused. Scan this in an authenticator app:\n{uri}")


@staff_app.command("code")
def staff_code(staff_id: str) -> None:
    """Print the current one-time code of a DEMO staff member (their secrets are public)."""
    from aftersales.approvals.auth import DEMO_STAFF, current_code

    demo = {member.id: member for member in DEMO_STAFF}
    if staff_id not in demo:
        _fail(f"{staff_id} is not a demo staff member; real staff read their code from their authenticator app")
    import time

    remaining = 30 - int(time.time()) % 30
    console.print(f"{current_code(demo[staff_id])}  (valid {remaining} s more; each code works once)")


@staff_app.command("seed-demo")
def staff_seed_demo() -> None:
    """Add the demo staff (S001 agent, S002/S006 supervisors, S003 manager, S004 warehouse, S005 finance)."""
    from aftersales.approvals.auth import seed_demo_staff
    from aftersales.integrations.db import session_scope

    with session_scope() as session:
        seed_demo_staff(session)
    console.print("demo staff ready")


@app.command("sweep")
def sweep(as_of: Optional[datetime] = typer.Option(None, help="apply deadlines as of this time (ISO, with timezone)")) -> None:
    """Run the deadline sweeper once now."""
    from aftersales.flows.deadline_sweeper import deadline_sweeper

    if as_of is not None and as_of.tzinfo is None:
        _fail("--as-of needs a timezone, e.g. 2026-11-30T09:00:00+08:00")
    console.print(asyncio.run(deadline_sweeper(as_of=as_of)))


@app.command("serve")
def serve_command() -> None:
    """Serve every deployment (the flows and their schedules) from this process."""
    from aftersales.deployments.serve import main

    main()


@app.command("api")
def api_command() -> None:
    """Run our HTTP intake API (every endpoint requires the X-Api-Key header)."""
    import uvicorn

    from aftersales.api.app import create_app

    settings = get_settings()
    uvicorn.run(create_app(), host=settings.api_host, port=settings.api_port, log_level="info")


@app.command("worker", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def worker_command(ctx: typer.Context, name: str = typer.Option(None, "--name", help="The worker's name in the work pool (default: <host>-worker-1)")) -> None:
    """Worker mode: a Prefect worker of the `aftersales` work pool whose flow runs fork from a warm process
    (what `make run-workers` starts; further options go to `prefect worker start`)."""
    from aftersales.deployments.workers import default_names, run_worker

    run_worker(name or default_names(1)[0], list(ctx.args))


@app.command("dev")
def dev_command(workers: int = typer.Option(0, "--workers", min=0, help=(
        "Worker mode (`make run-workers`): the flows run on this many Prefect workers of the `aftersales` work pool "
        "instead of serve; needs AFTERSALES_DATABASE_URL and AFTERSALES_PREFECT_DATABASE_URL on PostgreSQL"))) -> None:
    """`make run`: Prefect server, sandbox platform, API, flows and demo cases, all in one."""
    from aftersales.deployments.dev import main

    sys.exit(main(workers=workers))


if __name__ == "__main__":
    app()
