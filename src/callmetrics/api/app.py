"""The ASGI application: ``GET /v1/metrics``, ``/healthz``, ``/openapi.json``, ``/docs``.

The contract is ``../shared/spec/api.md``. FastAPI (on Starlette) gives the OpenAPI document
and interactive docs from the same declarations the routes use; the parameter checks are our
own (``params.py``), so that an unknown name, a repeated one or a bad value is a ``400`` with
one sentence, in the order a caller should fix them: key (401), parameters (400), warehouse
(503), scope (404). Every error, including a path or method the API does not have and our own
bugs (500, traceback only in the server's log), is ``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

import hashlib
import logging
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from callmetrics.api.keys import ApiKey, KeyRing, KeysUnreadable
from callmetrics.api.params import PARAMETERS, REQUIRED, MetricsRequest, ParamError, parse_query
from callmetrics.api.pool import Generation, Unavailable, WarehousePool
from callmetrics.api.scoping import NotFound, authorize
from callmetrics.exporter.meta import MetricsAnswer
from callmetrics.exporter.timerange import iso
from callmetrics.settings import DEFAULT_API_CACHE_MB, DEFAULT_API_POOL_SIZE, Settings

log = logging.getLogger("callmetrics.api")
access_log = logging.getLogger("callmetrics.api.access")

NOT_FOUND_MESSAGE = (
    "not found: no organization or reseller with that id is visible to this key"
)
REALM = 'Bearer realm="callmetrics"'
# Declared for the OpenAPI document; the key itself is checked in the route.
_BEARER = HTTPBearer(auto_error=False, description="A key from `callmetrics keys create`.")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]


@dataclass(frozen=True)
class ApiSettings:
    warehouse: Path
    keys: Path
    pool_size: int = DEFAULT_API_POOL_SIZE
    cache_mb: int = DEFAULT_API_CACHE_MB

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiSettings:
        return cls(warehouse=settings.warehouse, keys=settings.keys,
                   pool_size=settings.api_pool_size, cache_mb=settings.api_cache_mb)

    @classmethod
    def from_env(cls) -> ApiSettings:
        return cls.from_settings(Settings.from_env())


# ------------------------------------------------------------------ bodies (for the docs)

class ErrorDetail(BaseModel):
    code: Literal[
        "invalid_parameter", "unauthorized", "not_found", "method_not_allowed",
        "unavailable", "internal",
    ]
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


class Health(BaseModel):
    status: Literal["ok"]
    warehouseVersion: str  # noqa: N815 (the JSON name)


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": {"code": code, "message": message}}, status, headers=headers)


def _unauthorized(message: str, presented: bool) -> Response:
    challenge = REALM + (', error="invalid_token"' if presented else "")
    return error(401, "unauthorized", message, {"WWW-Authenticate": challenge})


def _unavailable(exc: Unavailable) -> Response:
    log.warning("503: %s", exc)
    return error(
        503, "unavailable",
        "no warehouse version is published yet: try again after the nightly build "
        "(`callmetrics build`) has published one",
        {"Retry-After": "60"},
    )


def _etag(generation: Generation, query: MetricsRequest, organization_id: str | None,
          reseller_id: str | None) -> str:
    """The answer's identity: the version file, the resolved range and scope, the options."""
    time_range = query.time_range
    text = "\x1f".join(map(str, (
        generation.key, generation.facts.version, iso(time_range.start), iso(time_range.end),
        time_range.first_date, time_range.last_date, organization_id, reseller_id,
        query.time_zone, query.granularity, query.compare,
    )))
    return '"' + hashlib.sha256(text.encode("utf-8")).hexdigest()[:32] + '"'


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == etag:
            return True
    return False


# ------------------------------------------------------------------ access log

