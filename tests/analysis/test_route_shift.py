"""Route shift: per-call tail percentiles against the route's trailing calls, checked against a
numpy oracle on the same spans; and the shipped rank rules on them: a confidence drop and an
output-token rise on one quiet route page on a handful of calls, the clean hours and the other
route do not."""
from __future__ import annotations

import math
from dataclasses import replace
from datetime import timedelta
from fractions import Fraction

import numpy as np
import pyarrow as pa
import pytest

from alerts.conditions import evaluate, render_annotations
from alerts.rules import load_config
from analysis import route_shift, runner
from analysis.base import Window
from analysis.route_shift import MIN_REFERENCE, SPIKE_FACTOR, RouteShiftAnalyzer, Typicality
from analysis.settings import AnalysisSettings
from store.prices import resolve_prices
from tests.analysis.gen import T0, Shift, spans, write

HOUR = timedelta(hours=1)
MIN = timedelta(minutes=1)
ONSET = T0 + 5 * HOUR + 40 * MIN


def stored(store, metric, route):
    return {r["time"]: r["value"] for r in store.query(
        "SELECT time, value FROM analysis_metrics WHERE metric = $m AND route = $r AND service_name = 'svc' "
        "AND model = 'gpt-4o-mini'", {"m": metric, "r": route}).to_pylist()}


def _recorded(store, shifts, hours: int, seed: int):
    """`hours` of 4 calls a minute over two routes, stored and scored (5-hour references)."""
    data = spans(T0, hours * 60, 4, seed=seed, shifts=shifts)
    write(store, data)
    runner.analyze(store, RouteShiftAnalyzer(store, AnalysisSettings(route_baseline_hours=5)),
                   Window(T0, T0 + hours * HOUR, T0))
    return data.to_pandas()


def _firing(store, rules):
    """The (rule, route) pairs among `rules` that the shipped rules fire at a given minute."""
    config = load_config(None, env={})

    def firing(now):
        samples, failed = evaluate(store, config, now)
        assert not failed
        return {(s.rule.name, s.labels["route"]) for s in samples.values() if s.rule.name in rules}
    return firing


@pytest.fixture
def recorded(store):
    # 2 calls a minute per route; from ONSET the chat route's confidence falls by 0.3 and its
    # output tokens are 5x: ~2 calls a minute is a quiet route
    shifts = (Shift(ONSET, T0 + 6 * HOUR, "confidence", -0.3, route="chat"),
              Shift(ONSET, T0 + 6 * HOUR, "output_tokens", 5.0, route="chat"))
    return _recorded(store, shifts, hours=6, seed=11)


def test_scores_are_the_calls_tail_percentiles_in_the_reference(store, recorded):
    df = recorded[(recorded.route == "chat") & (recorded.status_code != "error")]
    hour5 = T0 + 5 * HOUR
    ref = df[df.start_time < hour5]
    cur = df[df.start_time >= hour5]
    m = len(ref)
    assert m >= MIN_REFERENCE
    assert stored(store, "route_conf_reference_calls", "chat")[hour5] == m
    # the oracle: pairwise comparisons, not a search in a sorted array
    low = ((ref.confidence.to_numpy()[None, :] <= cur.confidence.to_numpy()[:, None]).sum(1) + 1) / (m + 1)
    high = ((ref.output_tokens.to_numpy()[None, :] >= cur.output_tokens.to_numpy()[:, None]).sum(1) + 1) / (m + 1)
    minute = [t.to_pydatetime() for t in cur.start_time.dt.floor("min")]
    for metric, scores in (("route_conf_low_score", low), ("route_out_high_score", high)):
        want: dict = {}
        for t, u in zip(minute, scores, strict=True):
            want[t] = want.get(t, 0.0) + u
        got = {t: v for t, v in stored(store, metric, "chat").items() if t >= hour5}
        assert got.keys() == want.keys()
        assert all(got[t] == pytest.approx(want[t], rel=1e-12) for t in want)
    counts = {t: v for t, v in stored(store, "route_conf_scored", "chat").items() if t >= hour5}
    assert sum(counts.values()) == len(cur)
    # hours whose reference is under MIN_REFERENCE calls are not scored
    assert min(stored(store, "route_conf_scored", "chat")) >= T0 + 4 * HOUR


