"""Builds the ASGI app: routes, lifespan (storage, registry, writer, background jobs).

``create_app(config)`` is all a server or a test needs. Start-up opens the database,
applies migrations, loads the agency list (and the demo registry with ``demo=True``),
and starts the group-commit writer and the registry refresher. Shutdown stops accepting
hits, commits everything already accepted, then closes storage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from collector.assets import LOADER_PATHS, LoaderEndpoint
from collector.badge import badge
from collector.compliance import refresh_month_summaries
from collector.config import Config
from collector.dossiers import DossierFeed
from collector.enrich import Enricher, GeoIP, Salts, installation_secret, warm_up
from collector.ingest import Ingest
from collector.registry import SiteIndex, load_agencies, load_demo
from collector.retention import retention
from collector.rollup import rollup
from collector.rollup_month import refresh_site_months
from collector.store import Database, open_database
from collector.tracking import local_day
from collector.writer import Writer

log = logging.getLogger("giamsat")

Job = Callable[["State"], Awaitable[None]]


@dataclass
class State:
    """What the running app holds; ``app.state.giamsat``."""

    config: Config
    db: Database
    sites: SiteIndex
    writer: Writer
    enricher: Enricher
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


async def start(config: Config) -> State:
    db = await open_database(config.database_url, spool_dir=config.spool_dir)
    await db.migrate()
    await load_agencies(db)
    if config.demo:
        await load_demo(db)
    sites = SiteIndex()
    await sites.refresh(db)
    secret = await installation_secret(db, config.secret)
    enricher = Enricher(GeoIP(config.geoip_path), Salts(db), secret)
    await asyncio.to_thread(warm_up)
    writer = Writer(db, config.batch_max)
    writer.start()
    return State(config, db, sites, writer, enricher)


async def stop(state: State) -> None:
    for t in state.tasks:
        t.cancel()
    for t in state.tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await t
    await state.writer.close()
    state.enricher.geo.close()
    await state.db.close()


def every(seconds: float, job: Job) -> Callable[[State], Awaitable[None]]:
    """A background loop that runs ``job`` every ``seconds`` and logs, never raises."""

    async def loop(state: State) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await job(state)
            except Exception:
                log.exception("background job %s failed", getattr(job, "__name__", job))

    return loop


async def refresh_registry(state: State) -> None:
    await state.sites.refresh(state.db)


async def maintain_storage(state: State) -> None:
    """PostgreSQL: hit partitions created ahead, old spool batch ids pruned."""
    maintain = getattr(state.db, "maintain", None)
    if maintain is not None:
        await maintain()


async def scan_sites(state: State) -> None:
    from collector.scan import scheduled_scan

    await scheduled_scan(state.db, state.config)


async def run_rollup(state: State) -> None:
    report = await rollup(state.db, batch=10_000)  # short write locks: ingest keeps flowing
    await refresh_site_months(state.db)  # the monthly totals of the months it touched
    # compliance summaries of closed months, so reports of long periods only read them
    await refresh_month_summaries(state.db, local_day(int(time.time() * 1000)))
    if report.hits or report.dossiers:
        log.info("rollup: %s", report)


async def run_retention(state: State) -> None:
    report = await retention(state.db, state.config.retention_days)
    if report.hits_deleted or report.dossiers_deleted:
        log.info("retention: %s", report)


def background_jobs(config: Config) -> list[Callable[[State], Awaitable[None]]]:
    jobs = []
    if config.registry_refresh > 0:
        jobs.append(every(config.registry_refresh, refresh_registry))
    if config.is_postgres:
        jobs.append(every(3600, maintain_storage))
    if config.scan_interval > 0:
        jobs.append(every(config.scan_interval, scan_sites))
    if config.rollup_interval > 0:
        jobs.append(every(config.rollup_interval, run_rollup))
        # retention after rollups: hourly, or as often as rollups if they are rarer
        jobs.append(every(max(config.rollup_interval, 3600.0), run_retention))
    return jobs


async def healthz(request: Request) -> JSONResponse:
    state: State = request.app.state.giamsat
    try:
        await state.db.fetch_one("SELECT 1 AS ok")
        db_ok = True
    except Exception:
        db_ok = False
    # PostgreSQL down (or its spool not replayed yet) but a spool takes hits: still
    # accepting, so 200, reported "degraded"; down without a spool: 503
    store = getattr(state.db, "health", lambda: {})()
    accepting = db_ok or "spool" in store
    body = {
        "status": "ok" if db_ok and not store.get("degraded") else "degraded",
        "database": state.db.dialect,
        "database_ok": db_ok,
        **({"store": store} if store else {}),
        "writer": {"pending": state.writer.pending, "batches": state.writer.batches,
                   "rows": state.writer.rows, "failures": state.writer.failures},
        "sites": len(state.sites.hosts),
        "refused_requests": dict(request.app.refused),  # bad report/API input, since start
    }
    return JSONResponse(body, 200 if accepting else 503,
                        headers={"cache-control": "no-store"})


class App(Starlette):
    """Starlette, plus a direct path for hits: ``/tracking`` (and ``/matomo.php``) go to the
    :class:`~collector.ingest.Ingest` ASGI app before Starlette's middleware and router —
    the endpoint every portal's visitors call, so the per-request framework cost is cut to
    a dictionary look-up. Every other path is Starlette's as usual."""

    fast: dict[str, ASGIApp]
    refused: Counter[str]  # "400 /compliance": refused report and API requests (healthz)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            app = self.fast.get(path)
            if app is not None:
                return await app(scope, receive, send)
            if path not in SELF_COUNTED:  # hits and dossier events count in `dropped`
                return await super().__call__(scope, receive, self._counting(path, send))
        await super().__call__(scope, receive, send)

    def _counting(self, path: str, send: Send) -> Send:
        """``send``, counting the answers that refuse bad input (400, 413) per first path
        segment: only routes answer those, so the keys are few whatever the path."""

        async def counted(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] in (400, 413):
                self.refused[f"{message['status']} /{path.split('/', 2)[1]}"] += 1
            await send(message)

        return counted


