"""`aiwatch redact scan` and `aiwatch redact store`."""
from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pytest

from aiwatch.cli import main
from collectors.logs import rows_to_table
from store.db import Store


def test_scan_reports_where_and_what_never_the_value(tmp_path, capsys):
    path = tmp_path / "app.log"
    path.write_text("ok\nuser jane@example.com paid with 4111 1111 1111 1111\nsk-proj-" + "a1B2" * 10 + "\n")
    assert main(["redact", "scan", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"{path}:2:6: email" in out and f"{path}:2:33: card_number" in out and f"{path}:3:1: openai_key" in out
    assert "jane@" not in out and "4111" not in out
    clean = tmp_path / "clean.log"
    clean.write_text("nothing here\n")
    assert main(["redact", "scan", str(clean)]) == 0


def test_scan_jsonl_gives_redacted_text_and_python_offsets(monkeypatch, capsys):
    texts = ["héllo → jane@example.com", "no findings", "IP [2001:db8::1]:443 and 198.51.100.7"]
    lines = "\n".join(json.dumps({"text": t}) for t in texts) + "\nnot json\n"
    monkeypatch.setattr("sys.stdin", io.StringIO(lines))
    assert main(["redact", "scan", "--jsonl", "-"]) == 2          # one bad line, reported, others done
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [o["text"] for o in out[:3]] == ["héllo → [REDACTED:email]", "no findings",
                                            "IP [[REDACTED:ipv6]]:443 and [REDACTED:ipv4]"]
    got = [[(f["kind"], text[f["start"]:f["end"]]) for f in o["findings"]] for o, text in zip(out, texts)]
    assert got == [[("email", "jane@example.com")], [], [("ipv6", "2001:db8::1"), ("ipv4", "198.51.100.7")]]
    assert "error" in out[3]


def test_store_re_redacts_old_rows_and_counts_by_table_and_kind(tmp_path, capsys):
    now = datetime.now(UTC).replace(tzinfo=None)
    db = Store(tmp_path / "aiwatch.duckdb")
    db.writer.write(tables={
        "logs": rows_to_table([{"time": now, "service_name": "svc", "body": "login jane@example.com",
                                "attributes": json.dumps({"ip": "203.0.113.5", "n": 1, "service.name": "svc"})},
                               {"time": now, "service_name": "svc", "body": "clean"}], "logs"),
        "span_content": rows_to_table([{"trace_id": "ab" * 16, "span_id": "cd" * 8, "start_time": now,
                                        "input_text": "card 4111 1111 1111 1111", "output_text": "ok",
                                        "truncated": False}], "span_content")})
    db.close()
    assert main(["redact", "store", "--since", "all", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "logs             email" in out and "logs             ipv4" in out and "span_content     card_number" in out
    db = Store(tmp_path / "aiwatch.duckdb")
    try:
        logs = db.query("SELECT body, attributes FROM logs ORDER BY body").to_pylist()
        content = db.query("SELECT input_text FROM span_content").to_pylist()
    finally:
        db.close()
    assert logs[0]["body"] == "clean" and logs[1]["body"] == "login [REDACTED:email]"
    assert json.loads(logs[1]["attributes"]) == {"ip": "[REDACTED:ipv4]", "n": 1, "service.name": "svc"}
    assert content == [{"input_text": "card [REDACTED:card_number]"}]
    # Running it again finds nothing: replacements are not findings.
    assert main(["redact", "store", "--since", "all", "--data-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip().endswith("0")


@pytest.mark.parametrize("bad", ["kind_without_regex", "1bad=x", "ok=("])
def test_bad_user_patterns_stop_start_up_with_the_key_named(bad):
    from aiwatch.config import ConfigError, Settings

    with pytest.raises(ConfigError, match="redact_patterns"):
        Settings.load(env={"AIWATCH_REDACT_PATTERNS": bad})
