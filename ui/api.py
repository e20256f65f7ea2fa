"""The hosted, multi-tenant API: ``/v1/ask`` (JSON or SSE), ``/v1/search``, health, OpenAPI docs."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.responses import Response

from assistant._types import Answer, Citation
from assistant._types import Request as AskRequest
from assistant.guards import RequestRejected
from assistant.pipeline import Pipeline
from assistant.services import IndexMismatch, Services
from assistant.settings import Settings, get_settings
from assistant.tenants import UnknownTenant
from retrieval._types import Language, Passage, SearchFilters

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).resolve().parent / "static"
#: a request body larger than this is refused before it is parsed (a question is at most a few KB)
MAX_BODY_BYTES = 256 * 1024


class AskBody(BaseModel):
    question: str = Field(
        description="The citizen's question, Japanese or English.", examples=["出生届はどこに出しますか"]
    )
    tenant: str = Field(description="Tenant id (municipality).", examples=["hakodate"])
    stream: bool = Field(False, description="Answer as server-sent events (meta, delta, done).")
    language: Language | None = Field(None, description="Answer language; detected from the question if omitted.")
    k: int = Field(5, ge=1, le=20, description="Passages to retrieve.")
    conversation: str | None = Field(None, max_length=128)


class AskResponse(BaseModel):
    answer: str
    citations: list[Citation]
    refused: bool
    language: Language
    mode: str
    notices: list[str]
    conversation: str
    agent: str


class SearchResponse(BaseModel):
    query: str
    tenant: str
    mode: str
    results: list[Passage] = Field(description="Passages; `payload` only when asked for.")


class ErrorBody(BaseModel):
    error: str
    detail: Any = None


def error(status: int, message: str, detail: Any = None) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": message, "detail": detail})


class BodyLimit(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > MAX_BODY_BYTES:
            return error(413, f"request body is {length} bytes; the limit is {MAX_BODY_BYTES}")
        return await call_next(request)


def create_app(
    settings: Settings | None = None, *, services: Services | None = None, pipeline: Pipeline | None = None
) -> FastAPI:
    """The app; ``services`` or a ready ``pipeline`` replace the ones built from settings (tests, embedding)."""
    settings = settings or get_settings()
    state: dict[str, Any] = {"pipeline": pipeline} if pipeline is not None else {}
    lock = threading.Lock()

    def get_pipeline() -> Pipeline:
        # built on first use (and at start-up): loading the index and the embedder takes seconds
        with lock:
            if "pipeline" not in state:
                state["pipeline"] = Pipeline(services or Services(settings=settings))
            return state["pipeline"]  # type: ignore[no-any-return]

    async def ready_pipeline() -> Pipeline:
        # after start-up the pipeline exists: no thread hop on the hot path
        ready = state.get("pipeline")
        return ready if ready is not None else await run_in_threadpool(get_pipeline)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            await run_in_threadpool(get_pipeline)
        except Exception:  # readiness reports it; the process stays up for /healthz
            log.exception("pipeline failed to start")
        yield
        if "pipeline" in state:
            state["pipeline"].services.close()

    app = FastAPI(
        title="tosei API",
        version="0.1.0",
        description=(
            "Governed generative-AI assistant for citizens' questions about administrative procedures. "
            "Every answer is written by AI from published sources, cites them, and says so."
        ),
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(BodyLimit)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return error(400, "request body is not valid JSON (UTF-8)", [e.get("msg") for e in errors])
        return error(422, "invalid request", json.loads(json.dumps(errors, default=str)))

    @app.exception_handler(UnicodeDecodeError)
    async def not_utf8(request: Request, exc: UnicodeDecodeError) -> JSONResponse:
        return error(400, "request body is not valid UTF-8")

    @app.exception_handler(RequestRejected)
    async def rejected(request: Request, exc: RequestRejected) -> JSONResponse:
        return error(exc.status, exc.message, {"rule": exc.rule})

    @app.exception_handler(UnknownTenant)
    async def unknown_tenant(request: Request, exc: UnknownTenant) -> JSONResponse:
        return error(404, str(exc))

    @app.exception_handler(IndexMismatch)
    async def mismatch(request: Request, exc: IndexMismatch) -> JSONResponse:
        return error(503, str(exc))

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"], responses={503: {"model": ErrorBody}})
    def readyz() -> JSONResponse:
        """The index is loaded and holds documents: the service can answer."""
        try:
            p = get_pipeline()
            points = p.services.store.count()
        except Exception as exc:
            return error(503, f"not ready: {exc}")
        if points == 0:
            return error(503, "not ready: the index is empty (run `tosei index`)")
        return JSONResponse({"status": "ready", "points": points, "llm": p.services.llm is not None})

    @app.post(
        "/v1/ask",
        tags=["assistant"],
        response_model=AskResponse,
        responses={
            400: {"model": ErrorBody},
            404: {"model": ErrorBody},
            413: {"model": ErrorBody},
            422: {"model": ErrorBody},
        },
    )
    async def ask(body: AskBody) -> Any:
        """Answer a question with cited sources; ``stream: true`` returns server-sent events."""
        request = AskRequest(
            tenant=body.tenant,
            text=body.question,
            channel="api",
            language=body.language,
            k=body.k,
            **({"conversation": body.conversation} if body.conversation else {}),
        )
        p = await ready_pipeline()
        if not body.stream:
            answer: Answer = await run_in_threadpool(p.answer, request)
            return AskResponse(**answer.model_dump(exclude={"decisions"}))
        # run the inbound guard now so bad input is a 4xx, not a broken stream
        events = p.stream(request)
        first = await run_in_threadpool(next, events)

        def sse(items: Iterator[dict[str, Any]]) -> Iterator[str]:
            for event in items:
                if event["type"] == "done":
                    event = {"type": "done", "answer": {k: v for k, v in event["answer"].items() if k != "decisions"}}
                yield f"event: {event['type']}\ndata: {json.dumps(event, ensure_ascii=False)}\n\n"

        def chained() -> Iterator[dict[str, Any]]:
            yield first
            yield from events

        return StreamingResponse(
            iterate_in_threadpool(sse(chained())),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @app.get("/v1/search", tags=["retrieval"], response_model=SearchResponse, responses={404: {"model": ErrorBody}})
    async def search(
        q: Annotated[str, Query(min_length=1, max_length=2000, description="Search text")],
        tenant: Annotated[str, Query(description="Tenant id")],
        k: Annotated[int, Query(ge=1, le=50)] = 5,
        mode: Literal["hybrid", "dense", "sparse"] = "hybrid",
        kind: Annotated[list[str] | None, Query(description="Filter by document kind")] = None,
        source: Annotated[list[str] | None, Query(description="Filter by source id")] = None,
        language: Language | None = None,
        payload: Annotated[bool, Query(description="Include each document's structured fields.")] = False,
    ) -> Any:
        """Hybrid (dense + sparse, RRF) search over the tenant's and the shared documents."""
        p = await ready_pipeline()
        p.services.tenants.get(tenant)
        if not q.strip():
            return error(422, "query is empty")
        filters = SearchFilters(tenant=tenant, kinds=kind, sources=source, language=language)
        results = await run_in_threadpool(lambda: p.services.searcher.search(q, filters, k=k, mode=mode))
        # serialized here, once: the structured fields are large and most callers do not want them
        body = {
            "query": q,
            "tenant": tenant,
            "mode": mode,
            "results": [r.model_dump(exclude=None if payload else {"payload"}) for r in results],
        }
        return JSONResponse(body)

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(_DOCS_PAGE)

    @app.get("/", include_in_schema=False)
    def index() -> HTMLResponse:
        return HTMLResponse((STATIC_DIR / "index.html").read_text(encoding="utf-8"))

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    import swagger_ui_bundle

    app.mount("/swagger", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="swagger")
    return app


# Swagger UI from the swagger-ui-bundle wheel, served locally: the stock page loads it from a CDN,
# which this service's networks cannot reach.
_DOCS_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>tosei API</title>
<link rel="stylesheet" href="/swagger/swagger-ui.css"></head><body><div id="swagger-ui"></div>
<script src="/swagger/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui"});</script></body></html>"""
