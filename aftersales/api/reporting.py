"""Reporting endpoints of our HTTP app (mounted by ``api/app.py``; the app's X-Api-Key check
covers them):

- ``GET /exports/{filename}``: a workbook from ``settings.exports_dir`` (the Prefect link artifact
  points here). Only plain file names of ``.xlsx`` files directly in that folder: no path traversal.

The buyer's satisfaction page, which needs no key, is ``api/satisfaction_page.py``.
"""

from __future__ import annotations

import re

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

from aftersales.domain.settings import get_settings

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_FILENAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,120}\.xlsx$")


def add_reporting_routes(router: APIRouter) -> None:
    @router.get("/exports/{filename}")
    def download_export(filename: str) -> FileResponse:
        if not _FILENAME.fullmatch(filename) or ".." in filename:
            raise HTTPException(status_code=404, detail="no such export")
        folder = get_settings().exports_dir.resolve()
        path = (folder / filename).resolve()
        # belt and braces: the resolved file must sit directly in the exports folder (no symlink out)
        if path.parent != folder or not path.is_file():
            raise HTTPException(status_code=404, detail="no such export")
        return FileResponse(path, media_type=XLSX, filename=filename)
