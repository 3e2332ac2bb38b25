"""Reporting endpoints of our HTTP app (mounted by ``api/app.py``; the app's X-Api-Key check
covers them):

- ``GET /exports/{filename}``: a workbook from ``settings.exports_dir`` (the Prefect link artifact
  points here). Only plain file names of ``.xlsx`` files directly in that folder: no path traversal.
- ``POST /satisfaction/{token}`` ``{"score": 1–5, "comment": "…"}``: the buyer's answer, relayed by
  the shop platform (which holds the API key). The token is HMAC-signed; one answer per case.
"""

from __future__ import annotations

import re

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from aftersales.domain.settings import get_settings

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_FILENAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,120}\.xlsx$")


class SatisfactionIn(BaseModel):
    score: int = Field(ge=1, le=5, description="1 (very unhappy) … 5 (very satisfied)")
    comment: str = Field(default="", max_length=500)


def add_reporting_routes(app: FastAPI) -> None:
    @app.get("/exports/{filename}")
    def download_export(filename: str) -> FileResponse:
        if not _FILENAME.fullmatch(filename) or ".." in filename:
            raise HTTPException(status_code=404, detail="no such export")
        folder = get_settings().exports_dir.resolve()
        path = (folder / filename).resolve()
        # belt and braces: the resolved file must sit directly in the exports folder (no symlink out)
        if path.parent != folder or not path.is_file():
            raise HTTPException(status_code=404, detail="no such export")
        return FileResponse(path, media_type=XLSX, filename=filename)

    @app.post("/satisfaction/{token}", status_code=201)
    def answer_satisfaction(token: str, answer: SatisfactionIn) -> dict:
        from aftersales.reporting.satisfaction import AlreadyAnswered, BadToken, NotClosed, record_answer

        try:
            recorded = record_answer(token, answer.score, answer.comment)
        except BadToken as exc:
            raise HTTPException(status_code=403, detail=str(exc)) from None
        except LookupError as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from None
        except (AlreadyAnswered, NotClosed) as exc:
            raise HTTPException(status_code=409, detail=str(exc)) from None
        return {"case_id": recorded.case_id, "score": recorded.score, "status": "recorded"}
