"""The report API: ``GET /reports/group_datetime`` (SPEC §10), served by FastAPI.

``create_app(conf_dir, lakehouse)`` builds the app; ``python -m reports serve`` runs it
with uvicorn. Parameters are parsed by :mod:`reports.params` (not by FastAPI, so that
every error has SPEC's shape and names its parameter); the OpenAPI document still lists
each parameter with its allowed values, and every error.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal

import httpx
from fastapi import FastAPI, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from jobs.config import Config, load_config
from jobs.spec import COMEBACK_COLUMNS, INTERVALS, REPORT_DEFAULTS, USER_TYPES
from reports.params import (MAX_OBJECT_BUCKETS, MAX_OBJECTS, THRESHOLD_VALUES, ReportError,
                            ReportRequest, parse, resolve_objects)
from reports.buckets import bucket_count
from reports.query import Gold, GoldUnavailable, report
from reports.tokens import TOKENS_FILE, TokenStore, digest

#: Uvicorn's error log: what the server prints at start (and where tracebacks go).
log = logging.getLogger("uvicorn.error")

#: The development token of the demo world (docs/api.md). Never in production.
DEV_TOKEN = "footfall-dev-token"
#: Environment variables read by :func:`app_from_env` (``python -m reports serve``).
ENV_CONF, ENV_LAKEHOUSE, ENV_REFRESH = "FOOTFALL_CONF", "FOOTFALL_LAKEHOUSE", "FOOTFALL_REFRESH_SECONDS"
ENV_WARM_UP = "FOOTFALL_WARM_UP"

#: Error codes per HTTP status, for the OpenAPI document and docs/api.md.
ERROR_CODES = {
    400: {
        "missing_parameter": "a required parameter (from, to, objects, interval) is absent",
        "invalid_parameter": "a value is not one of the allowed ones, or a parameter is repeated",
        "unknown_parameter": "a parameter SPEC does not define (a typo would otherwise be ignored)",
        "invalid_range": "from is after to",
        "invalid_thresholds": "engagement_threshold is less than bounce_threshold",
        "unknown_object": "an id in objects is not an object of the config",
        "mixed_object_types": "objects mixes malls, floors and zones",
        "range_too_large": f"more than {MAX_OBJECT_BUCKETS:,} object-buckets (objects × buckets)",
    },
    401: {"missing_token": "no x-token header", "invalid_token": "the x-token is not a known token"},
    403: {"forbidden_object": "the token may not see this object's mall"},
    503: {"gold_unavailable": "the gold table cannot be read (not built yet, or a wrong lakehouse)"},
}


# ---------------------------------------------------------------------------- OpenAPI models

class Row(BaseModel):
    """One bucket's metrics for one user type."""

    datetime: str = Field(description="the bucket's local start, ISO 8601 with its offset "
                          "(`Z` when zero): `2016-02-01T00:00:00+03:00`", examples=["2016-02-01T00:00:00Z"])
    count_session: int = Field(description="sessions starting in the bucket")
    count_client: int = Field(description="distinct clients (devices) among them")
    avg_session_duration: int = Field(description="their mean duration, minutes, rounded half up")
    count_comeback_client: int = Field(description="clients who came back within the `comeback` window")
    sum_session_duration: float = Field(description="Gross Shopping Hours: total duration in hours, at "
                                        "most 2 decimals; 0 for hourly, weekday and weekend")
    user_type: Literal[USER_TYPES] = Field(  # type: ignore[valid-type]
        description="the user type of this row")


class ObjectReport(BaseModel):
    """One list of rows per user type, in this order; each in time order, one per bucket."""

    model_config = ConfigDict(populate_by_name=True)
    all: list[Row]
    bounced: list[Row]
    employee: list[Row]
    engaged: list[Row]
    half_engaged: list[Row] = Field(alias="half engaged")
    passer: list[Row]
    visitor: list[Row]


class ErrorBody(BaseModel):
    code: str = Field(description="a stable code, see the error responses")
    message: str = Field(description="what is wrong, starting with the parameter at fault")


class ErrorResponse(BaseModel):
    error: ErrorBody


def _param(name: str, description: str, schema: dict, required: bool = False, example=None, **extra) -> dict:
    p = {"name": name, "in": "query", "required": required, "description": description, "schema": schema}
    if example is not None:
        p["example"] = example
    return {**p, **extra}