class _Tracking:
    """``/tracking`` in the router too (before start-up, or under a root path): the same
    Ingest app, once the lifespan has made it."""

    def __init__(self, holder: dict[str, Ingest]) -> None:
        self.holder = holder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ingest = self.holder.get("ingest")
        if ingest is None:
            response = JSONResponse({"error": "starting"}, 503, headers={"retry-after": "1"})
            return await response(scope, receive, send)
        await ingest(scope, receive, send)


TRACKING_PATHS = ("/tracking", "/matomo.php")
SELF_COUNTED = frozenset((*TRACKING_PATHS, "/TrackingMCDT"))


def create_app(config: Config | None = None) -> App:
    config = config or Config.from_env()
    holder: dict[str, Ingest] = {}
    feeds: dict[str, DossierFeed] = {}
    tracking = _Tracking(holder)

    async def dossier_feed(request: Request):  # type: ignore[no-untyped-def]
        return await feeds["dossiers"](request)

    @contextlib.asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[None]:
        state = await start(config)
        app.state.giamsat = state
        holder["ingest"] = Ingest(
            state.sites, state.enricher, state.writer, max_body=config.max_body,
            trusted_proxies=frozenset(filter(None, config.trusted_proxies.split(","))),
        )
        app.fast = dict.fromkeys(TRACKING_PATHS, holder["ingest"])
        feeds["dossiers"] = DossierFeed(state.db, state.enricher.secret, state.sites,
                                        state.writer, config.max_body)
        for job in background_jobs(config):
            state.tasks.append(asyncio.create_task(job(state)))
        try:
            yield
        finally:
            app.fast = {}  # from now on through the router: 503 while stopping
            holder.pop("ingest", None)
            await stop(state)

    routes = [
        *(Route(path, tracking) for path in TRACKING_PATHS),
        Route("/TrackingMCDT", dossier_feed, methods=["POST"]),
        Route("/healthz", healthz),
        Route("/badge/{site_id}.svg", badge),
    ]
    loader = LoaderEndpoint()  # the built snippet, read and compressed once
    routes += [Route(path, loader, methods=["GET", "HEAD"]) for path in LOADER_PATHS]
    if config.demo:
        from collector.demo import routes as demo_routes

        routes += demo_routes
    # the report pages and stats API (reports imports collector, never the reverse)
    from reports.web import routes as report_routes

    routes.extend(report_routes())
    app = App(routes=routes, lifespan=lifespan)
    app.fast = {}
    app.refused = Counter()
    return app
