"""The FastAPI app: OpenAI-compatible routes, task routes, drawings, the playground, typed 4xx errors.

`create_app(model, config)` wires a loaded model (anything with the `NatureLM.generate` contract and its
task methods) behind one dynamic batcher. Every failure a client can cause is a JSON 4xx that names it;
anything else is a 500 whose body carries a request id that the server log repeats with the traceback.
A server bound to loopback answers only requests whose Host header names it (no DNS rebinding).
"""
from __future__ import annotations

import hmac
import logging
import random
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from naturelm.errors import ApiError, EntityError, NatureLMError, TagError
from naturelm.generate.cancel import BudgetExceeded, time_budgets
from naturelm.serve import draw, openai_routes, task_routes
from naturelm.serve.batching import Batcher, ClientGone, GenerationTimeout, QueueFull
from naturelm.serve.workers import ProcessWorkers, WorkFailed, WorkTimeout

STATIC = Path(__file__).parent / "static"
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
log = logging.getLogger("naturelm.serve")


@dataclass
class ServeConfig:
    """Server limits and batching knobs (all configurable from `naturelm serve`)."""

    model_name: str = "naturelm"
    api_key: str | None = None
    max_body_bytes: int = 1_000_000
    max_new_tokens: int = 512  # the largest max_tokens a request may ask for
    default_new_tokens: int = 128  # completions without max_tokens (capped at max_new_tokens)
    task_new_tokens: int = 256  # task requests without max_new_tokens (capped at max_new_tokens)
    max_entity_chars: int = 4096  # longest SMILES / sequence / prompt accepted (characters; lists: in total)
    max_n: int = 16  # most candidates (n, k, beams) per request
    max_request_cost: int | None = None  # prompts x candidates x new tokens per request (None: max_n x max_new_tokens)
    max_queued_cost: int | None = None  # the same, summed over everything queued or running (None: 32 requests' worth)
    max_ranked_chars: int = 256  # longest product that ranked retrosynthesis (RetroSim) takes
    max_draw_atoms: int = 250  # molecules drawn up to this many atoms (RDKit drawing time grows fast with size)
    draw_cache_bytes: int = 32_000_000  # drawings kept in memory (bytes of SVG)
    draw_budget_s: float = 10.0  # each RDKit drawing (a killable worker process; 408 after)
    draw_workers: int = 2  # drawings at a time (worker processes)
    opsin_budget_s: float = 30.0  # each OPSIN run (naming checks; the JVM is killed after, 408)
    retrosim_budget_s: float = 30.0  # each product's RetroSim / forward-template ranking (cooperative stop, 408)
    allowed_hosts: tuple[str, ...] | None = None  # Host header values answered (None: any)
    max_batch: int = 32
    max_wait_ms: float = 5.0
    max_queue: int = 1024
    timeout_s: float = 120.0

    @property
    def request_cost_limit(self) -> int:
        return self.max_request_cost or self.max_n * self.max_new_tokens

    @property
    def queued_cost_limit(self) -> int:
        return self.max_queued_cost or 32 * self.request_cost_limit


def error_body(status: int, message: str, param: str | None = None, code: str | None = None, **extra) -> dict:
    """The OpenAI error shape: {"error": {"message", "type", "param", "code"}}."""
    kind = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
            408: "timeout_error", 413: "request_too_large", 422: "invalid_request_error",
            429: "rate_limit_error"}.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": code, **extra}}


def _json_error(status: int, message: str, **kw) -> JSONResponse:
    return JSONResponse(error_body(status, message, **kw), status_code=status)


