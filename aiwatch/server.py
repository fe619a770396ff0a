"""The aiwatch server: one process that owns the store and hosts ingest, the read API and jobs.

Routes: OTLP/HTTP receivers (`/v1/traces`, `/v1/logs`, `/v1/metrics`), the read API
(`/v1/query/{name}`, `/v1/openapi.json`), `/healthz`, `/readyz` and `/metrics`.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import secrets
import time
from concurrent.futures.process import BrokenProcessPool
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
from google.rpc import status_pb2
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from aiwatch import __version__
from aiwatch.config import Settings
from aiwatch.httpapi import api_error, authorized, internal_error
from aiwatch.httpapi import request_id as new_request_id
from aiwatch.jobs import Job, Scheduler
from aiwatch.leadership import LeaseRunner
from aiwatch.selfmetrics import SelfMetrics, WriterCollector
from aiwatch.serving import InFlight, InFlightLimit
from aiwatch.stages import load_stages, stage_jobs, stage_queries, stage_reload, stage_routes
from aiwatch.storage import open_lease, open_store
from analysis.runner import AnalyzerHealth
from collectors.content import ContentPolicy
from collectors.decode import JSON, PROTOBUF, BadPayload, media_type, serialize
from collectors.pipeline import SIGNALS, ConversionPool, Signal, freeze_start_up
from collectors.traces import AttributeLimits
from core.clock import utcnow
from store import prices
from store.clickhouse import parse_store
from store.queries import BadParameter
from store.retention import retention_cutoff
from store.writer import Overloaded, WriterBroken, WriterClosed

if TYPE_CHECKING:
    from collectors.tailer import AuditTailer

log = logging.getLogger("aiwatch.server")
QUERY_SLOT_WAIT_S = 30.0   # a read waits this long for a free query slot before a 503

ARROW_STREAM = "application/vnd.apache.arrow.stream"
REQUEST_SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class AiwatchServer:
    def __init__(self, settings: Settings, policy: ContentPolicy | None = None) -> None:
        load_stages()
        self.queries = stage_queries(settings)
        self.settings = settings
        prices.configure(settings.price_table())   # the cost queries and analyzers price with the overrides
        self.store = open_store(settings)
        # which backend answers (no password): an operator reading /readyz sees where the data is
        # /readyz is unauthenticated: it names the backend kind only, never a host, path or user
        self.store_name = parse_store(settings.store).kind
        # named in /readyz (no token): an operator-chosen name or a random one, never a host or path
        self.instance_id = settings.instance_id or f"aiwatch-{secrets.token_hex(4)}"
        self.lease = open_lease(settings, self.store, self.instance_id) if settings.lease else None
        self.leader: LeaseRunner | None = None
        self.policy = policy or settings.content_policy()
        self.metrics = SelfMetrics()
        self.analysis_health = AnalyzerHealth()   # the analysis jobs record into it (ctx.analysis_health)
        self.in_flight = InFlight()
        # bounds the memory of concurrent large reads: a result, its sort and its encoding live only inside
        self.query_slots = asyncio.Semaphore(settings.max_concurrent_queries)
        self._describe_metrics()
        self.scheduler = Scheduler(self)
        self.tailer: AuditTailer | None = None
        self.started_at = time.time()
        self.pool: ConversionPool | None = None  # started with the app: worker processes are not forked

    # --- lifecycle ---
    def start_background(self) -> None:
        s = self.settings
        workers = s.ingest_workers if s.ingest_workers >= 0 else (os.cpu_count() or 1)
        self.pool = ConversionPool(workers, self.policy, s.redaction(), s.max_body_bytes,
                                   AttributeLimits(s.max_span_attribute_bytes, s.max_request_attribute_bytes))
        if self.settings.scheduler_enabled and self.lease is not None:
            self.leader = LeaseRunner(self.lease, self._new_scheduler)   # jobs run while this instance holds it
            self.leader.start()
        elif self.settings.scheduler_enabled:
            for job in self.jobs():
                self.scheduler.add(job)
            self.scheduler.start()
        if self.settings.audit_paths:
            from collectors.tailer import AuditTailer

            globs = [g.strip() for g in self.settings.audit_paths.split(",") if g.strip()]
            self.tailer = AuditTailer(self.store, globs, self.policy, poll_s=self.settings.audit_poll_s,
                                      metrics=self.metrics)
            self.tailer.start()

    def reload(self) -> list[tuple[str, bool, str]]:
        """Re-read what the stages reload (the alert rules): each file is validated whole and takes
        effect from the next run that reads it; a file that fails keeps what is in force."""
        results = stage_reload()
        for what, ok, _why in results:
            self.metrics.inc("aiwatch_reloads_total", what=what, result="success" if ok else "failure")
        return results

    def _new_scheduler(self) -> Scheduler:
        scheduler = Scheduler(self)
        for job in self.jobs():
            scheduler.add(job)
        return scheduler

    def holds_lease(self) -> bool:
        """Whether this instance may run scheduled work and send notifications now (always, without
        the `lease` setting): the fence the alert delivery checks before each send."""
        return self.lease is None or self.lease.held()

    def jobs(self) -> list[Job]:
        jobs = [Job("retention", 3600, self._retention, "Delete rows past retention_days / analysis_retention_days.")]
        jobs.extend(stage_jobs(self.settings))
        return jobs

    def _retention(self, _ctx: Any) -> dict[str, int] | None:
        now = utcnow()
        cutoff = retention_cutoff(now, self.settings.retention_days)
        analysis_cutoff = retention_cutoff(now, self.settings.analysis_retention_days)
        if cutoff is None and analysis_cutoff is None:
            return None
        return self.store.delete_older_than(cutoff, analysis_cutoff)

    def close(self) -> None:
        if self.pool:
            self.pool.close()
        self.scheduler.stop()
        if self.leader:
            self.leader.stop()
        elif self.lease:
            self.lease.close()
        if self.tailer:
            self.tailer.stop()
        self.store.close()

    def _describe_metrics(self) -> None:
        m = self.metrics
        m.counter("aiwatch_received_total", "Items received by the OTLP receivers, by signal.", ("signal",))
        m.counter("aiwatch_accepted_total", "Items committed to the store, by signal.", ("signal",))
        m.counter("aiwatch_rejected_total", "Items rejected (partial success or 4xx), by signal.", ("signal",))
        m.counter("aiwatch_requests_total", "HTTP requests to the receivers, by signal and status code.",
                  ("code", "signal"))
        m.counter("aiwatch_shed_total", "Requests refused with 503 because the write queue was full.", ("signal",))
        m.histogram("aiwatch_request_duration_seconds", "Time to answer an OTLP request, by signal.",
                    REQUEST_SECONDS_BUCKETS, ("signal",))
        m.gauge("aiwatch_requests_in_progress", "Requests being served (counted against max_concurrent_requests).",
                lambda: self.in_flight.count)
        m.registry.register(WriterCollector(lambda: self.store.writer))
        m.counter("aiwatch_reloads_total", "Reloads of configuration files (SIGHUP), by what and result.",
                  ("what", "result"))
        m.gauge("aiwatch_database_bytes", "Size of the database file and its WAL.", self.store.size_bytes)
        health = self.analysis_health
        m.family("aiwatch_analyzer_failures_total", "Analyzer runs that failed, by analyzer.",
                 lambda: [({"analyzer": a}, n) for a, n in dict(health.failures).items()])
        m.family("aiwatch_analyzer_quarantined_total", "Minutes an analyzer could not compute and skipped.",
                 lambda: [({"analyzer": a}, n) for a, n in dict(health.quarantined).items()])
        m.gauge("aiwatch_analyzers_failing", "Analyzers whose last run failed or quarantined data.",
                lambda: len(health.failing))
        m.gauge("aiwatch_uptime_seconds", "Seconds since the server started.", lambda: time.time() - self.started_at)
        m.family("aiwatch_instance_info", "This instance's id (label instance_id), always 1.",
                 lambda: [({"instance_id": self.instance_id}, 1)], kind="gauge")
        if self.lease is not None:
            lease = self.lease
            m.gauge("aiwatch_lease_held", "1 while this instance holds the scheduler lease (runs the analyzers "
                    "and alerts), else 0.", lambda: float(lease.held()))
            m.family("aiwatch_lease_holder_info", "The instance that holds the scheduler lease as this instance "
                     "last read it (label holder; empty: none), always 1.",
                     lambda: [({"holder": lease.holder or ""}, 1)], kind="gauge")
            m.gauge("aiwatch_lease_epoch", "The lease's epoch as last read (+1 at each hand-over).",
                    lambda: float(lease.row.epoch if lease.row else 0))
            m.family("aiwatch_lease_acquired_total", "Times this instance took the scheduler lease.",
                     lambda: [({}, lease.acquired)])

    # --- ASGI ---
    def app(self) -> Starlette:
        @contextlib.asynccontextmanager
        async def lifespan(_app: Starlette):
            self.start_background()
            freeze_start_up()   # as in the conversion workers: full collections skip what start-up loaded
            try:
                yield
            finally:
                await run_in_threadpool(self.close)

        routes = [
            Route("/v1/traces", self._ingest_route("traces"), methods=["POST"]),
            Route("/v1/logs", self._ingest_route("logs"), methods=["POST"]),
            Route("/v1/metrics", self._ingest_route("metrics"), methods=["POST"]),
            Route("/v1/query/{name}", self.query, methods=["GET"]),
            Route("/v1/queries", self.list_queries, methods=["GET"]),
            Route("/v1/openapi.json", self.openapi, methods=["GET"]),
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/readyz", self.readyz, methods=["GET"]),
            Route("/metrics", self.prometheus, methods=["GET"]),
            *stage_routes(),
        ]
        limit = Middleware(InFlightLimit, limit=self.settings.max_concurrent_requests,
                           retry_after_s=self.settings.retry_after_s, counter=self.in_flight)
        app = Starlette(routes=routes, lifespan=lifespan, middleware=[limit],
                        exception_handlers={Exception: internal_error})
        app.state.aiwatch = self
        return app

    # --- ingest ---
    def _ingest_route(self, signal: str):
        async def handler(request: Request) -> Response:
            started = time.perf_counter()
            try:
                return await self.ingest(request, SIGNALS[signal])
            finally:
                self.metrics.observe("aiwatch_request_duration_seconds", time.perf_counter() - started, signal=signal)
        return handler

    async def ingest(self, request: Request, signal: Signal) -> Response:
        m = self.metrics
        try:
            kind = media_type(request.headers.get("content-type"))
        except BadPayload as exc:
            return self._otlp_error(exc.status, exc.reason, JSON, signal)
        if not authorized(request, self.settings.ingest_token):
            return self._otlp_error(401, "missing or wrong bearer token", kind, signal)
        if self.store.writer.pending_rows >= self.settings.queue_max_rows:
            m.inc("aiwatch_shed_total", signal=signal.name)
            return self._otlp_error(503, "write queue is full; retry later", kind, signal, retry=True)
        if self.store.writer.broken:   # no use decoding a body that cannot be written
            return self._otlp_error(503, f"the database cannot take writes ({self.store.writer.broken}); retry later",
                                    kind, signal, retry=True)
        try:
            body = await _read_body(request, self.settings.max_body_bytes)
            assert self.pool is not None, "start_background() starts the pool before requests are served"
            converted = await self.pool.convert(signal.name, body, kind, request.headers.get("content-encoding"))
        except BadPayload as exc:
            return self._otlp_error(exc.status, exc.reason, kind, signal)
        except BrokenProcessPool:
            return self._otlp_error(503, "a conversion worker died; retry later", kind, signal, retry=True)
        m.inc("aiwatch_received_total", converted.accepted + converted.rejected, signal=signal.name)
        try:
            if converted.tables:
                await asyncio.wrap_future(self.store.writer.submit(converted.tables))
        except Overloaded:
            m.inc("aiwatch_shed_total", signal=signal.name)
            return self._otlp_error(503, "write queue is full; retry later", kind, signal, retry=True)
        except (WriterClosed, BrokenProcessPool):
            return self._otlp_error(503, "server is restarting a component; retry later", kind, signal, retry=True)
        except WriterBroken as exc:   # nothing of the batch was committed
            return self._otlp_error(503, f"the database cannot take writes ({exc}); retry later", kind, signal,
                                    retry=True)
        except Exception:  # noqa: BLE001 - the store refused the batch: nothing acknowledged
            log.exception("write failed")
            return self._otlp_error(503, "write failed; retry later", kind, signal, retry=True)
        m.inc("aiwatch_accepted_total", converted.accepted, signal=signal.name)
        m.inc("aiwatch_rejected_total", converted.rejected, signal=signal.name)
        m.inc("aiwatch_requests_total", signal=signal.name, code="200")
        response: Any = signal.response_cls()   # the signal's Export*ServiceResponse
        if converted.rejected or converted.messages:
            setattr(response.partial_success, signal.rejected_field, converted.rejected)
            response.partial_success.error_message = converted.message()
        return Response(serialize(response, kind), media_type=kind)

    def _otlp_error(self, status: int, reason: str, kind: str, signal: Signal, retry: bool = False) -> Response:
        self.metrics.inc("aiwatch_requests_total", signal=signal.name, code=str(status))
        body = status_pb2.Status(code=_GRPC_CODES.get(status, 3), message=reason)
        headers = {"Retry-After": str(self.settings.retry_after_s)} if retry else {}
        if status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        return Response(serialize(body, kind if kind in (PROTOBUF, JSON) else JSON), status_code=status,
                        media_type=kind if kind in (PROTOBUF, JSON) else JSON, headers=headers)

    # --- read API ---
    async def query(self, request: Request) -> Response:
        request_id = new_request_id(request)
        if not authorized(request, self.settings.api_token):
            return api_error(401, "unauthorized", "missing or wrong bearer token", request_id)
        name = request.path_params["name"]
        query = self.queries.get(name)
        if query is None:
            return api_error(404, "unknown_query", f"no query named {name!r}; see /v1/queries", request_id)
        raw = dict(request.query_params)
        fmt = raw.get("format") or ("arrow" if ARROW_STREAM in request.headers.get("accept", "") else "json")
        if fmt not in ("json", "arrow"):
            return api_error(400, "bad_parameter", "format must be json or arrow", request_id)
        started = time.perf_counter()
        cap = self.settings.max_response_bytes
        try:
            await asyncio.wait_for(self.query_slots.acquire(), QUERY_SLOT_WAIT_S)
        except TimeoutError:
            return api_error(503, "busy", "too many queries at once; retry later", request_id,
                             headers={"Retry-After": str(self.settings.retry_after_s)})
        try:
            table, truncated = await run_in_threadpool(query.execute_capped, self.store, raw, cap)
            arrow_body, json_pieces = b"", list[bytes]()
            if fmt == "arrow":
                arrow_body, rows, cut = await run_in_threadpool(_arrow_ipc, table, cap)
            else:
                json_pieces, rows, cut = await run_in_threadpool(_json_rows_body, request_id, name, table, cap,
                                                                 truncated)
            del table  # only the encoded answer is held while it is sent
        except BadParameter as exc:
            return api_error(400, "bad_parameter", str(exc), request_id)
        except Exception:  # noqa: BLE001 - a failed query is a structured 500, not a traceback
            # the exception's text stays in the log: a database error can quote data or paths
            log.exception("query %s failed (request %s)", name, request_id)
            return api_error(500, "query_failed", f"query {name} failed; the server log has the cause under "
                             f"request id {request_id}", request_id)
        finally:
            self.query_slots.release()
        truncated = truncated or cut
        headers = {"X-Request-Id": request_id, "X-Query-Ms": f"{(time.perf_counter() - started) * 1000:.1f}",
                   "X-Rows": str(rows), "X-Truncated": "true" if truncated else "false"}
        if fmt == "arrow":
            return Response(arrow_body, media_type=ARROW_STREAM, headers=headers)
        # Sent piece by piece: no second copy of a large answer is made to join them.
        return StreamingResponse(iter(json_pieces), media_type="application/json", headers=headers)

    async def list_queries(self, request: Request) -> Response:
        if not authorized(request, self.settings.api_token):
            return api_error(401, "unauthorized", "missing or wrong bearer token", new_request_id(request))
        return JSONResponse({"queries": [{"name": q.name, "description": q.description,
                                          "params": [p.name for p in q.params]} for q in self.queries.values()]})

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(self.queries.openapi(__version__))

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "version": __version__})

    async def readyz(self, request: Request) -> Response:
        """503 while ingest cannot work (database unreadable, queue full); 200 "degraded" while it
        can but an analyzer is failing (taking the server out of a load balancer would stop ingest
        too). Error text stays in the log: the body names states, never the database's messages."""
        try:
            await run_in_threadpool(self.store.scalar, "SELECT 1")
        except Exception:  # noqa: BLE001
            log.exception("readiness check: the database cannot be read")
            return JSONResponse({"status": "unavailable", "reason": "database unreadable"}, status_code=503)
        broken = self.store.writer.broken   # a fixed phrase such as "disk full", never DuckDB's text
        if broken:
            return JSONResponse({"status": "unavailable", "reason": f"database writes failing: {broken}"},
                                status_code=503, headers={"Retry-After": str(self.settings.retry_after_s)})
        if self.store.writer.pending_rows >= self.settings.queue_max_rows:
            return JSONResponse({"status": "overloaded"}, status_code=503,
                                headers={"Retry-After": str(self.settings.retry_after_s)})
        about: dict[str, Any] = {"queue_rows": self.store.writer.pending_rows, "store": self.store_name,
                                 "instance": self.instance_id}
        if self.lease is not None:   # instance ids only: /readyz answers without a token
            about["lease"] = {"holder": self.lease.holder or None, "held": self.lease.held()}
        failing = sorted(self.analysis_health.failing)
        if failing:
            return JSONResponse({"status": "degraded", "analyzers_failing": failing, **about})
        return JSONResponse({"status": "ready", **about})

    async def prometheus(self, request: Request) -> Response:
        # Self-metrics name services and queue depths: a reader of the API may see them, and so
        # may a scraper holding only metrics_token.
        s = self.settings
        if (s.api_token or s.metrics_token) and not any(
                token and authorized(request, token) for token in (s.metrics_token, s.api_token)):
            return api_error(401, "unauthorized", "missing or wrong bearer token (metrics_token or api_token)",
                             new_request_id(request))
        return Response(self.metrics.render(), media_type=CONTENT_TYPE_PLAIN_0_0_4)   # what every Prometheus reads


