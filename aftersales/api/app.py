"""Our HTTP intake API: open cases and report outside events (the platform's webhooks, pollers).

Every endpoint requires the ``X-Api-Key`` header (``AFTERSALES_API_KEY``), its description
(``/openapi.json``) too, but the buyer's satisfaction page and the staff's approval page, whose
signed links are their credential (``api/satisfaction_page.py``, ``api/approval_page.py``), and the
carrier's pushes (``/carrier/kuaidi100/push``), which Kuaidi100 signs with our salt; there
are no open documentation pages. Customer
phone numbers and addresses are masked in what it returns: its callers are staff systems.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, Response, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader

from aftersales.approvals.resume import ResumeRefused, resume_wait
from aftersales.domain.calendar import in_shop_time, utcnow
from aftersales.domain.masking import mask_text
from aftersales.domain.rules import InvalidRequest, shown
from aftersales.domain.settings import get_settings
from aftersales.domain.stages import stage_label
from aftersales.intake.registry import ProcessEntry, processes
from aftersales.integrations import case_store
from aftersales.integrations.db import session_scope
from aftersales.integrations.platform import PushMalformed, push_signed, read_push
from aftersales.tasks.carrier_push import PushRejected, apply_order_push, apply_return_push

api_key_header = APIKeyHeader(name="X-Api-Key", auto_error=False)


def require_key(key: str | None = Security(api_key_header)) -> None:
    expected = get_settings().api_key.get_secret_value()
    if not key or not secrets.compare_digest(key, expected):
        raise HTTPException(status_code=401, detail="missing or wrong X-Api-Key")


def create_app() -> FastAPI:
    # no documentation pages open to anyone: the API's description is served behind the key
    # (``GET /openapi.json``), and Swagger's pages would need a CDN and an anonymous schema
    app = FastAPI(title="Aftersales intake API 售后接口", docs_url=None, redoc_url=None, openapi_url=None)
    staff = APIRouter(dependencies=[Depends(require_key)])  # every route but the buyer's page

    @staff.get("/openapi.json", include_in_schema=False)
    def describe_the_api() -> dict:
        return app.openapi()

    @app.exception_handler(RequestValidationError)
    async def refuse_malformed(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": malformed_request(exc.errors())})

    @app.exception_handler(InvalidRequest)
    async def refuse_invalid(_request: Request, exc: InvalidRequest) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": {"code": exc.code, "message": exc.message}})

    @staff.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    for process in processes():
        add_open_route(staff, process)

    @staff.get("/cases/{case_id}")
    def show_case(case_id: str) -> dict:
        with session_scope() as session:
            try:
                case = case_store.get_case(session, case_id)
            except LookupError as exc:
                raise HTTPException(status_code=404, detail=str(exc)) from None
            events = case_store.timeline(session, case_id)
        return {
            "case_id": case.id, "process": case.process, "order_id": case.order_id, "status": case.status,
            "stage": case.stage, "stage_label": stage_label(case.stage), "outcome": case.outcome, "amount": f"{case.amount:.2f}",
            "events": [{"at": _shop(e.at), "actor": e.actor, "action": e.action, "details": _masked(in_shop_time(e.details))} for e in events],
        }

    @staff.get("/waits")
    def list_waits(response: Response, process: str | None = None, addressed_to: str | None = None, step: str | None = None,
                   expired: bool = False, limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0)) -> list[dict]:
        """Open waits, soonest deadline first, a page at a time (``limit``, ``offset``); the
        ``X-Total-Count`` header says how many match in all. Filters: ``process``, ``addressed_to``
        (a role or ``buyer``), ``step``, ``expired`` (past the deadline)."""
        filters = dict(addressed_to=addressed_to, step=step, due_before=utcnow() if expired else None)
        with session_scope() as session:
            response.headers["X-Total-Count"] = str(case_store.count_open_waits(session, process, **filters))
            return [{"case_id": case.id, "key": wait.key, "addressed_to": wait.addressed_to,
                     "deadline": _shop(wait.deadline), "default_action": wait.default_action}
                    for wait, case in case_store.open_waits(session, process, **filters, limit=limit, offset=offset)]

    @staff.post("/cases/{case_id}/waits/{step}", status_code=202)
    async def report_event(case_id: str, step: str, values: dict[str, Any]) -> dict:
        """An outside event answers a wait, e.g. the platform reports the buyer's tracking number."""
        try:
            wait = await resume_wait(case_id, values, step)
        except LookupError as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from None
        except ResumeRefused as exc:
            raise HTTPException(status_code=409, detail=str(exc)) from None
        return {"case_id": case_id, "wait": wait.key, "status": "submitted"}

    from aftersales.api.reporting import add_reporting_routes  # exports (reporting)
    from aftersales.api.approval_page import add_approval_page
    from aftersales.api.satisfaction_page import add_satisfaction_page

    add_reporting_routes(staff)
    app.include_router(staff)
    buyers = APIRouter()
    add_carrier_push(buyers)  # the push's signature is the credential: Kuaidi100 cannot send our key
    add_satisfaction_page(buyers)
    add_approval_page(buyers)  # the signed link is the credential, as for the buyer's page
    app.include_router(buyers)
    return app