def test_the_rank_rules_page_a_quiet_route_on_few_calls_and_not_on_chance(store, recorded):
    firing = _firing(store, {"RouteConfidenceDrop", "RouteOutputTokensSpike", "RouteCostSpike"})

    # every minute of the clean hour after the reference matured: nothing
    assert set().union(*(firing(T0 + 4 * HOUR + i * MIN) for i in range(16, 100, 3))) == set()
    # by the P2 deadline (15 minutes after onset, ~30 calls on the route), both, on chat only
    first = {}
    for i in range(1, 16):
        for hit in firing(ONSET + i * MIN):
            first.setdefault(hit, i)
    # 5x output tokens cost chat's calls 3.5x: over twice the usual
    assert set(first) == {("RouteConfidenceDrop", "chat"), ("RouteOutputTokensSpike", "chat"),
                          ("RouteCostSpike", "chat")}


@pytest.mark.parametrize("models", [1, 2])
def test_minute_ticks_on_kept_references_write_what_a_fresh_analyzer_writes(store, models):
    """The scheduled tick keeps the newest hour's sorted references between runs: ticking minute by
    minute through an hour, across its end and with a late window reaching back into the hour before,
    writes exactly the rows an analyzer reading everything afresh writes for the same window (with
    a second model on chat: its rows over both models too)."""
    shifts = (Shift(ONSET, T0 + 6 * HOUR, "confidence", -0.3, route="chat"),)
    write(store, spans(T0, 6 * 60 + 20, 4, seed=5, shifts=shifts))
    if models == 2:
        write(store, spans(T0, 6 * 60 + 20, 3, seed=6, routes=("chat",), model="claude-3-5-haiku", ids="b",
                           shifts=shifts))
    settings = AnalysisSettings(route_baseline_hours=4 if models == 1 else 5)   # 5: both models scored
    ticking = RouteShiftAnalyzer(store, settings)
    windows = [Window(T0 + 5 * HOUR + i * MIN, T0 + 5 * HOUR + (i + 1) * MIN, T0) for i in range(0, 70, 3)]
    windows.insert(10, Window(T0 + 4 * HOUR + 50 * MIN, T0 + 5 * HOUR + 31 * MIN, T0))   # late data
    reads = []
    original = route_shift.analytics.route_call_values

    def counting(store_, start, end, *args):
        reads.append(end - start)
        return original(store_, start, end, *args)

    route_shift.analytics.route_call_values = counting
    try:
        order = [(c, "ascending") for c in ("metric", "route", "model", "time")]
        columns = ["time", "grain", "metric", "route", "model", "value"]
        for window in windows:
            got = ticking.run(window).metrics.sort_by(order)
            want = RouteShiftAnalyzer(store, settings).run(window).metrics.sort_by(order)
            assert got.select(columns).to_pylist() == want.select(columns).to_pylist(), window
            assert got.num_rows > 0
            assert (got.column("model").null_count > 0) == (models == 2)    # chat over both models
    finally:
        route_shift.analytics.route_call_values = original
    # the ticking analyzer read a day of calls only where the hour was new or the window spanned two
    long_reads = [r for r in reads[::2] if r > HOUR]
    assert len(long_reads) == 3   # the first tick, the late window, the first tick of the next hour


@pytest.fixture
def drifted(store):
    # from ONSET the search route's inputs are 1.8x as long and in a language it never saw
    shifts = (Shift(ONSET, T0 + 7 * HOUR, "input_tokens", 1.8, route="search"),
              Shift(ONSET, T0 + 7 * HOUR, "language", "ja", route="search"))
    return _recorded(store, shifts, hours=7, seed=12)


