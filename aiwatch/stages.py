"""The stage modules the server and CLI load: importing one registers its jobs, queries and commands.

Each stage registers through the seams in `aiwatch.jobs` (job_factory), `store.queries` (register)
and `aiwatch.cli` (command). Add a stage by adding its module here.
"""
from __future__ import annotations

import importlib

STAGE_MODULES = (
    "sample_data.commands",
    "analysis.register",
    "alerts.register",
    "dashboard.commands",
)


def load_stages() -> None:
    for name in STAGE_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # a real missing dependency inside the stage: say so
                raise