_GRPC_CODES = {400: 3, 401: 16, 403: 7, 404: 5, 413: 8, 415: 3, 429: 8, 503: 14}


async def _read_body(request: Request, limit: int) -> bytes:
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit:
        raise BadPayload(413, f"body of {length} bytes is over the {limit}-byte limit")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadPayload(413, f"body is over the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def _arrow_ipc(table: pa.Table, max_bytes: int) -> tuple[bytes, int, bool]:
    """The Arrow IPC stream of the rows that fit in `max_bytes` (whole batches); rows sent, whether cut."""
    sink = pa.BufferOutputStream()
    rows, cut = 0, False
    with pa.ipc.new_stream(sink, table.schema) as writer:
        for batch in table.to_batches(max_chunksize=64):  # small batches: the cut lands near the cap
            if rows and sink.tell() + batch.nbytes > max_bytes:
                cut = True
                break
            writer.write_batch(batch)
            rows += batch.num_rows
    return sink.getvalue().to_pybytes(), rows, cut


def _json_rows_body(request_id: str, name: str, table: pa.Table, max_bytes: int,
                    truncated: bool) -> tuple[list[bytes], int, bool]:
    """The JSON answer, in pieces, with as many whole rows as fit in `max_bytes`, encoded a slice at a
    time so memory stays near the cap: `truncated` says whether rows were left out, `rows` how many are sent."""
    parts: list[bytes] = [b""]  # the head, once the columns are known
    size, rows, cut = 0, 0, False
    for offset in range(0, table.num_rows, 2000):
        chunk = _jsonable_rows(table.slice(offset, 2000))
        text = json.dumps(chunk, default=_json_default)[1:-1].encode()
        if size + len(text) + 2 > max_bytes:
            for row in chunk:  # the slice that crosses the cap: whole rows while they fit
                piece = json.dumps(row, default=_json_default).encode()
                if rows and size + len(piece) + 2 > max_bytes:
                    break
                parts.append(b", " + piece if rows else piece)
                size += len(piece) + 2
                rows += 1
            cut = rows < table.num_rows
            break
        if text:
            parts.append(b", " + text if rows else text)
        size += len(text) + 2
        rows += len(chunk)
    parts[0] = (json.dumps({"request_id": request_id, "query": name, "columns": table.column_names})[:-1]
                + ', "data": [').encode()
    parts.append(("], " + json.dumps({"rows": rows, "truncated": truncated or cut})[1:]).encode())
    return parts, rows, cut


def _jsonable_rows(table: pa.Table) -> list[dict[str, Any]]:
    # NaN and infinities are not JSON: send them as null.
    for i, field in enumerate(table.schema):
        if pa.types.is_floating(field.type):
            col = table.column(i)
            table = table.set_column(i, field.name, pc.if_else(pc.is_finite(col), col, None))
    return table.to_pylist()


def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def build_app(settings: Settings) -> tuple[AiwatchServer, Starlette]:
    server = AiwatchServer(settings)
    return server, server.app()
