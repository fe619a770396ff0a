"""Server-side prices: the user's overrides (prices_file) on top of genai-prices price every call that
carries no cost of its own, in the cost queries, the traffic analyzer and the weekly review, and the
`prices` query says which price (override and its version, or genai-prices and its version) applied.
Oracle: numpy over the same tokens and prices."""
from __future__ import annotations

import math
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from aiwatch.config import ConfigError, Settings
from analysis import runner
from analysis.base import Window
from analysis.traffic import TrafficAnalyzer
from core.pricing import PriceTable, genai_prices_version
from dashboard.export import StoreSource, build_weekly_review
from store import prices
from store.queries import store_queries
from store.schema import arrow_schema

REGISTRY = store_queries()

T0 = datetime(2026, 11, 16, 9)   # a Monday: the window is inside ISO week 2026-W47
WINDOW = {"start": T0.isoformat(), "end": (T0 + timedelta(hours=1)).isoformat()}
PRICES = """version = "finance-2026-11"
[models."gpt-4o-mini"]          # a prefix: covers the provider's snapshot names
input = 1.0
output = 4.0
cached_input = 0.5
[models."local-llama"]
input = 0.2
output = 0.6
"""
OVERRIDE = {"gpt-4o-mini": (1.0, 0.5, 4.0), "local-llama": (0.2, 0.2, 0.6)}   # input, cached, output per Mtok


@pytest.fixture(autouse=True)
def default_prices():
    yield
    prices.configure(None)   # the process-wide table goes back to genai-prices alone


def _spans(store, n: int = 3000) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(11)
    model = rng.choice(["gpt-4o-mini-2024-07-18", "local-llama", "mystery-model"], n)
    inp = rng.integers(10, 5000, n)
    cached = np.minimum(rng.integers(0, 2000, n), inp)
    out = rng.integers(1, 800, n)
    own = np.where(rng.random(n) < 0.25, rng.random(n) * 0.01, np.nan)   # a quarter carry the shim's cost
    schema = arrow_schema("spans")
    cols = {f.name: pa.nulls(n, f.type) for f in schema}
    cols.update({
        "trace_id": pa.array([f"{i:032x}" for i in range(n)]), "service_name": pa.array(["svc"] * n),
        "request_model": pa.array(model), "response_model": pa.array(model), "is_llm": pa.array([True] * n),
        "start_time": pa.array([T0 + timedelta(seconds=i * 3600 / n) for i in range(n)], pa.timestamp("us")),
        "duration_ms": pa.array(np.full(n, 100.0)), "status_code": pa.array(["ok"] * n),
        "input_tokens": pa.array(inp, pa.int64()), "cache_read_tokens": pa.array(cached, pa.int64()),
        "output_tokens": pa.array(out, pa.int64()),
        "cost_usd": pa.array([None if math.isnan(c) else float(c) for c in own], pa.float64()),
    })
    store.writer.write({"spans": pa.table(cols, schema=schema)})
    return {"model": model, "inp": inp, "cached": cached, "out": out, "own": own}


def _oracle(s: dict[str, np.ndarray], table: dict[str, tuple[float, float, float]]) -> tuple[float, int]:
    """Total cost (own cost, else tokens x price) and the number of unpriced calls."""
    total, unpriced = 0.0, 0
    for i, model in enumerate(s["model"]):
        if not math.isnan(s["own"][i]):
            total += s["own"][i]
            continue
        key = next((k for k in table if model.startswith(k)), None)
        if key is None:
            unpriced += 1
            continue
        p_in, p_cached, p_out = table[key]
        total += ((s["inp"][i] - s["cached"][i]) * p_in + s["cached"][i] * p_cached + s["out"][i] * p_out) / 1e6
    return total, unpriced


def _configure(tmp_path: Path) -> Settings:
    path = tmp_path / "prices.toml"
    path.write_text(PRICES)
    settings = Settings(prices_file=str(path))
    prices.configure(settings.price_table())
    return settings