def test_input_scores_are_percentiles_and_typicality_in_the_reference(store, drifted):
    df = drifted[(drifted.route == "search") & (drifted.status_code != "error")]
    hour5 = T0 + 5 * HOUR
    ref, cur = df[df.start_time < hour5], df[df.start_time >= hour5]
    cur = cur[cur.start_time < hour5 + HOUR]
    m = len(ref)
    x, r = cur.input_tokens.to_numpy(), ref.input_tokens.to_numpy()
    low = ((r[None, :] <= x[:, None]).sum(1) + 1) / (m + 1)
    high = ((r[None, :] >= x[:, None]).sum(1) + 1) / (m + 1)
    # the mix: language and topic (absent: empty) joined; the oracle counts reference calls directly
    lang = lambda frame: [a.split('"aiwatch.input.language": "')[1].split('"')[0] for a in frame.attributes]  # noqa: E731
    ref_lang, cur_lang = lang(ref), lang(cur)
    share = {v: ref_lang.count(v) for v in set(ref_lang)}
    mix = np.array([(sum(1 for w in ref_lang if share[w] <= share.get(v, 0) + 1) + 1) / (m + 1) for v in cur_lang])
    minute = [t.to_pydatetime() for t in cur.start_time.dt.floor("min")]
    for metric, scores in (("route_in_low_score", low), ("route_in_high_score", high), ("route_mix_low_score", mix)):
        want: dict = {}
        for t, u in zip(minute, scores, strict=True):
            want[t] = want.get(t, 0.0) + u
        got = {t: v for t, v in stored(store, metric, "search").items() if hour5 <= t < hour5 + HOUR}
        assert got.keys() == want.keys(), metric
        assert all(got[t] == pytest.approx(want[t], rel=1e-12) for t in want), metric
    assert stored(store, "route_mix_reference_calls", "search")[hour5] == m
    assert sum(v for t, v in stored(store, "route_mix_scored", "search").items()
               if hour5 <= t < hour5 + HOUR) == len(cur)


def test_typicality_is_a_valid_p_value_with_nothing_changed() -> None:
    """Under exchangeability P(u <= t) <= t for every t: drawn from the reference's own distribution
    (one dominant, a few rare categories and a long tail), the scores are never too small too often."""
    rng = np.random.default_rng(3)
    names = np.array([f"c{i}" for i in range(12)], dtype=object)
    p = np.array([0.5, 0.2, 0.1, 0.08, 0.05, 0.03, 0.02, 0.01, 0.005, 0.003, 0.001, 0.001])
    p = p / p.sum()
    u = np.concatenate([Typicality(rng.choice(12, 800, p=p), names).scores(rng.choice(12, 50, p=p), names)
                        for _ in range(400)])
    for t in (0.001, 0.01, 0.05, 0.1, 0.3, 0.5):
        assert (u <= t).mean() <= t + 3 * np.sqrt(t * (1 - t) / len(u)) + 1e-9, t
    # a value the reference never saw, in another run's dictionary
    assert Typicality(np.arange(3).repeat(300), names[:3]).scores(np.array([1]), np.array(["c0", "new"]))[0] == 1 / 901


def test_the_input_rules_page_a_drifted_route_within_the_hour_and_not_on_chance(store, drifted):
    # 1.8x the input tokens cost search's calls 1.3x: every call over the reference, and no P2 for
    # cost or prompts over twice their usual
    firing = _firing(store, {"RouteInputTokensShift", "RouteInputTokensDrop", "RouteInputMixShift", "RouteCostSpike",
                             "RouteInputTokensSpike"})

    # every few minutes of the clean hours after the reference matured: nothing, on either route
    assert set().union(*(firing(T0 + 4 * HOUR + i * MIN) for i in range(16, 100, 3))) == set()
    first = {}
    for i in range(1, 61, 2):
        for hit in firing(ONSET + i * MIN):
            first.setdefault(hit, i)
    assert set(first) == {("RouteInputTokensShift", "search"), ("RouteInputMixShift", "search")}
    assert max(first.values()) <= 30


def test_a_column_of_unique_values_cannot_page() -> None:
    """An id configured as a category: every value is new, and the reference is all singletons, so
    every call scores 1 (never evidence) rather than 1 / (m + 1)."""
    names = np.array([f"req-{i}" for i in range(1000)], dtype=object)
    reference = Typicality(np.arange(900), names)
    assert np.all(reference.scores(np.arange(900, 1000), names) == 1.0)