PUSH_ACCEPTED = {"result": True, "returnCode": "200", "message": "成功"}  # what Kuaidi100 expects back


def push_refused(status: int, message: str) -> JSONResponse:
    # anything but PUSH_ACCEPTED makes the provider retry (about every 35 minutes, a few times)
    return JSONResponse(status_code=status, content={"result": False, "returnCode": str(status), "message": message})


def add_carrier_push(router: APIRouter) -> None:
    @router.post("/carrier/kuaidi100/push", summary="Kuaidi100 push (快递信息推送): form fields param and sign")
    async def carrier_push(request: Request, order: str | None = None, case: str | None = None) -> JSONResponse:
        """A tracking push for the waybill subscribed for ``order`` (the 15-day tracker) or ``case``
        (a return parcel). Believed only with ``sign`` = md5(param + our salt); anything else is
        refused before it is read and changes nothing."""
        body = await request.body()
        if len(body) > 1_000_000:
            return push_refused(413, "推送过大 push larger than 1 MB")
        try:
            form = {name: values[0] for name, values in parse_qs(body.decode("utf-8"), strict_parsing=False).items()}
        except UnicodeDecodeError:
            return push_refused(400, "推送不是 UTF-8 表单 the push is not a UTF-8 form")
        param, sign = form.get("param"), form.get("sign")
        if not param:
            return push_refused(400, "缺少 param the push has no param")
        if not sign:
            return push_refused(403, "推送未签名 the push is unsigned: a push without sign is not from the provider")
        if not push_signed(param, sign, get_settings().carrier_push_salt.get_secret_value()):
            return push_refused(403, "推送签名错误 wrong push signature: sign is not md5(param + salt) with our salt")
        if (order is None) == (case is None):
            return push_refused(400, "回调地址须带 order 或 case 之一 the callback URL names one order or one case")
        try:
            push = read_push(param)
            applied = await (apply_order_push(order, push) if order is not None else apply_return_push(case, push))
        except PushMalformed as exc:
            return push_refused(400, f"推送格式不正确 malformed push: {exc}")
        except PushRejected as exc:
            return push_refused(exc.status, exc.message)
        return JSONResponse({**PUSH_ACCEPTED, "applied": applied.outcome, "acted": list(applied.acted)})


def add_open_route(app: APIRouter, process: ProcessEntry) -> None:
    """``POST /<route>`` opens a case of the process, the request model its body: the same door as
    ``aftersales <process> open``."""

    async def open_case(request) -> dict:
        opened = await process.open(request)  # InvalidRequest → 422 with its code (refuse_invalid)
        return {"case_id": opened.case_id, "flow_run_id": opened.flow_run_id}

    open_case.__annotations__ = {"request": process.request, "return": dict}
    app.post(f"/{process.route}", status_code=201, summary=f"{process.title}: open a case", description=process.summary,
             name=f"open_{process.name.replace('-', '_')}")(open_case)


def malformed_request(errors: list[dict]) -> dict:
    """A request that does not fit the schema, said in our error shape (code + bilingual message).

    FastAPI's own answer echoes every refused input whole (a 1 MB reason, 1 MB back) and cannot
    render a non-finite number at all (``{"amount": 1e309}`` is parsed as infinity: a 500). Here each
    input is quoted as a short prefix only."""
    problems = []
    for error in errors:
        field = ".".join(str(part) for part in error.get("loc", ()) if part != "body") or "body"
        problem = {"field": field, "type": str(error.get("type", "")), "problem": str(error.get("msg", ""))[:200]}
        if "input" in error and error.get("type") != "missing":
            problem["got"] = shown(error["input"], mask=mask_text)
        problems.append(problem)
    first = problems[0] if problems else {"field": "body", "problem": "", "type": ""}
    if first["field"] == "amount" and first["type"] == "string_type":
        message = (f"amount 必须是十进制字符串，如 \"128.00\" must be a decimal string in plain notation such as \"128.00\", "
                   f"got {first.get('got', '')}")
        return {"code": "amount_not_string", "message": message, "errors": problems}
    if first["type"] == "string_too_long":
        limit = (errors[0].get("ctx") or {}).get("max_length", "")
        length = len(errors[0]["input"]) if isinstance(errors[0].get("input"), str) else "?"
        message = f"{first['field']} 最多 {limit} 字 is at most {limit} characters (got {length})"
        return {"code": f"{first['field'].replace('.', '_')}_too_long", "message": message, "errors": problems}
    described = "; ".join(f"{p['field']}: {p['problem']}" + (f" (got {p['got']})" if "got" in p else "") for p in problems[:5])
    return {"code": "malformed_request", "message": f"请求格式不正确 the request does not fit the API: {described}", "errors": problems}


def _shop(moment) -> str:
    """A time for people: ISO 8601 in the shop's time zone, with its offset (``+08:00``)."""
    return moment.astimezone(get_settings().tz).isoformat()


def _masked(details: Any) -> Any:
    if isinstance(details, dict):
        return {k: _masked(v) for k, v in details.items()}
    if isinstance(details, list):
        return [_masked(v) for v in details]
    if isinstance(details, str):
        return mask_text(details)
    return details
