"""The buyer's satisfaction page (docs/rulebook.md §3; 000 §7.1.3): the link in the buyer's message after a
case closes, usable from a phone with nothing but the link.

- ``GET /satisfaction/{token}``: a small page with the score (1–5) and an optional comment.
- ``POST /satisfaction/{token}``: the answer, from that page (a plain HTML form, no script needed)
  or relayed by a platform as JSON ``{"score": 1–5, "comment": "…"}``.

The signed token is the credential (``reporting/satisfaction.py``), so these two routes need no API
key; a tampered link, an open case and a second answer are refused with a page that says why, and
change nothing. One answer per case is kept by the answer event's unique key.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse
from jinja2 import Environment, PackageLoader, select_autoescape
from pydantic import BaseModel, Field, ValidationError

from aftersales.reporting.satisfaction import AlreadyAnswered, BadToken, NotClosed, link_state, record_answer

SCORES = ((5, "非常满意", "Very satisfied"), (4, "满意", "Satisfied"), (3, "一般", "Neutral"),
          (2, "不满意", "Unsatisfied"), (1, "非常不满意", "Very unsatisfied"))
_FORM = "application/x-www-form-urlencoded"
_pages = Environment(loader=PackageLoader("aftersales.api", "pages"), autoescape=select_autoescape(["html"]))


class SatisfactionIn(BaseModel):
    score: int = Field(ge=1, le=5, description="1 (very unhappy) … 5 (very satisfied)")
    comment: str = Field(default="", max_length=500)


def page(kind: str, status: int, **context) -> HTMLResponse:
    html = _pages.get_template("satisfaction.html").render(kind=kind, scores=SCORES, **context)
    return HTMLResponse(html, status_code=status)


def add_satisfaction_page(router: APIRouter) -> None:
    @router.get("/satisfaction/{token}", response_class=HTMLResponse, summary="The buyer's satisfaction page")
    def show(token: str) -> HTMLResponse:
        try:
            state = link_state(token)
        except BadToken:
            return page("bad_link", 403)
        except LookupError:
            return page("bad_link", 404)
        if state.score is not None:
            return page("answered", 200, order_id=state.order_id, score=state.score)
        if not state.closed:
            return page("not_closed", 409, order_id=state.order_id)
        return page("form", 200, order_id=state.order_id, token=token)

    @router.post("/satisfaction/{token}", status_code=201, summary="The buyer's answer (page form or JSON)",
                 openapi_extra={"requestBody": {"content": {
                     "application/json": {"schema": SatisfactionIn.model_json_schema()},
                     _FORM: {"schema": SatisfactionIn.model_json_schema()}}}})
    async def answer(token: str, request: Request):
        from_page = request.headers.get("content-type", "").split(";")[0].strip() == _FORM
        body = await request.body()
        try:
            if from_page:
                fields = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
                given = SatisfactionIn(score=fields.get("score", 0), comment=fields.get("comment", ""))
            else:
                given = SatisfactionIn.model_validate(json.loads(body or b"{}"))
        except (ValidationError, ValueError) as exc:
            if from_page:
                state = _state_or_none(token)
                return page("form", 422, order_id=state.order_id if state else "", token=token,
                            error="请选择 1–5 分，留言最多 500 字 / Please choose a score from 1 to 5; comments up to 500 characters")
            problem = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else "body is not JSON"
            return JSONResponse({"detail": f"score 1–5, comment ≤ 500 characters: {problem}"}, status_code=422)
        try:
            recorded = record_answer(token, given.score, given.comment)
        except BadToken as exc:
            return page("bad_link", 403) if from_page else JSONResponse({"detail": str(exc)}, status_code=403)
        except LookupError as exc:
            return page("bad_link", 404) if from_page else JSONResponse({"detail": str(exc)}, status_code=404)
        except AlreadyAnswered as exc:
            if from_page:
                state = link_state(token)
                return page("answered", 409, order_id=state.order_id, score=state.score)
            return JSONResponse({"detail": str(exc)}, status_code=409)
        except NotClosed as exc:
            return page("not_closed", 409) if from_page else JSONResponse({"detail": str(exc)}, status_code=409)
        if from_page:
            return page("thanks", 201, score=recorded.score)
        return JSONResponse({"case_id": recorded.case_id, "score": recorded.score, "status": "recorded"}, status_code=201)


def _state_or_none(token: str):
    try:
        return link_state(token)
    except (BadToken, LookupError):
        return None