def test_cost_is_ranked_at_half_so_only_calls_over_twice_the_usual_page(store):
    """Calls priced from tokens x the price table (no cost of their own). From ONSET chat's inputs
    are 6x as long (cost 2.9x) and search's 3.5x (cost 1.96x, every call above the reference): the
    stored scores are the upper-tail percentiles of half each call's cost and input tokens; the cost
    rule pages on chat only, the prompt rule on both (prompts over twice their usual length)."""
    shifts = (Shift(ONSET, T0 + 6 * HOUR, "input_tokens", 6.0, route="chat"),
              Shift(ONSET, T0 + 6 * HOUR, "input_tokens", 3.5, route="search"))
    write(store, spans(T0, 6 * 60, 4, seed=13, shifts=shifts, priced=True))
    runner.analyze(store, RouteShiftAnalyzer(store, AnalysisSettings(route_baseline_hours=5)),
                   Window(T0, T0 + 6 * HOUR, T0))
    df = store.query("SELECT start_time, route, input_tokens, output_tokens FROM spans "
                     "WHERE status_code IS DISTINCT FROM 'error' ORDER BY start_time").to_pandas()
    [(_, p_in, _, p_out, _)] = resolve_prices(["gpt-4o-mini"])
    df["cost"] = (df.input_tokens * p_in + df.output_tokens * p_out) / 1e6
    hour5 = T0 + 5 * HOUR
    for route in ("chat", "search"):
        calls = df[df.route == route]
        ref, cur = calls[calls.start_time < hour5].cost.to_numpy(), calls[calls.start_time >= hour5]
        for column, metric in (("cost", "cost"), ("input_tokens", "in")):
            ref = calls[calls.start_time < hour5][column].to_numpy()
            x = cur[column].to_numpy() / SPIKE_FACTOR
            u = ((ref[None, :] >= x[:, None]).sum(1) + 1) / (len(ref) + 1)
            want: dict = {}
            for t, v in zip((t.to_pydatetime() for t in cur.start_time.dt.floor("min")), u, strict=True):
                want[t] = want.get(t, 0.0) + v
            got = {t: v for t, v in stored(store, f"route_{metric}{SPIKE_FACTOR}x_high_score", route).items()
                   if t >= hour5}
            assert got.keys() == want.keys()
            assert all(got[t] == pytest.approx(want[t], rel=1e-9) for t in want)
            assert stored(store, f"route_{metric}{SPIKE_FACTOR}x_reference_calls", route)[hour5] == len(ref)
    firing = _firing(store, {"RouteCostSpike", "RouteInputTokensSpike", "RouteInputTokensShift"})
    assert set().union(*(firing(T0 + 4 * HOUR + i * MIN) for i in range(16, 100, 3))) == set()
    first: dict = {}
    for i in range(1, 16):
        for hit in firing(ONSET + i * MIN):
            first.setdefault(hit, i)
    assert {k for k in first if k[0] != "RouteInputTokensShift"} == {
        ("RouteCostSpike", "chat"), ("RouteInputTokensSpike", "chat"), ("RouteInputTokensSpike", "search")}
    assert max(v for k, v in first.items() if k[0] != "RouteInputTokensShift") <= 5   # 5-minute windows
    # search's inputs are improbably long, on the P3 input rule's longer window: a drift, not a cost page
    assert ("RouteInputTokensShift", "search") in set().union(*(firing(ONSET + i * MIN) for i in range(16, 31, 2)))


def _irwin_hall_cdf(s: float, n: int) -> float:
    """P(U1 + ... + Un <= s), exact in rationals (the alternating sum): the oracle of the rank test."""
    x = Fraction(s)
    total = sum((-1) ** k * math.comb(n, k) * (x - k) ** n for k in range(min(int(x), n) + 1))
    return float(total / math.factorial(n))