PARAMETER_DOCS = [
    _param("from", "First local date of the range (the objects' mall time zone), included.",
           {"type": "string", "format": "date"}, True, "2016-02-01"),
    _param("to", "Last local date of the range, included; not before `from`.",
           {"type": "string", "format": "date"}, True, "2016-02-14"),
    _param("objects", f"Comma-separated object ids, all of one type (only malls, only floors or only "
           f"zones); at most {MAX_OBJECTS}. A repeated id is reported once.",
           {"type": "array", "items": {"type": "integer"}}, True, [215, 1290], style="form", explode=False),
    _param("interval", "Bucket size. `weekly`: ISO weeks (Monday label); `weekday`: Monday 00:00 – "
           "Saturday 00:00 (Monday label); `weekend`: Saturday 00:00 – Monday 00:00 (Saturday label). "
           "A bucket is reported whole even when the range covers part of it.",
           {"type": "string", "enum": list(INTERVALS)}, True, "monthly"),
    _param("comeback", "Comeback window for `count_comeback_client`.",
           {"type": "string", "enum": list(COMEBACK_COLUMNS), "default": REPORT_DEFAULTS["comeback"]}),
    _param("bounce_threshold", "Visitors staying less are *bounced*.",
           {"type": "string", "enum": list(THRESHOLD_VALUES), "default": REPORT_DEFAULTS["bounce_threshold"]}),
    _param("engagement_threshold", "Visitors staying at least this long are *engaged*; must be "
           "at least `bounce_threshold`.",
           {"type": "string", "enum": list(THRESHOLD_VALUES), "default": REPORT_DEFAULTS["engagement_threshold"]}),
]

#: The original page's example numbers (its first bucket), per user type.
_EXAMPLE = {"all": (8495, 6689, 16, 1823, 81725.23), "bounced": (780, 741, 2, 131, 861.73),
            "employee": (364, 81, 139, 64, 7512.91), "engaged": (646, 619, 39, 124, 10543.38),
            "half engaged": (784, 756, 11, 133, 7129.75), "passer": (5706, 4669, 12, 1163, 15850.35),
            "visitor": (2210, 2020, 16, 339, 30597.28)}


def _example_row(user_type: str) -> dict:
    n, c, avg, back, hours = _EXAMPLE[user_type]
    return {"datetime": "2016-02-01T00:00:00Z", "count_session": n, "count_client": c,
            "avg_session_duration": avg, "count_comeback_client": back, "sum_session_duration": hours,
            "user_type": user_type}


def _error_doc(status: int, title: str) -> dict:
    codes = ERROR_CODES[status]
    text = title + ". `error.code` is one of: " + "; ".join(f"`{c}` ({d})" for c, d in codes.items())
    first = next(iter(codes))
    return {"model": ErrorResponse, "description": text,
            "content": {"application/json": {"example": {"error": {"code": first, "message": "…"}}}}}


RESPONSE_DOCS = {
    200: {"description": "One key per requested object id (as text, in request order); under "
                         "it one list per user type in the order " + ", ".join(USER_TYPES) +
                         "; one row per bucket overlapping the range, zeros where there was no session.",
          "content": {"application/json": {"example": {"1290": {
              t: [_example_row(t)] for t in USER_TYPES}}}}},
    400: _error_doc(400, "A missing or invalid parameter"),
    401: _error_doc(401, "A missing or unknown token"),
    403: _error_doc(403, "The token may not see an object"),
    503: _error_doc(503, "The data cannot be read"),
}


# ---------------------------------------------------------------------------- the app

def error_response(status: int, code: str, message: str) -> JSONResponse:
    """SPEC §10's error body."""
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def warm_up(gold: Gold, cfg: Config) -> int:
    """Answer one report per interval of gold and return how many were answered.

    Run before the server takes requests, so that the first ones cost what later ones
    do: it opens gold's log, loads polars' Parquet reader and the joins, time zones and
    bucket grids an answer uses, and reads each partition's file footer. Each report
    asks for the zones of every mall (at most 10 per mall) over the last year of data
    (the last month for hourly). Gold not built yet is no error: the first request
    then opens it.
    """
    try:
        latest = gold.snapshot().latest_dates()
    except GoldUnavailable as exc:
        log.warning("warm-up skipped: %s", exc.message())
        return 0
    zones: list = []
    for mall in cfg.malls:
        zones += [o for o in cfg.objects if o.mall_id == mall.id and o.type == "zone"][:10]
    answered = 0
    for interval in INTERVALS:
        dates = [d for (m, i), d in latest.items() if i == interval]
        if dates and zones:
            last = max(dates)
            first = last - dt.timedelta(days=30 if interval == "hourly" else 365)
            while bucket_count(interval, first, last) * len(zones) > MAX_OBJECT_BUCKETS:
                first += dt.timedelta(days=7)
            req = ReportRequest(tuple(o.id for o in zones), interval, first, last)
            report(gold, cfg, zones, req).json_bytes()
            answered += 1
    return answered


