"""The pipeline's layering holds at import time: each stage, loaded alone in a fresh interpreter, loads
only `core` and the stages before it (shim -> collectors -> store -> analysis -> alerts), `core` loads
nothing of ours, and an ingest worker does not pay for the shim (its client, httpx, openai)."""
from __future__ import annotations

import ast
import json
import subprocess
import sys

import pytest
from server_harness import ROOT

PROJECT = ("core", "shim", "collectors", "store", "analysis", "alerts", "dashboard", "aiwatch", "sample_data")
HEAVY = ("shim.client", "shim.engine", "httpx", "openai")   # the shim's client side

# package -> project packages it may load (aiwatch: the shared settings and its ConfigError)
ALLOWED = {
    "core": {"core"},
    "shim": {"core", "shim"},
    "collectors": {"core", "collectors", "store"},
    "store": {"core", "store"},
    "analysis": {"core", "analysis", "store", "aiwatch"},
    "alerts": {"core", "alerts", "analysis", "store", "aiwatch"},
    "dashboard": {"core", "dashboard", "store", "analysis", "alerts", "aiwatch"},   # never the ingest side
    # the generator writes OTLP through the collectors' mapping; live traffic drives the shim
    "sample_data": {"core", "sample_data", "shim", "collectors", "store"},
}
# what a stage loads for certain: the lower bound, so a test cannot pass by loading nothing
NEEDS = {"core": {"core"}, "shim": {"core", "shim"}, "collectors": {"core", "collectors", "store"},
         "store": {"core", "store"}, "analysis": {"core", "analysis", "store"},
         "alerts": {"core", "alerts", "analysis", "store"}, "dashboard": {"core", "dashboard", "store"},
         "sample_data": {"core", "sample_data", "collectors", "store"}}
# `commands` / `register` plug a stage into the aiwatch CLI and server: wiring, not the stage; the
# dashboard's `app` and `views` are Streamlit scripts that draw when imported.
WIRING = ("commands", "register", "app", "views")
PROBE = """
import importlib, json, pkgutil, sys
pkg = importlib.import_module(sys.argv[1])
for m in pkgutil.iter_modules(pkg.__path__):
    if m.name not in WIRING:
        importlib.import_module(f"{pkg.__name__}.{m.name}")
print(json.dumps(sorted(sys.modules)))
""".replace("WIRING", repr(WIRING))


def loaded(code: str, *args: str) -> set[str]:
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.splitlines()[-1]))


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_a_stage_loads_only_the_stages_before_it(package):
    modules = loaded(PROBE, package)
    assert NEEDS[package] <= {m.split(".")[0] for m in modules} & set(PROJECT) <= ALLOWED[package]
    if package in ("core", "collectors", "store"):
        assert not modules & set(HEAVY), sorted(modules & set(HEAVY))


def test_an_ingest_worker_loads_no_client_and_no_analysis():
    modules = loaded("import json, sys, collectors.pipeline; print(json.dumps(sorted(sys.modules)))")
    assert not modules & {*HEAVY, "shim", "analysis", "alerts", "dashboard", "aiwatch"}


def test_the_shims_public_names_still_load_on_use():
    modules = loaded("import json, sys, shim; from shim import ChatClient, AIClient, Redactor; "
                     "assert AIClient is ChatClient and 'ChatClient' in dir(shim); print(json.dumps(sorted(sys.modules)))")
    assert "shim.client" in modules


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_no_import_reaches_a_later_stage_even_inside_a_function(package):
    allowed = ALLOWED[package]
    wrong = []
    for path in sorted((ROOT / package).glob("*.py")):
        if path.stem in WIRING:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module] if isinstance(node, ast.ImportFrom) and not node.level and node.module else [])
            wrong += [f"{path.name}: {n}" for n in names if n.split(".")[0] in PROJECT and n.split(".")[0] not in allowed]
    assert not wrong


def test_the_server_and_its_stages_load_no_statistics_stack():
    """A server starts (and a test server with its scheduler off runs) without importing scipy, pandas,
    polars or Evidently: the analyzers that need them are imported when the scheduler first builds them."""
    modules = loaded("import json, sys, aiwatch.server; from aiwatch import stages; stages.load_stages(); "
                     "stages.stage_queries(); stages.stage_routes(); print(json.dumps(sorted(sys.modules)))")
    assert not {m.split(".")[0] for m in modules} & {"scipy", "pandas", "polars", "evidently", "plotly"}
    assert "analysis.registry" in modules
