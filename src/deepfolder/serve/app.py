"""The FastAPI app: routes, the token check, the security headers and the server.

Safety: the server binds 127.0.0.1 unless told otherwise, and any other host needs a
token (given, or generated and printed) on every request: ``?token=…`` once (it is then
kept in a cookie) or ``Authorization: Bearer …``. Files are served only for an evidence
id of a known run (``evidence.source_file``); no route takes a path. Pages carry no
inline script and the Content-Security-Policy allows only this server's scripts, so
markup inside a report cannot run.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from sse_starlette.sse import EventSourceResponse

from deepfolder.records import Evidence
from deepfolder.report.render import markdown_to_html
from deepfolder.serve import pages
from deepfolder.serve.catalog import Catalog, RunDir, RunFileError, read_jsonl
from deepfolder.serve.evidence import (
    EvidenceFileError,
    evidence_view,
    render_pdf_page,
    source_file,
)
from deepfolder.serve.jobs import JobError, Jobs, progress_events

STATIC = Path(__file__).with_name("static")
TOKEN_COOKIE = "deepfolder_token"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; media-src 'self'; object-src 'none'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'"
)


@dataclass
class ServeConfig:
    roots: list[Path]
    """Directories holding runs and batches (the first also receives new runs)."""
    folders: list[Path] = field(default_factory=list)
    """The input folders a new run may be started on."""
    token: str | None = None
    """Required on every request when set."""
    model: str = ""
    """The model the new-run form suggests."""
    run_args: list[str] = field(default_factory=list)
    """Settings options given to every run started here."""


def new_token() -> str:
    return secrets.token_urlsafe(18)


def create_app(config: ServeConfig) -> FastAPI:
    catalog = Catalog(config.roots)
    runs_root = config.roots[0] if config.roots else Path("runs")
    jobs = Jobs(config.folders, runs_root, config.run_args)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await asyncio.to_thread(jobs.stop_all)  # the server is closing: no run left behind

    app = FastAPI(
        title="deepfolder", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan
    )
    app.state.catalog, app.state.jobs = catalog, jobs
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.middleware("http")
    async def guard(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        token = config.token
        given = request.query_params.get("token")
        if token is not None:
            header = request.headers.get("authorization", "")
            offered = given or request.cookies.get(TOKEN_COOKIE) or header.removeprefix("Bearer ")
            if not hmac.compare_digest(offered.encode(), token.encode()):
                return Response("a valid token is required (?token=…)", status_code=401)
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        if token is not None and given:
            response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
        return response

    def run_of(run_id: str) -> RunDir:
        try:
            return catalog.run(run_id)
        except KeyError:
            raise HTTPException(404, f"no run {run_id}") from None

    def evidence_of(run: RunDir, eid: str) -> Evidence:
        try:
            ev = run.evidence().get(eid)
        except RunFileError as exc:
            raise HTTPException(404, f"{run.path.name}: {exc}") from None
        if ev is None:
            raise HTTPException(404, f"{eid} is not evidence of run {run.path.name}")
        return ev

    @app.get("/", response_class=HTMLResponse)
    def runs() -> str:
        catalog.scan()
        return pages.runs_page(catalog.cards(), list(catalog.batches.values()))

    @app.get("/runs/{run_id}", response_class=HTMLResponse)
    def report(run_id: str) -> HTMLResponse:
        run = run_of(run_id)
        try:
            html = run.text("report.html")
        except RunFileError as first:
            try:
                html = markdown_to_html(
                    run.text("report.md"), title=run.path.name, base_dir=run.path, language="en"
                )
            except RunFileError:
                page = pages.message_page(run.path.name, f"no report to show: {first}")
                return HTMLResponse(page, status_code=404)
        try:
            support = list(run.json("validation.json").get("support") or [])
        except (RunFileError, AttributeError):
            support = []
        return HTMLResponse(pages.report_page(run, html, support))

    @app.get("/runs/{run_id}/checks", response_class=HTMLResponse)
    def checks(run_id: str) -> str:
        return pages.checks_page(run_of(run_id))

    @app.get("/runs/{run_id}/trace", response_class=HTMLResponse)
    def trace(run_id: str) -> HTMLResponse:
        run = run_of(run_id)
        try:
            steps = read_jsonl(run.file("trace.jsonl"))
        except RunFileError as exc:
            return HTMLResponse(pages.message_page(f"{run.path.name} trace", str(exc)), 404)
        try:
            usage = run.json("usage.json")
        except RunFileError:
            usage = None
        return HTMLResponse(pages.trace_page(run, steps, usage))

    @app.get("/api/runs/{run_id}/evidence/{eid}")
    def evidence(run_id: str, eid: str) -> dict[str, Any]:
        run = run_of(run_id)
        ev = evidence_of(run, eid)
        base = f"/api/runs/{run_id}/evidence/{eid}"
        try:
            language = str(run.json("validation.json").get("language") or "en")
        except (RunFileError, AttributeError):
            language = "en"
        return evidence_view(run, ev, f"{base}/file", f"{base}/page.png", language)

    @app.get("/api/runs/{run_id}/evidence/{eid}/file")
    def evidence_file(run_id: str, eid: str) -> FileResponse:
        run = run_of(run_id)
        ev = evidence_of(run, eid)
        if ev.source.kind == "pdf":  # a PDF is shown as its rendered pages
            raise HTTPException(404, "a PDF is served as page images")
        try:
            return FileResponse(source_file(run, ev))
        except EvidenceFileError as exc:
            raise HTTPException(404, str(exc)) from None

    @app.get("/api/runs/{run_id}/evidence/{eid}/page.png")
    def evidence_page(run_id: str, eid: str) -> Response:
        run = run_of(run_id)
        ev = evidence_of(run, eid)
        page = ev.segment.locator.page
        if ev.source.kind != "pdf" or page is None:
            raise HTTPException(404, f"{eid} is not on a PDF page")
        try:
            png = render_pdf_page(source_file(run, ev), page)
        except (EvidenceFileError, ValueError) as exc:
            raise HTTPException(404, str(exc)) from None
        return Response(png, media_type="image/png", headers={"Cache-Control": "max-age=3600"})

    @app.get("/new", response_class=HTMLResponse)
    def new_run() -> str:
        return pages.new_run_page([str(f) for f in jobs.folders], config.model)

    @app.post("/api/jobs")
    async def start_job(request: Request) -> JSONResponse:
        form = await request.json()
        try:
            job = jobs.start(
                int(form.get("folder", -1)),
                str(form.get("request") or ""),
                str(form.get("model") or ""),
                str(form.get("base_url") or ""),
            )
        except (JobError, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(job_json(job.id))

    @app.post("/api/runs/{run_id}/resume")
    def resume(run_id: str) -> JSONResponse:
        run = run_of(run_id)
        try:
            job = jobs.resume(run.path)
        except JobError as exc:
            return JSONResponse({"error": str(exc)}, status_code=409)
        return JSONResponse(job_json(job.id))

    @app.post("/api/jobs/{job_id}/cancel")
    def cancel(job_id: str) -> dict[str, Any]:
        try:
            jobs.cancel(job_id)
        except JobError as exc:
            raise HTTPException(404, str(exc)) from None
        return job_json(job_id)

    @app.get("/api/jobs/{job_id}")
    def job_status(job_id: str) -> dict[str, Any]:
        try:
            return job_json(job_id)
        except JobError as exc:
            raise HTTPException(404, str(exc)) from None

    def job_json(job_id: str) -> dict[str, Any]:
        job = jobs.get(job_id)
        run = catalog.add(job.run_dir)
        return {"job": job.id, "state": job.state, "run": run.id, "run_url": f"/runs/{run.id}"}

    @app.get("/api/jobs/{job_id}/events")
    async def events(job_id: str) -> EventSourceResponse:
        try:
            job = jobs.get(job_id)
        except JobError as exc:
            raise HTTPException(404, str(exc)) from None

        async def stream() -> AsyncIterator[dict[str, Any]]:
            steps = progress_events(job)
            while True:
                event = await asyncio.to_thread(next, steps, None)
                if event is None:
                    return
                yield event

        return EventSourceResponse(stream())

    return app


def serve(config: ServeConfig, host: str, port: int) -> None:
    """Run the server until Ctrl-C."""
    import uvicorn

    uvicorn.run(create_app(config), host=host, port=port, log_level="warning")
