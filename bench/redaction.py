"""Redaction: recall, precision and MB/s of aiwatch's server and shim engines, Presidio's pattern
recognizers and detect-secrets, on the same generated corpus (tests/shim/redaction_gen.py).

Throughput is CPU seconds of this process (the machine is shared, wall time is not the engine's).
"prose" is ~1.4 KB prompts and outputs, "logs" ~1.4 KB of log lines (timestamps, ids, counts),
one text in ten carrying a corpus example; "corpus" is the labelled corpus itself (every text holds
something or is a near miss, so validators run on nearly every text).

Recall and precision here are kind-agnostic, so the engines are comparable: a label counts as
found when a finding overlaps it, a finding is right when it overlaps a label. The PII kinds are
what Presidio covers, the credential kinds what detect-secrets covers.

Run: uv sync --extra test --extra bench && .venv/bin/python bench/redaction.py [--limit N]
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "shim"))

from redaction_gen import Example, corpus  # noqa: E402

PII = {"email", "phone", "card_number", "iban", "us_ssn", "ipv4", "ipv6"}
Find = Callable[[str], list[tuple[int, int]]]


_PROSE = [
    "The model answered the question about the quarterly report and cited three sources",
    "Summarise the customer's request in two sentences and suggest a polite reply",
    "Here is a draft of the release notes for version 4.2, covering the new export formats",
    "Thanks for reaching out! I have looked into your order and it shipped on Tuesday",
    "Rewrite this paragraph so that a ten-year-old can follow it, keeping every fact",
    "The error budget for the checkout route is 37% spent with 11 days left in the window",
    "Translate the following into German and keep the formatting of the bullet list",
    "def handler(event):\n    return {'status': 200, 'items': len(event['items'])}",
    "Compare the two contracts and list the clauses that differ, with page numbers",
    "Latency rose after the deploy; the canary was rolled back and errors fell to 0.3%",
]


def _log_line(rng: random.Random) -> str:
    return (f"2025-11-{rng.randrange(1, 29):02d}T{rng.randrange(24):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}."
            f"{rng.randrange(1000):03d}Z {rng.choice(['INFO', 'WARN', 'DEBUG'])} worker-{rng.randrange(8)} processed batch "
            f"{rng.randrange(10000)} in {rng.randrange(900)} ms ({rng.randrange(5000)} rows) "
            f"req={rng.getrandbits(128):032x}")


def messages(examples: list[Example], kind: str, n: int = 3000, seed: int = 5) -> list[str]:
    """~1.4 KB texts: "prose" (prompts and outputs) or "logs" (log lines with timestamps and ids);
    one in ten carries a corpus example."""
    rng = random.Random(seed)
    positives = [e.text for e in examples if e.labels]
    out = []
    for _ in range(n):
        if kind == "prose":
            parts = [rng.choice(_PROSE) for _ in range(rng.randrange(12, 22))]
        else:
            parts = [_log_line(rng) for _ in range(rng.randrange(9, 14))]
        if rng.random() < 0.1:
            parts.insert(rng.randrange(len(parts)), rng.choice(positives))
        out.append((". " if kind == "prose" else "\n").join(parts))
    return out


def aiwatch_server() -> Find:
    from collectors.redact_fast import FastRedactor

    r = FastRedactor()
    return lambda text: [(f.start, f.end) for f in r.find(text)]


def aiwatch_shim() -> Find:
    from core.redact import Redactor

    r = Redactor()
    return lambda text: [(f.start, f.end) for f in r.find(text)]


def presidio() -> Find:
    import tldextract
    from presidio_analyzer import predefined_recognizers as pr
    from presidio_analyzer.predefined_recognizers.generic import email_recognizer

    # Presidio's email check asks tldextract, which would fetch the suffix list from the network.
    email_recognizer.tldextract = tldextract.TLDExtract(suffix_list_urls=())  # type: ignore[attr-defined]
    email_recognizer.tldextract.extract = email_recognizer.tldextract  # type: ignore[attr-defined]
    recognizers = [pr.EmailRecognizer(), pr.PhoneRecognizer(), pr.CreditCardRecognizer(), pr.IbanRecognizer(),
                   pr.UsSsnRecognizer(), pr.IpRecognizer()]

    def find(text: str) -> list[tuple[int, int]]:
        return [(res.start, res.end) for rec in recognizers
                for res in rec.analyze(text, rec.supported_entities, None) if res.score > 0]
    return find


def detect_secrets() -> Find:
    from detect_secrets.core.scan import scan_line
    from detect_secrets.settings import default_settings

    context = default_settings()
    context.__enter__()   # kept open for the whole run (find holds it: collected, it would close)

    def find(text: str, _context: object = context) -> list[tuple[int, int]]:
        out = []
        offset = 0
        for line in text.split("\n"):
            for secret in scan_line(line):
                value = secret.secret_value or ""
                at = line.find(value) if value else -1
                if at >= 0:
                    out.append((offset + at, offset + at + len(value)))
            offset += len(line) + 1
        return out
    return find


def score(examples: list[Example], find: Find, kinds: set[str] | None) -> tuple[float, float, float]:
    """(recall, precision, share of clean texts altered) over labels of `kinds` (None: all)."""
    found_labels = labels = right = wrong = altered = clean = 0
    for ex in examples:
        spans = find(ex.text)
        mine = [(s, e) for k, s, e in ex.labels if kinds is None or k in kinds]
        other = [(s, e) for k, s, e in ex.labels if kinds is not None and k not in kinds]
        labels += len(mine)
        found_labels += sum(any(a < e and b > s for a, b in spans) for s, e in mine)
        for a, b in spans:
            if any(a < e and b > s for s, e in mine):
                right += 1
            elif not any(a < e and b > s for s, e in other):   # a finding on a kind out of scope is not wrong
                wrong += 1
        if not ex.labels:
            clean += 1
            altered += bool(spans)
    return found_labels / max(labels, 1), right / max(right + wrong, 1), altered / max(clean, 1)


def mb_per_s(find: Find, texts: list[str]) -> float:
    t0 = time.process_time()
    for text in texts:
        find(text)
    return sum(len(t) for t in texts) / (time.process_time() - t0) / 1e6


def ingest_cost() -> None:
    """CPU per span of mapping bench/ingest.py's batches to rows, with and without redacting every
    stored string (message content is redacted in both)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from ingest import batches

    from collectors.content import RedactionConfig, build_policy
    from collectors.decode import PROTOBUF
    from collectors.pipeline import decode_and_convert

    bodies = batches(500, 20)
    policies = {"redact_strings=true": build_policy(config=RedactionConfig(strings=True)),
                "redact_strings=false": build_policy(config=RedactionConfig(strings=False))}
    for policy in policies.values():                   # warm up (first phone candidate imports libphonenumber)
        decode_and_convert("traces", bodies[0], PROTOBUF, None, 1 << 26, policy)
    print()
    for name, policy in policies.items():
        t0 = time.process_time()
        for body in bodies:
            decode_and_convert("traces", body, PROTOBUF, None, 1 << 26, policy)
        per_span = (time.process_time() - t0) / (len(bodies) * 500) * 1e6
        print(f"ingest mapping, {name}: {per_span:.1f} us CPU per span ({1e6 / per_span:,.0f} spans/s per core)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=0, help="use only the first N corpus texts")
    parser.add_argument("--seed", type=int, default=29, help="corpus seed (29: never used while tuning)")
    args = parser.parse_args()
    examples = corpus(seed=args.seed)
    if args.limit:
        random.Random(1).shuffle(examples)
        examples = examples[:args.limit]
    mixed = {kind: messages(examples, kind) for kind in ("prose", "logs")}
    engines: list[tuple[str, Callable[[], Find], set[str] | None]] = [
        ("aiwatch server (Hyperscan + re)", aiwatch_server, None),
        ("aiwatch shim (re)", aiwatch_shim, None),
        ("Presidio pattern recognizers", presidio, PII),
        ("detect-secrets", detect_secrets, {k for ex in examples for k, _, _ in ex.labels} - PII),
    ]
    print(f"corpus: {len(examples)} texts ({sum(len(e.text) for e in examples) / 1e6:.2f} MB); "
          + ", ".join(f"{k}: {len(v)} messages ({sum(map(len, v)) / 1e6:.2f} MB)" for k, v in mixed.items()))
    print(f"{'engine':34s} {'kinds':12s} {'recall':>7s} {'precision':>9s} {'clean alt.':>10s} "
          f"{'MB/s prose':>10s} {'MB/s logs':>9s} {'MB/s corpus':>11s}")
    for name, build, kinds in engines:
        try:
            find = build()
        except ImportError as exc:
            print(f"{name:34s} not installed ({exc.name}): uv sync --extra bench")
            continue
        scopes = [("all", None), ("PII", PII), ("credentials", {k for ex in examples for k, _, _ in ex.labels} - PII)] \
            if kinds is None else [("PII" if kinds == PII else "credentials", kinds)]
        size = None if "aiwatch server" in name else 300      # the slow ones on a sample
        prose_speed = mb_per_s(find, mixed["prose"][:size])
        logs_speed = mb_per_s(find, mixed["logs"][:size])
        corpus_speed = mb_per_s(find, [e.text for e in examples])
        for scope, scope_kinds in scopes:
            recall, precision, altered = score(examples, find, scope_kinds)
            print(f"{name:34s} {scope:12s} {recall:7.4f} {precision:9.4f} {altered:10.2%} "
                  f"{prose_speed:10.1f} {logs_speed:9.1f} {corpus_speed:11.2f}")
    from redaction_gen import score as strict_score

    from collectors.redact_fast import FastRedactor

    r = FastRedactor()
    held_out = [e for seed in (13, 29) for e in corpus(seed=seed) if e.split == "holdout"]
    s = strict_score(held_out, lambda text: [(f.kind, f.start, f.end) for f in r.find(text)])
    print(f"\naiwatch per kind, held-out ({len(held_out)} texts), strict (kind and exact span):")
    print(f"{'kind':20s} {'labels':>6s} {'recall':>7s} {'precision':>9s}")
    for kind in sorted(s.tp):
        print(f"{kind:20s} {s.tp[kind] + s.fn[kind]:6d} {s.recall(kind):7.4f} {s.precision(kind):9.4f}")
    print(f"{'all':20s} {sum(s.tp.values()) + sum(s.fn.values()):6d} {s.recall():7.4f} {s.precision():9.4f}"
          f"  clean texts altered: {s.clean_altered}/{s.clean_lines}")
    ingest_cost()
    for kind, texts in mixed.items():
        t0 = time.process_time()
        r.redact_many(texts, 16_384)
        print(f"aiwatch server, redact_many (as at ingest), {kind}: "
              f"{sum(map(len, texts)) / (time.process_time() - t0) / 1e6:.1f} MB/s")


if __name__ == "__main__":
    main()