class AccessLog:
    """One line per request: method, path, status, duration, key id. Never a secret (the
    query string and headers are not logged)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            path = scope.get("path", "")
            path = path.encode("unicode_escape").decode("ascii")
            if len(path) > 200:
                path = path[:200] + "..."
            key_id = scope.get("state", {}).get("key_id", "-")
            access_log.info("%s %s %d %.1fms key=%s", scope.get("method", "-"), path, status,
                            (time.perf_counter() - started) * 1000, key_id)


def _configure_logging() -> None:
    root = logging.getLogger("callmetrics")
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        root.propagate = False


# ------------------------------------------------------------------ the application

_ERRORS = {
    400: ("invalid_parameter", "A missing or malformed date, a start after the end, a "
          "timeZone, granularity or compare value not served, or an unknown or repeated "
          "parameter."),
    401: ("unauthorized", "No key, or a malformed, unknown or revoked key. Carries "
          "`WWW-Authenticate: Bearer`."),
    404: ("not_found", "An unknown id, or one outside the key's scope: the same body for both."),
    503: ("unavailable", "No warehouse version is published yet (or the server cannot read "
          "its keys file)."),
    500: ("internal", "A bug: logged with its traceback on the server, never sent."),
}


def _error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        s: {"model": ErrorBody, "description": f"`{_ERRORS[s][0]}`: {_ERRORS[s][1]}"}
        for s in statuses
    }


def _parameter_docs() -> list[dict[str, Any]]:
    return [
        {"name": name, "in": "query", "required": name in REQUIRED, "description": text,
         "schema": {"type": "string"}}
        for name, text in PARAMETERS.items()
    ]


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    """The application on ``settings`` (default: from the environment)."""
    settings = settings or ApiSettings.from_env()
    _configure_logging()
    pool = WarehousePool(settings.warehouse, settings.pool_size,
                         cache_bytes=settings.cache_mb * 1024 * 1024)
    keys = KeyRing(settings.keys)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        log.info("serving %s with keys from %s", settings.warehouse, settings.keys)
        yield
        pool.close()
        log.info("stopped")

    app = FastAPIOffline(
        title="callmetrics",
        version="1",
        description=(
            "The Get Metrics report of the voice-AI agent platform, served from the published "
            "warehouse. Every `/v1/` request carries `Authorization: Bearer <key>` (keys: "
            "`callmetrics keys create`). Errors are `{\"error\": {\"code\", \"message\"}}`."
        ),
        redoc_url=None,
        lifespan=lifespan,
    )
    app.add_middleware(AccessLog)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return error(404, "not_found", "no such path: the API serves GET /v1/metrics, "
                         "GET /healthz, GET /openapi.json and GET /docs")
        if exc.status_code == 405:
            return error(405, "method_not_allowed",
                         f"{request.method[:20]} is not allowed on this path: use GET",
                         {"Allow": "GET"})
        return error(exc.status_code, "invalid_parameter" if exc.status_code == 400
                     else "internal", str(exc.detail)[:200])

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        return error(400, "invalid_parameter", "the request is malformed: see /docs")

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> Response:
        # Starlette logs the traceback on the server after this response is sent.
        return error(500, "internal", "internal error: it is logged on the server; "
                     "please report it")

    def _key(request: Request, credentials: HTTPAuthorizationCredentials | None) -> ApiKey | None:
        if credentials is None:
            return None
        key = keys.authenticate(credentials.credentials.strip())
        if key is not None:
            request.state.key_id = key.id
        return key

    @app.get(
        "/v1/metrics",
        summary="Get Metrics: the payload for a range and a scope",
        response_model=None,
        responses={
            200: {"model": MetricsAnswer,
                  "description": "`data` is the payload of metrics.md (what `callmetrics "
                  "export` prints for the same request), `meta` what was answered.",
                  "headers": {"ETag": {"description": "changes when the answer can change",
                                       "schema": {"type": "string"}}}},
            304: {"description": "Not modified: the `If-None-Match` ETag is still current."},
            **_error_responses(400, 401, 404, 503, 500),
        },
        openapi_extra={"parameters": _parameter_docs()},
    )
    def metrics(
        request: Request,
        credentials: Credentials,
    ) -> Response:
        if not request.headers.get("authorization"):
            return _unauthorized("no key: send `Authorization: Bearer <key>`", False)
        try:
            key = _key(request, credentials)
        except KeysUnreadable as exc:
            log.error("cannot check keys: %s", exc)
            return error(503, "unavailable", "the server cannot read its keys file: "
                         "try again later", {"Retry-After": "60"})
        if key is None:
            return _unauthorized("the key is malformed, unknown or revoked", True)
        try:
            query = parse_query(request.query_params.multi_items())
        except ParamError as exc:
            return error(400, "invalid_parameter", str(exc))
        try:
            with pool.exporter() as (exporter, generation):
                try:
                    organization_id, reseller_id = authorize(
                        key, exporter, query.organization_id, query.reseller_id)
                except NotFound:
                    return error(404, "not_found", NOT_FOUND_MESSAGE)
                etag = _etag(generation, query, organization_id, reseller_id)
                headers = {"ETag": etag, "Cache-Control": "private, no-cache",
                           "Vary": "Authorization"}
                if _matches(request.headers.get("if-none-match"), etag):
                    return Response(status_code=304, headers=headers)
                body = generation.cache.get_or_compute(etag, lambda: exporter.answer(
                    query.request or query.time_range, organization_id, reseller_id,
                ).to_json(indent=None).encode("utf-8"))
        except Unavailable as exc:
            return _unavailable(exc)
        return Response(body, media_type="application/json", headers=headers)

    @app.get(
        "/healthz",
        summary="Liveness and the warehouse version served (no key)",
        response_model=Health,
        responses=_error_responses(503),
    )
    def healthz() -> Response:
        try:
            facts = pool.facts()
        except Unavailable as exc:
            return _unavailable(exc)
        return JSONResponse({"status": "ok", "warehouseVersion": facts.version})

    return app