def create_app(conf_dir: str | os.PathLike = "conf", lakehouse: str | None = None, *,
               refresh_seconds: float = 2.0, warm: bool = True) -> FastAPI:
    """The API over ``conf_dir`` (objects, tokens) and the gold table under ``lakehouse``
    (default: the config's storage.yaml). Raises ConfigError for a bad config or tokens.yaml.

    :param warm: answer :func:`warm_up`'s reports before taking requests.
    """
    cfg = load_config(conf_dir).with_storage(lakehouse=lakehouse)
    tokens = TokenStore(Path(cfg.conf_dir) / TOKENS_FILE, cfg)
    gold = Gold(cfg.storage.lakehouse, refresh_seconds=refresh_seconds,
                storage_options=cfg.storage.delta_rs_options)
    if any(t.sha256 == digest(DEV_TOKEN) for t in tokens.tokens()):
        log.warning("%s/%s holds the documented development token: remove it before real use",
                    cfg.conf_dir, TOKENS_FILE)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        if warm:
            started = time.perf_counter()
            try:
                n = warm_up(gold, cfg)
                # And the HTTP side once (routing, the token check, an error answer, the
                # thread pool that runs the handlers), in process.
                async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                             base_url="http://warm-up") as client:
                    await client.get("/health")
                    await client.get("/reports/group_datetime")
                log.info("warmed up: %d reports in %.0f ms", n, (time.perf_counter() - started) * 1000)
            except Exception:  # noqa: BLE001 -- a request would meet the same error: serve anyway
                log.exception("warm-up failed; the server starts without it")
        yield

    app = FastAPI(
        lifespan=lifespan,
        title="Footfall report API",
        version="1.0",
        description="Footfall metrics per object and time bucket, read from the gold table "
                    "`group_datetime`. Send the token in the `x-token` header.",
    )
    app.state.config, app.state.gold, app.state.tokens = cfg, gold, tokens
    x_token = APIKeyHeader(name="x-token", auto_error=False,
                           description="An API token (`python -m reports token create`).")

    @app.exception_handler(ReportError)
    async def _report_error(_: Request, exc: ReportError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message())

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        # Parameters are parsed by reports.params; FastAPI validates only what it declares.
        first = exc.errors()[0] if exc.errors() else {"loc": ("request",), "msg": "invalid"}
        return error_response(400, "invalid_parameter", f"{first['loc'][-1]}: {first['msg']}")

    @app.exception_handler(Exception)
    async def _internal_error(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return error_response(500, "internal_error", "unexpected error; see the server log")

    @app.get("/reports/group_datetime", response_model=dict[str, ObjectReport],
             responses={k: v for k, v in RESPONSE_DOCS.items() if k != 200},
             openapi_extra={"parameters": PARAMETER_DOCS,
                            "responses": {"200": RESPONSE_DOCS[200]}},
             summary="Grouped dynamics of the metrics over time",
             description="The metrics of each requested object per time bucket and user type "
                         "(SPEC §10). `from` and `to` are local dates of the objects' mall.")
    def group_datetime(request: Request, token: str | None = Security(x_token)) -> Response:
        started = time.perf_counter()
        if not token:
            raise ReportError(401, "missing_token", "x-token",
                              "missing; send an API token in the x-token header")
        holder = tokens.find(token)
        if holder is None:
            raise ReportError(401, "invalid_token", "x-token", "not a known token")
        query: dict[str, list[str]] = {}
        for name, value in request.query_params.multi_items():
            query.setdefault(name, []).append(value)
        req = parse(query)
        objs = resolve_objects(cfg, req)
        for o in objs:
            if o.mall_id not in holder.malls:
                raise ReportError(403, "forbidden_object", "objects",
                                  f"this token may not see object {o.id} (mall {o.mall_id})")
        body = report(gold, cfg, objs, req).json_bytes()
        # The server's own share of the latency (the rest is the network and the client).
        timing = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
        return Response(body, media_type="application/json", headers={"Server-Timing": timing})

    @app.get("/health", include_in_schema=False)
    def health() -> dict:
        return {"status": "ok"}

    return app


def app_from_env() -> FastAPI:
    """The app for ``uvicorn --factory reports.api:app_from_env``: config folder,
    lakehouse and refresh interval from ``FOOTFALL_CONF`` (default ``conf``),
    ``FOOTFALL_LAKEHOUSE``, ``FOOTFALL_REFRESH_SECONDS`` (default 2) and
    ``FOOTFALL_WARM_UP`` (``0``: no warm-up)."""
    return create_app(os.environ.get(ENV_CONF, "conf"), os.environ.get(ENV_LAKEHOUSE) or None,
                      refresh_seconds=float(os.environ.get(ENV_REFRESH) or 2.0),
                      warm=os.environ.get(ENV_WARM_UP, "1") != "0")
