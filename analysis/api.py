"""HTTP actions of the analysis stage: Evidently drift reports on demand, saved and linkable.

`ROUTES` is mounted by the server; handlers reach it through `request.app.state.aiwatch`.
    POST /v1/reports/drift  {"route", "start", "end", "service"?, "reference_start"?, "reference_end"?,
                             "columns"?: ["input_tokens", "attr:aiwatch.input.language:cat", ...]}
                            -> 201 {"id", "url", "route", "reference", "reference_rows", "current_rows", "columns"}
    GET  /v1/reports/{id}   -> the saved HTML report (text/html)
Errors: {"error": {"code", "message", "request_id"}}; 400 bad input, 404 unknown route or report,
422 a window (or its reference) without calls.
"""
from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any, Literal, overload

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from aiwatch.httpapi import api_error, authorized, signed_link_valid
from aiwatch.httpapi import request_id as new_request_id
from analysis.settings import DriftColumn
from store import analytics
from store.queries import BadParameter, parse_time

log = logging.getLogger(__name__)

_REPORT_ID = re.compile(r"^[0-9a-f]{8,32}$")


class _Problem(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@overload
def _text(body: dict, key: str, required: Literal[True]) -> str: ...
@overload
def _text(body: dict, key: str, required: bool = False) -> str | None: ...
def _text(body: dict, key: str, required: bool = False) -> str | None:
    value = body.get(key)
    if value in (None, ""):
        if required:
            raise _Problem(400, "bad_parameter", f"{key} is required")
        return None
    if not isinstance(value, str):
        raise _Problem(400, "bad_parameter", f"{key} must be a string")
    return value


def _time(body: dict, key: str, required: bool = False):
    text = _text(body, key, required)
    if text is None:
        return None
    try:
        return parse_time(text)
    except BadParameter as exc:
        raise _Problem(400, "bad_parameter", f"{key}: {exc}") from None


def _columns(body: dict) -> list[DriftColumn] | None:
    specs = body.get("columns")
    if specs in (None, []):
        return None
    if not isinstance(specs, list) or not all(isinstance(c, str) and c for c in specs):
        raise _Problem(400, "bad_parameter", "columns must be a list of column names like "
                                             "\"input_tokens\" or \"attr:aiwatch.input.language:cat\"")
    if len(specs) > 64:
        raise _Problem(400, "bad_parameter", "columns: at most 64")
    try:
        return [DriftColumn.parse(c) for c in specs]
    except ValueError as exc:
        raise _Problem(400, "bad_parameter", f"columns: {exc}") from None


def _drift_report(server: Any, body: dict) -> dict[str, Any]:
    """Validate, check the data, run Evidently (in the caller's worker thread) and save the report."""
    from analysis.evidently_report import EmptyWindow, create_drift_report

    route = _text(body, "route", required=True)
    service = _text(body, "service")
    start, end = _time(body, "start", required=True), _time(body, "end", required=True)
    if start >= end:
        raise _Problem(400, "bad_parameter", "start must be before end")
    ref_start, ref_end = _time(body, "reference_start"), _time(body, "reference_end")
    if (ref_start is None) != (ref_end is None):
        raise _Problem(400, "bad_parameter", "give both reference_start and reference_end, or neither")
    if ref_start is not None and ref_start >= ref_end:
        raise _Problem(400, "bad_parameter", "reference_start must be before reference_end")
    columns = _columns(body)
    if not analytics.route_exists(server.store, route, service):
        where = f" of service {service!r}" if service else ""
        raise _Problem(404, "unknown_route", f"no model call ever carried route {route!r}{where}")
    settings = server.settings.analysis
    try:
        saved = create_drift_report(server.store, settings, route, start, end, server.settings.data_dir, service,
                                    (ref_start, ref_end) if ref_start else None, columns)
    except EmptyWindow as exc:
        raise _Problem(422, "empty_window", str(exc)) from None
    return {"id": saved.id, "url": f"/v1/reports/{saved.id}", "route": saved.route, "service": service,
            "start": saved.start.isoformat(), "end": saved.end.isoformat(),
            "reference": [t.isoformat() for t in saved.reference], "reference_rows": saved.reference_rows,
            "current_rows": saved.current_rows, "columns": saved.columns}


async def post_drift_report(request: Request) -> Response:
    server = request.app.state.aiwatch
    request_id = new_request_id(request)
    if not authorized(request, server.settings.api_token):
        return api_error(401, "unauthorized", "missing or wrong bearer token", request_id)
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        return api_error(400, "bad_json", "the body must be a JSON object", request_id)
    if not isinstance(body, dict):
        return api_error(400, "bad_json", "the body must be a JSON object", request_id)
    try:
        out = await run_in_threadpool(_drift_report, server, body)
    except _Problem as p:
        return api_error(p.status, p.code, p.message, request_id)
    except Exception:  # noqa: BLE001 - a failed report is a structured 500, not a traceback
        # the exception's text stays in the server log: database errors can quote data
        log.exception("drift report failed (request %s)", request_id)
        return api_error(500, "report_failed", "the report could not be built; the server log has the cause "
                         f"under request id {request_id}", request_id)
    return JSONResponse({**out, "request_id": request_id}, status_code=201,
                        headers={"X-Request-Id": request_id, "Location": out["url"]})


def _report_file(server: Any, report_id: str) -> Path | None:
    row = analytics.saved_report(server.store, report_id)
    if row is None:
        return None
    path = Path(json.loads(row["body"])["path"]).resolve()
    reports = (Path(server.settings.data_dir) / "reports").resolve()
    # only files the server saved under its own reports folder are served
    return path if path.is_relative_to(reports) and path.is_file() else None


async def get_report(request: Request) -> Response:
    server = request.app.state.aiwatch
    request_id = new_request_id(request)
    token = server.settings.api_token
    if not (authorized(request, token) or signed_link_valid(request, token)):   # browsers get signed links
        return api_error(401, "unauthorized", "missing or wrong bearer token, or an expired link", request_id)
    report_id = request.path_params["report_id"]
    if not _REPORT_ID.match(report_id):
        return api_error(404, "unknown_report", f"no report with id {report_id!r}", request_id)
    path = await run_in_threadpool(_report_file, server, report_id)
    if path is None:
        return api_error(404, "unknown_report", f"no report with id {report_id!r}", request_id)
    html = await run_in_threadpool(path.read_text, "utf-8")
    return HTMLResponse(html, headers={"X-Request-Id": request_id})


ROUTES: list[Route] = [
    Route("/v1/reports/drift", post_drift_report, methods=["POST"]),
    Route("/v1/reports/{report_id}", get_report, methods=["GET"]),
]