class BodyLimit:
    """ASGI middleware: reject bodies over `limit` bytes with 413 before the app reads them."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        too_big = _json_error(413, f"request body exceeds the limit of {self.limit} bytes (--max-body-bytes)",
                              code="body_too_large")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await too_big(scope, receive, send)
        chunks, size = [], 0
        while True:  # read the whole (bounded) body, then replay it to the app
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                return await too_big(scope, receive, send)
            if not message.get("more_body"):
                break
        body, sent = b"".join(chunks), False

        async def replay():
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        return await self.app(scope, replay, send)


def _validation_message(exc: RequestValidationError) -> tuple[int, str, str | None]:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        ctx = errors[0].get("ctx", {})
        return 400, f"malformed JSON body: {ctx.get('error', 'cannot parse')}", None
    parts, param = [], None
    for e in errors:
        loc = [str(x) for x in e.get("loc", ()) if x != "body"]
        param = param or ".".join(loc) or None
        parts.append(f"{'.'.join(loc) or 'body'}: {e.get('msg', 'invalid')}")
    return 422, "; ".join(parts), param


def _host_name(header: str) -> str:
    """The host of a Host header value, without port or IPv6 brackets, lower-cased."""
    host = header.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class Guard:
    """ASGI middleware around everything: a request id on every response, the Host check, and a logged 500
    with that id (never the exception's text) for any failure no handler answered."""

    def __init__(self, app, allowed_hosts: tuple[str, ...] | None):
        self.app = app
        self.allowed = None if allowed_hosts is None else {_host_name(h) for h in allowed_hosts}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request_id = uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = request_id
        started = False

        async def send_with_id(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message = {**message, "headers": [*message.get("headers", []), (b"x-request-id", request_id.encode())]}
            await send(message)

        if self.allowed is not None:
            host = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
            if _host_name(host) not in self.allowed:
                return await _json_error(400, f"Host {host!r} is not served here (--allowed-host)", param="Host",
                                         code="host_not_allowed")(scope, receive, send_with_id)
        try:
            await self.app(scope, receive, send_with_id)
        except Exception:  # noqa: BLE001 - logged with its id; the client gets the id, not the text
            log.exception("request %s %s %s failed", request_id, scope.get("method"), scope.get("path"))
            if not started:
                body = error_body(500, f"internal error; quote request id {request_id} when reporting it",
                                  code="internal_error", request_id=request_id)
                await JSONResponse(body, status_code=500)(scope, receive, send_with_id)


def _install_errors(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api(_: Request, exc: ApiError):
        return _json_error(exc.status, exc.message, param=exc.param, code=exc.code)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError):
        status, message, param = _validation_message(exc)
        return _json_error(status, message, param=param, code="json_invalid" if status == 400 else "invalid_value")

    @app.exception_handler(EntityError)
    async def _entity(_: Request, exc: EntityError):
        return _json_error(422, str(exc), code="invalid_entity", domain=exc.domain, position=exc.position)

    @app.exception_handler(TagError)
    async def _tag(_: Request, exc: TagError):
        return _json_error(422, str(exc), code="invalid_tags", position=exc.position)

    @app.exception_handler(BudgetExceeded)
    async def _budget(_: Request, exc: BudgetExceeded):
        return _json_error(408, str(exc), code="budget_exceeded")

    @app.exception_handler(WorkTimeout)
    async def _work_timeout(_: Request, exc: WorkTimeout):
        return _json_error(408, str(exc), code="budget_exceeded")

    @app.exception_handler(WorkFailed)
    async def _work_failed(_: Request, exc: WorkFailed):
        return _json_error(422, str(exc), code="drawing_failed")

    @app.exception_handler(NatureLMError)
    async def _naturelm(_: Request, exc: NatureLMError):
        return _json_error(422, str(exc), code=type(exc).__name__)

    @app.exception_handler(QueueFull)
    async def _busy(_: Request, exc: QueueFull):
        return _json_error(429, str(exc), code="queue_full")

    @app.exception_handler(GenerationTimeout)
    async def _timeout(_: Request, exc: GenerationTimeout):
        return _json_error(408, f"{exc} (--timeout); it was cancelled. Ask for fewer tokens or candidates",
                           code="timeout")

    @app.exception_handler(ClientGone)
    async def _gone(_: Request, exc: ClientGone):
        return _json_error(408, str(exc), code="client_disconnected")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        message = f"no route {request.method} {request.url.path}" if exc.status_code == 404 else str(exc.detail)
        return _json_error(exc.status_code, message)


def _install_auth(app: FastAPI, api_key: str) -> None:
    expected = f"Bearer {api_key}".encode()

    @app.middleware("http")
    async def _auth(request: Request, call_next):
        if request.url.path.startswith("/v1/"):
            given = request.headers.get("authorization", "").encode("latin-1")
            if not hmac.compare_digest(given, expected):
                return _json_error(401, "missing or wrong API key: send 'Authorization: Bearer KEY' (--api-key)",
                                   code="invalid_api_key")
        return await call_next(request)


def _batch_handler(model, config: ServeConfig):
    """Worker-thread side of the batcher: one `model.generate` call for all prompts sharing the same settings
    (key `("generate", settings[, request id])`), or the calls of one task (key `("task", name, count, gen)`),
    with the tools' time budgets (OPSIN, RetroSim / forward templates). Unseeded batches draw a fresh seed, so
    repeated requests get new samples."""

    def handle(key, payloads):
        if key[0] == "task":
            with time_budgets(opsin=config.opsin_budget_s, retrosim=config.retrosim_budget_s,
                              templates=config.retrosim_budget_s):
                return task_routes.run_batch(model, key, payloads)
        settings = dict(key[1])
        settings.setdefault("seed", random.randrange(2**31))
        return model.generate(payloads, batch_size=len(payloads), **settings)  # the whole batch in one pass

    return handle


def create_app(model, config: ServeConfig | None = None) -> FastAPI:
    """The server for a loaded model (NatureLM or any object with its `generate` contract and task methods)."""
    from naturelm.serve.schema import ERROR_RESPONSES

    config = config or ServeConfig()
    batcher = Batcher(_batch_handler(model, config), max_batch=config.max_batch, max_wait_ms=config.max_wait_ms,
                      max_queue=config.max_queue, timeout_s=config.timeout_s,
                      max_queued_cost=config.queued_cost_limit)

    drawers = ProcessWorkers(config.draw_workers, preload=("naturelm.serve.draw", "rdkit.Chem.Draw.rdMolDraw2D"))

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        await batcher.start()
        await drawers.start()
        yield
        await drawers.stop()
        await batcher.stop()

    app = FastAPI(title="NatureLM", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="OpenAI-compatible completions, structured task endpoints and a playground. "
                              "Browse the endpoints at /docs (offline page) or fetch /openapi.json. "
                              "Every error is `{\"error\": {\"message\", \"type\", \"param\", \"code\"}}`.")
    app.state.model, app.state.config, app.state.batcher = model, config, batcher
    app.state.started = time.time()
    app.state.drawings = draw.DrawCache(config.draw_cache_bytes)
    app.state.draw_workers = drawers
    _install_errors(app)
    if config.api_key:
        _install_auth(app, config.api_key)
    app.add_middleware(BodyLimit, limit=config.max_body_bytes)
    app.add_middleware(Guard, allowed_hosts=config.allowed_hosts)
    for router in (openai_routes.router, task_routes.router, draw.router):
        app.include_router(router, responses=ERROR_RESPONSES)

    @app.get("/health", tags=["server"], responses={400: ERROR_RESPONSES[400], 500: ERROR_RESPONSES[500]})
    async def health() -> dict:
        """Liveness, the model served and what decodes with it, limits and batching counters."""
        limits = {k: v for k, v in asdict(config).items() if k not in ("api_key", "model_name")}
        return {"status": "ok", "model": config.model_name, "decoding": model.decoding,
                "auth": bool(config.api_key),
                "uptime_s": round(time.time() - app.state.started, 1), "limits": limits,
                "batching": batcher.stats.as_dict(), "drawings_stopped": drawers.killed, "tasks": sorted(task_routes.TASKS)}

    @app.get("/", include_in_schema=False)
    async def playground():
        return FileResponse(STATIC / "index.html")

    @app.get("/docs", include_in_schema=False)
    async def docs():
        return FileResponse(STATIC / "docs.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
