"""The stage modules the server and CLI load: importing one registers its jobs, queries and commands.

Each stage registers its commands through `aiwatch.cli` (command), and offers read queries as a
module-level `QUERIES` list (and `QUERY_FACTORIES`, settings -> queries, for those that answer
from the settings) and scheduled jobs as `JOB_FACTORIES` (settings -> jobs), which
`stage_queries` and `stage_jobs` collect for the server. Add a stage by adding its module here.
"""
from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aiwatch.jobs import Job
    from store.queries import QueryRegistry

STAGE_MODULES = (
    "collectors.commands",
    "sample_data.commands",
    "analysis.register",
    "alerts.register",
    "dashboard.commands",
)


# Modules exporting `ROUTES: list[starlette.routing.Route]` that the server mounts (write actions
# such as creating a silence). Handlers reach the server through `request.app.state.aiwatch`.
ROUTE_MODULES = ("alerts.api", "analysis.api")


def _import(name: str) -> ModuleType:
    """A listed stage module; one that cannot be imported stops start-up naming it (never skipped:
    a server without its alerting or analysis would look healthy and do nothing)."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(f"stage module {name!r} (aiwatch/stages.py) cannot be imported: {exc}",
                                  name=exc.name) from exc


def load_stages() -> None:
    for name in STAGE_MODULES:
        _import(name)


def stage_queries(settings: Any = None) -> QueryRegistry:
    """The read API's queries: the store's own, then each stage module's `QUERIES` and those of its
    `QUERY_FACTORIES` for these settings (None: the defaults)."""
    from store.queries import store_queries

    registry = store_queries()
    for name in STAGE_MODULES:
        module = _import(name)
        registry.extend(getattr(module, "QUERIES", ()))
        for factory in getattr(module, "QUERY_FACTORIES", ()):
            registry.extend(factory(settings))
    return registry


def stage_jobs(settings: Any) -> list[Job]:
    """Every stage's scheduled jobs for these settings, in STAGE_MODULES order."""
    jobs: list[Job] = []
    for name in STAGE_MODULES:
        module = _import(name)
        for factory in getattr(module, "JOB_FACTORIES", ()):
            jobs.extend(factory(settings))
    return jobs


def stage_reload() -> list[tuple[str, bool, str]]:
    """Every stage's `RELOADERS` (what a server re-reads on SIGHUP): (what, reloaded, why not) each."""
    out: list[tuple[str, bool, str]] = []
    for name in STAGE_MODULES:
        for reload in getattr(_import(name), "RELOADERS", ()):
            out.extend(reload())
    return out


def stage_routes() -> list:
    routes: list = []
    for name in ROUTE_MODULES:
        module = _import(name)
        routes.extend(getattr(module, "ROUTES", []))
    return routes