def _cost_scan_oracle(u: np.ndarray, times: np.ndarray, now) -> tuple[float, int] | None:
    """RouteCostSpike's scan over calls with tail percentiles `u` at `times`: among the windows of
    the newest 1..15 minutes whose mean is within 0.5 and whose exact Irwin-Hall tail is under the
    window's share (1e-5 / 2 for the whole 15 minutes, 1e-5 / 28 for a shorter one), the smallest
    (p, calls); None when no window holds."""
    best = None
    for length in range(1, 16):
        inside = (times >= np.datetime64(now - length * MIN, "us")) & (times < np.datetime64(now, "us"))
        n, s = int(inside.sum()), float(u[inside].sum())
        if n and s / n <= 0.5:
            p = _irwin_hall_cdf(s, n)
            if p < (1e-5 / 2 if length == 15 else 1e-5 / 28) and (best is None or p < best[0]):
                best = (p, n)
    return best


def test_the_cost_rule_scans_every_window_since_the_onset_on_a_quiet_route(store):
    """A route at a call a minute, output tokens lognormal; from the onset 4x longer (cost ~2.8x), so
    at half their cost the calls sit in the route's high tail but not beyond it: a handful of them
    are evidence, two or three are not. At every minute the shipped RouteCostSpike equals the oracle: each window of the newest 1..15
    minutes of calls, their tail percentiles (numpy) and the exact Irwin-Hall tail, tested at
    1e-5 / 2 (the whole 15 minutes) or 1e-5 / 28 (a shorter window). The scan pages within the P2 deadline; a fixed 5-minute window never holds enough
    calls, and a fixed 15-minute one is held back by the calls from before the onset."""
    onset = T0 + 13 * HOUR + 20 * MIN
    data = spans(T0, 14 * 60, 1, seed=22, routes=("night",), priced=True)
    rng = np.random.default_rng(22)
    out = rng.lognormal(np.log(200), 0.3, data.num_rows).astype(np.int64)
    start = data.column("start_time").to_numpy()
    out[start >= np.datetime64(onset, "us")] *= 4
    data = data.set_column(data.schema.get_field_index("output_tokens"), "output_tokens",
                           pa.array(out, type=data.schema.field("output_tokens").type))
    write(store, data)
    runner.analyze(store, RouteShiftAnalyzer(store, AnalysisSettings(route_baseline_hours=12)),
                   Window(T0, T0 + 14 * HOUR, T0))
    df = store.query("SELECT start_time, input_tokens, output_tokens FROM spans "
                     "WHERE status_code IS DISTINCT FROM 'error' ORDER BY start_time").to_pandas()
    [(_, p_in, _, p_out, _)] = resolve_prices(["gpt-4o-mini"])
    cost = (df.input_tokens * p_in + df.output_tokens * p_out).to_numpy() / 1e6
    hour13 = T0 + 13 * HOUR
    t = df.start_time
    ref = cost[((t >= hour13 - 12 * HOUR) & (t < hour13)).to_numpy()]
    assert stored(store, "route_cost2x_reference_calls", "night")[hour13] == len(ref)
    late = (t >= hour13).to_numpy()
    u = ((ref[None, :] >= cost[late][:, None] / SPIKE_FACTOR).sum(1) + 1) / (len(ref) + 1)
    times = t[late].to_numpy()

    config = load_config(None, env={})
    [rule] = [r for r in config.rules if r.name == "RouteCostSpike"]
    ev = rule.condition.evidence
    assert ev is not None and ev.scan and rule.condition.over == 15 * MIN and ev.windows(15 * MIN) == 15
    # the whole 15 minutes at p / 2, each shorter window at p / 28: under p in all
    assert ev.window_p_value(15 * MIN) == 1e-5 / 2 and ev.window_p_value(15 * MIN, 4 * MIN) == 1e-5 / 28

    def fired(cfg, now):
        samples, failed = evaluate(store, cfg, now)
        assert not failed
        return [s for s in samples.values() if s.rule.name == "RouteCostSpike" and s.labels["route"] == "night"]

    first_scan = None
    for i in range(1, 16):
        now = onset + i * MIN
        best = _cost_scan_oracle(u, times, now)
        got = fired(config, now)
        assert bool(got) == (best is not None), i
        if got:
            fields = dict(got[0].fields)
            assert fields["p_value"] == pytest.approx(best[0], rel=1e-6) and fields["total"] == best[1]
            first_scan = first_scan or i
    assert first_scan is not None and first_scan <= 15     # 13 min, inside the P2 deadline

    def fixed(over):
        rules = [replace(r, condition=replace(r.condition, over=over, evidence=ev.model_copy(update={"scan": False})))
                 if r is rule else r for r in config.rules]
        return replace(config, rules=rules)

    for over in (5 * MIN, 15 * MIN):    # never, and at 15 min
        first = next((i for i in range(1, 16) if fired(fixed(over), onset + i * MIN)), None)
        assert first is None or first > first_scan, (over, first, first_scan)
    # the clean hour before: nothing
    assert not any(fired(config, hour13 - HOUR + i * MIN) for i in range(0, 80, 4))


