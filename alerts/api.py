"""HTTP write actions on silences (reads go through the named queries `silences`, `alerts`, ...).

`ROUTES` is mounted by the server; handlers reach the server through `request.app.state.aiwatch`.
    POST   /v1/silences  (alias /v1/alerts/silences)
           {"matchers": ["service=checkout"] or [{"name", "op", "value"}], "duration": "2h" | "ends_at": ...,
            "starts_at"?: ..., "created_by": "...", "comment": "..."}          -> 201 {"id", "ends_at"}
    DELETE /v1/silences/{id}  (alias POST /v1/alerts/silences/{id}/expire)   -> 200, or 404
"""
from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from aiwatch.httpapi import ApiError, api_error, authorized, json_object, request_id
from alerts.silences import SilenceError, add_silence, expire_silence
from core.durations import parse_duration
from store.queries import BadParameter, parse_time


async def create_silence(request: Request) -> Response:
    server, rid = request.app.state.aiwatch, request_id(request)
    if not authorized(request, server.settings.api_token):
        return api_error(401, "unauthorized", "missing or wrong bearer token", rid)
    try:
        body = await json_object(request)
        matchers = body.get("matchers") or []
        if not isinstance(matchers, list) or not all(isinstance(m, (str, dict)) for m in matchers):
            raise ValueError("matchers must be a list like [\"service=checkout\"] or [{name, op, value}]")
        starts_at = parse_time(body["starts_at"]) if body.get("starts_at") else None
        if body.get("ends_at"):
            ends_at = parse_time(body["ends_at"])
        elif body.get("duration"):
            ends_at = (starts_at or parse_time("now")) + parse_duration(body["duration"])
        else:
            raise ValueError("give ends_at or duration")
        sid = await run_in_threadpool(add_silence, server.store, matchers, ends_at=ends_at, starts_at=starts_at,
                                      created_by=str(body.get("created_by", "")), comment=str(body.get("comment", "")))
    except ApiError as exc:
        return api_error(exc.status, exc.code, exc.message, rid)
    except OverflowError:  # a start or duration that puts the end past any date
        return api_error(400, "bad_silence", "the silence ends too far in the future", rid)
    except (ValueError, BadParameter, SilenceError) as exc:
        return api_error(400, "bad_silence", str(exc), rid)
    except (TypeError, AttributeError):   # a field of the wrong JSON type
        return api_error(400, "bad_silence", "starts_at/ends_at must be times, duration like \"2h\", "
                         "matchers strings or {name, op, value}", rid)
    return JSONResponse({"id": sid, "ends_at": ends_at.isoformat()}, status_code=201)


async def expire(request: Request) -> Response:
    server, rid = request.app.state.aiwatch, request_id(request)
    if not authorized(request, server.settings.api_token):
        return api_error(401, "unauthorized", "missing or wrong bearer token", rid)
    sid = request.path_params["silence_id"]
    if not await run_in_threadpool(expire_silence, server.store, sid):
        return api_error(404, "unknown_silence", f"no active silence with id {sid!r}", rid)
    return JSONResponse({"id": sid, "expired": True})


ROUTES: list[Route] = [
    Route("/v1/silences", create_silence, methods=["POST"]),
    Route("/v1/silences/{silence_id}", expire, methods=["DELETE"]),
    Route("/v1/alerts/silences", create_silence, methods=["POST"]),
    Route("/v1/alerts/silences/{silence_id}/expire", expire, methods=["POST"]),
]