def test_overrides_price_the_calls_the_analyzer_and_the_weekly_review(store, tmp_path):
    s = _spans(store)
    _configure(tmp_path)
    cost, unpriced = _oracle(s, OVERRIDE)
    [row] = REGISTRY["calls"].execute(store, WINDOW).to_pylist()
    assert row["cost_usd"] == pytest.approx(cost, rel=1e-9)
    assert row["unpriced_calls"] == unpriced and row["unpriced_models"] == "mystery-model"
    by_model = {r["model"]: r for r in REGISTRY["calls"].execute(store, {**WINDOW, "by": "model"}).to_pylist()}
    assert by_model["mystery-model"]["unpriced_models"] == "mystery-model"
    assert by_model["local-llama"]["unpriced_models"] is None and by_model["local-llama"]["unpriced_calls"] == 0
    spent = REGISTRY["top_spenders"].execute(store, WINDOW).column("cost_usd").to_pylist()
    assert sum(spent) == pytest.approx(cost, rel=1e-9)

    window = Window(T0, T0 + timedelta(hours=1), datetime(2026, 11, 16, 12))
    runner.analyze(store, TrafficAnalyzer(store), window)
    hour = store.scalar("SELECT cost_usd FROM traffic_metrics WHERE grain = '1h' AND time = ? AND service_name IS NULL "
                        "AND model IS NULL AND model_version IS NULL AND route IS NULL AND arm IS NULL", [T0])
    assert hour == pytest.approx(cost, rel=1e-9)

    applied = {r["model"]: r for r in REGISTRY["prices"].execute(store, WINDOW).to_pylist()}
    mini = applied["gpt-4o-mini-2024-07-18"]
    assert mini["price_source"] == "override gpt-4o-mini (finance-2026-11)"
    assert (mini["input_per_mtok"], mini["cached_input_per_mtok"], mini["output_per_mtok"]) == (1.0, 0.5, 4.0)
    assert mini["reasoning_per_mtok"] == 4.0   # no reasoning price: reasoning tokens at the output rate
    is_mini = s["model"] == "gpt-4o-mini-2024-07-18"
    own = ~np.isnan(s["own"])
    assert mini["calls"] == is_mini.sum() and mini["calls_with_own_cost"] == (is_mini & own).sum()
    assert mini["calls_priced_here"] == (is_mini & ~own).sum()
    assert applied["mystery-model"]["price_source"] is None and applied["mystery-model"]["calls_priced_here"] == 0

    review = build_weekly_review(StoreSource(store), "2026-W47")
    table = next(sec.tables["prices_applied"] for sec in review.sections if "prices_applied" in sec.tables)
    assert set(table["price_source"].dropna()) == {"override gpt-4o-mini (finance-2026-11)",
                                                  "override local-llama (finance-2026-11)"}


def test_without_overrides_genai_prices_applies_and_says_its_version(store):
    s = _spans(store)
    genai = PriceTable.default().price("gpt-4o-mini-2024-07-18")
    cached = genai.input if genai.cached_input is None else genai.cached_input
    cost, unpriced = _oracle(s, {"gpt-4o-mini": (genai.input, cached, genai.output)})
    [row] = REGISTRY["calls"].execute(store, WINDOW).to_pylist()
    assert row["cost_usd"] == pytest.approx(cost, rel=1e-9) and row["unpriced_calls"] == unpriced
    applied = {r["model"]: r for r in REGISTRY["prices"].execute(store, WINDOW).to_pylist()}
    assert applied["gpt-4o-mini-2024-07-18"]["price_source"].startswith(genai_prices_version() + " openai/")
    assert applied["local-llama"]["price_source"] is None


@pytest.mark.parametrize(("text", "named"), [
    ('[models.m]\ninput = -1\noutput = 1', "models.'m'.input"),
    ('[models.m]\ninput = 1\noutput = 20000', "models.'m'.output"),
    ('[models.m]\ninput = nan\noutput = 1', "models.'m'.input"),
    ('[models.m]\ninput = true\noutput = 1', "models.'m'.input"),
    ('[models.m]\ninput = 1', "output is required"),
    ('[models.m]\ninput = 1\noutput = 1\ncache = 1', "unknown key(s) cache"),
    ('[model.m]\ninput = 1\noutput = 1', "unknown key(s) model"),
    ('models = 3', "expected tables"),
    ('version = 7\n[models.m]\ninput = 1\noutput = 1', "version"),
    ('[models.m\ninput = 1', "prices.toml"),
])
def test_a_bad_prices_file_stops_start_up_naming_the_key(tmp_path, text, named):
    path = tmp_path / "prices.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="prices_file") as err:
        Settings(prices_file=str(path))
    assert named in str(err.value)


def test_a_missing_prices_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="prices_file: .*nowhere.toml"):
        Settings(prices_file=str(tmp_path / "nowhere.toml"))