def test_a_shift_that_goes_on_is_judged_against_the_calls_from_before_it(store, monkeypatch):
    """Four hours of a new language and 1.8x inputs on search (12 calls a minute over two routes,
    6-hour references): each shifted hour is left out of the later hours' references, so the input
    rules hold through the whole shift and stop soon after it ends. Without leaving hours out the
    shifted calls become the reference: the mix rule stops inside the shift, and fires after it ends
    (the usual languages are now the rare ones). Scoring in one window or
    hour by hour (shifts known from the stored rows) writes the same rows."""
    start, end = T0 + 7 * HOUR, T0 + 11 * HOUR
    data = spans(T0, 14 * 60, 12, seed=21, shifts=(Shift(start, end, "input_tokens", 1.8, route="search"),
                                                  Shift(start, end, "language", "ja", route="search")))
    write(store, data)
    settings = AnalysisSettings(route_baseline_hours=6)
    whole = RouteShiftAnalyzer(store, settings).run(Window(T0, T0 + 14 * HOUR, T0)).metrics
    for h in range(14):
        runner.analyze(store, RouteShiftAnalyzer(store, settings), Window(T0 + h * HOUR, T0 + (h + 1) * HOUR, T0))
    columns = ["time", "grain", "metric", "service_name", "route", "model", "value"]
    order = [(c, "ascending") for c in ("metric", "route", "time")]
    assert store.query(f"SELECT {', '.join(columns)} FROM analysis_metrics").sort_by(order).to_pylist() == \
        whole.select(columns).sort_by(order).to_pylist()

    # the reference: the trailing 6 hours less the shifted ones, while 500 calls are left (oracle:
    # the generated calls themselves)
    ok = data.to_pandas()
    ok = ok[(ok.route == "search") & (ok.status_code != "error")]
    held = stored(store, "route_mix_reference_held_hours", "search")
    sizes = stored(store, "route_mix_reference_calls", "search")
    for h in range(8, 14):
        hour = T0 + h * HOUR
        out = [g for g in range(7, 11) if g < h]      # the shifted hours before this one
        in_window = ok[(ok.start_time >= hour - 6 * HOUR) & (ok.start_time < hour)]
        left = in_window[~in_window.start_time.dt.floor("h").isin([T0 + g * HOUR for g in out])]
        assert held.get(hour, 0) == len(out), h
        assert sizes[hour] == len(left) >= MIN_REFERENCE, h
    assert stored(store, "route_in_reference_held_hours", "search")[T0 + 11 * HOUR] == 4
    assert set(stored(store, "route_mix_reference_held_hours", "chat").values()) == {0}

    rules = {"RouteInputMixShift", "RouteInputTokensShift"}
    firing = _firing(store, rules)
    both = {(rule, "search") for rule in rules}
    during = [start + 30 * MIN + i * 10 * MIN for i in range(19)]     # every 10 minutes to the end
    assert all(firing(t) == both for t in during)
    # and the alert says its reference leaves the shifted hours out
    samples, _ = evaluate(store, load_config(None, env={}), start + 3 * HOUR + 40 * MIN)
    mix = next(s for s in samples.values() if s.rule.name == "RouteInputMixShift")
    assert render_annotations(mix, "http://dash")["summary"].endswith("; the reference leaves out 3 shifted hours")
    assert set().union(*(firing(end + 31 * MIN + i * 10 * MIN) for i in range(8))) == set()

    # the shifted calls as their own reference: the rules stop inside the shift
    monkeypatch.setattr(route_shift, "SHIFT_P", 0.0)
    for h in range(14):
        runner.analyze(store, RouteShiftAnalyzer(store, settings), Window(T0 + h * HOUR, T0 + (h + 1) * HOUR, T0))
    assert set(stored(store, "route_mix_reference_held_hours", "search").values()) == {0}
    assert any(firing(t) != both for t in during)
    # and once it ends, the route's usual languages are the rare ones: a false alert after the incident
    assert ("RouteInputMixShift", "search") in set().union(*(firing(end + 31 * MIN + i * 10 * MIN) for i in range(8)))


