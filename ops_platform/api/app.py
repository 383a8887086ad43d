"""The Starlette app of `ops api`: GET /healthz, the inbound webhooks (inbound.PROVIDERS) and the manual
triggers (triggers.TRIGGERS). Answers are JSON; a refusal says what was wrong, never a secret.

| answer | when |
|---|---|
| 200 {"status": "accepted", "event_id"} | a verified webhook, written to the events outbox |
| 200 {"status": "duplicate", "event_id"} | a verified webhook the provider had sent before: nothing written |
| 202 {"run_id", "job", "partition"} | a trigger launched its Dagster run |
| 400 | unreadable body, a missing event id, a date or hour that is no partition |
| 401 | signature, token or timestamp refused (a replay outside the window is refused here) |
| 404 | unknown campaign (snapshot trigger) |
| 413 | body over 1 MiB |
| 502 | Dagster did not launch the run (its reason is in the answer) |
| 503 | the provider's secret or the trigger token is not configured; Goodera's introspection unreachable; Postgres down |
"""

from __future__ import annotations

import hmac
import json
import logging
from contextlib import asynccontextmanager

import httpx
import uvicorn
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ops_platform.api import inbound
from ops_platform.api.settings import ApiSettings
from ops_platform.api.signatures import ProviderUnavailable, Refused
from ops_platform.api.triggers import TRIGGERS, BadTrigger, LaunchFailed, Trigger, launch, now_utc
from ops_platform.resources.postgres import DatabaseUnavailable, PostgresResource

MAX_BODY = 1 << 20  # 1 MiB: every provider's event is far smaller
log = logging.getLogger("ops_platform.api")


def create_app(postgres: PostgresResource, settings: ApiSettings) -> Starlette:
    """The app over `postgres` (the operational database), with the secrets and URLs of `settings`."""
    http = httpx.Client()

    async def healthz(request: Request) -> JSONResponse:
        """Readiness: the operational database answers."""
        try:
            await run_in_threadpool(_ping, postgres)
        except DatabaseUnavailable as err:
            return _error(503, str(err))
        return JSONResponse({"status": "ok"})

    def webhook(parse):
        async def receive(request: Request) -> JSONResponse:
            body = await request.body()  # over MAX_BODY: Starlette answers 413
            url = _public_url(request, settings.public_url)
            req = inbound.Request(body=body, headers=dict(request.headers), url=url, http=http)
            try:
                event = await run_in_threadpool(parse, settings, req)
                written = await run_in_threadpool(inbound.write_once, postgres, event)
            except Refused as err:
                log.warning("webhook %s refused (%s): %s", request.url.path, err.status, err)
                return _error(err.status, str(err))
            except (ProviderUnavailable, DatabaseUnavailable) as err:
                return _error(503, str(err))
            return JSONResponse({"status": "duplicate" if written.duplicate else "accepted",
                                 "event_id": written.outbox_id, "name": event.name})
        return receive

    def trigger(spec: Trigger):
        async def run(request: Request) -> JSONResponse:
            secret = settings.api_token if spec.secret == "api" else settings.cron_secret
            if not secret:
                variable = "OPS_API_TOKEN" if spec.secret == "api" else "CRON_SECRET"
                return _error(503, f"{variable} is not set: this trigger is off until it is")
            if not _bearer_ok(request.headers.get("authorization"), secret):
                return _error(401, "Authorization: Bearer <token> missing or wrong",
                              headers={"WWW-Authenticate": "Bearer"})
            body = await request.body()
            try:
                params = json.loads(body) if body.strip() else {}
            except ValueError:
                return _error(400, "the body must be a JSON object (or empty)")
            if not isinstance(params, dict):
                return _error(400, "the body must be a JSON object (or empty)")
            try:
                planned = await run_in_threadpool(spec.plan, dict(request.path_params), params, postgres, now_utc())
                run_id = await run_in_threadpool(launch, settings.dagster_url, planned, request.url.path)
            except BadTrigger as err:
                return _error(err.status, str(err))
            except DatabaseUnavailable as err:
                return _error(503, str(err))
            except LaunchFailed as err:
                return _error(502, str(err))
            log.info("trigger %s launched %s run %s", request.url.path, planned.job, run_id)
            return JSONResponse({"run_id": run_id, "job": planned.job, "partition": planned.partition}, status_code=202)
        return run

    routes = [Route("/healthz", healthz, methods=["GET"])]
    routes += [Route(path, webhook(parse), methods=["POST"]) for path, parse in inbound.PROVIDERS.items()]
    routes += [Route(spec.path, trigger(spec), methods=["POST"]) for spec in TRIGGERS]

    @asynccontextmanager
    async def lifespan(app: Starlette):
        yield
        http.close()

    return Starlette(routes=routes, lifespan=lifespan, max_body_size=MAX_BODY)


def serve(postgres: PostgresResource, settings: ApiSettings, host: str, port: int) -> None:
    """Run the app with uvicorn until Ctrl-C / SIGTERM (uvicorn stops gracefully on both)."""
    uvicorn.run(create_app(postgres, settings), host=host, port=port, log_level="info", proxy_headers=False)


def _ping(postgres: PostgresResource) -> None:
    with postgres.begin() as conn:
        conn.execute(text("SELECT 1"))


def _public_url(request: Request, public_url: str | None) -> str:
    """The URL the provider called and signed (Twilio): OPS_API_PUBLIC_URL + path and query behind a proxy."""
    if not public_url:
        return str(request.url)
    query = f"?{request.url.query}" if request.url.query else ""
    return public_url.rstrip("/") + request.url.path + query


def _bearer_ok(authorization: str | None, secret: str) -> bool:
    scheme, _, token = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), secret.encode())


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)