def test_a_route_served_by_two_models_is_also_judged_on_all_its_calls(store):
    """chat is served by two models at a call every 3 minutes each; from the onset its prompts are
    4x. Each call is ranked against its own model's reference; the route's rows with no model sum
    both models' minutes, and RouteCostSpike on them equals the oracle (numpy percentiles of half
    the cost per model, the exact Irwin-Hall tail over each window) and pages within the P2 deadline,
    while neither model alone has the calls to. Routes with one model get no such rows."""
    onset = T0 + 31 * HOUR + 40 * MIN
    shift = (Shift(onset, T0 + 33 * HOUR, "input_tokens", 4.0, route="chat"),)
    write(store, pa.concat_tables([
        spans(T0, 33 * 60, 1, seed=45, routes=("chat", "x", "y"), shifts=shift),
        spans(T0, 33 * 60, 1, seed=46, routes=("chat", "z", "w"), model="claude-3-5-haiku", ids="b", shifts=shift)]))
    runner.analyze(store, RouteShiftAnalyzer(store, AnalysisSettings(route_baseline_hours=30)),
                   Window(T0, T0 + 33 * HOUR, T0))

    rows = store.query("SELECT time, metric, route, model, value FROM analysis_metrics WHERE grain = '1m'").to_pandas()
    pooled = rows[rows.model.isna()]
    assert set(pooled.route) == {"chat"} and len(pooled)
    # from the first hour both models are scored in (each from MIN_REFERENCE calls on), the sum of both
    own = rows[rows.model.notna() & (rows.route == "chat")]
    both = max(own[own.model == m].time.min().floor("h") for m in ("gpt-4o-mini", "claude-3-5-haiku"))
    summed = own[own.time >= both].groupby(["time", "metric"]).value.sum()
    assert pooled.set_index(["time", "metric"]).value.sort_index().to_dict() == pytest.approx(
        summed.sort_index().to_dict(), rel=1e-12)

    calls = store.query("SELECT start_time, request_model AS model, cost_usd FROM spans WHERE route = 'chat' "
                        "AND status_code IS DISTINCT FROM 'error' ORDER BY start_time").to_pandas()
    hour = T0 + 31 * HOUR
    u, times = [], []
    for _, own in calls.groupby("model"):
        t = own.start_time
        ref = own.cost_usd[(t >= hour - 30 * HOUR) & (t < hour)].to_numpy()
        assert len(ref) >= MIN_REFERENCE
        cur = own[t >= hour]
        u.append(((ref[None, :] >= cur.cost_usd.to_numpy()[:, None] / SPIKE_FACTOR).sum(1) + 1) / (len(ref) + 1))
        times.append(cur.start_time.to_numpy())
    u_all, t_all = np.concatenate(u), np.concatenate(times)

    config = load_config(None, env={})
    first = None
    for i in range(1, 16):
        now = onset + i * MIN
        best = _cost_scan_oracle(u_all, t_all, now)
        samples, failed = evaluate(store, config, now)
        assert not failed
        cost = [s for s in samples.values() if s.rule.name == "RouteCostSpike"]
        assert all(s.labels["route"] == "chat" and "model" not in s.labels for s in cost), i   # no model alone
        assert bool(cost) == (best is not None), i
        if cost:
            fields = dict(cost[0].fields)
            assert fields["p_value"] == pytest.approx(best[0], rel=1e-6) and fields["total"] == best[1]
            assert render_annotations(cost[0], "http://dash")["summary"].startswith("svc chat (all models): ")
            first = first or i
    assert first is not None and first <= 15
