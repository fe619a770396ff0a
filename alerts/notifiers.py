"""Notifiers: turn the receiver-neutral notification (Alertmanager webhook JSON) into each
receiver's wire format and send it over HTTP with httpx.

`send` never raises: it returns a `SendResult` that says whether the delivery succeeded, may be
retried (5xx, 429, 408, timeouts, connection errors; with the receiver's Retry-After) or failed
for good (any other 4xx, with the receiver's error body, e.g. Slack's `invalid_payload`).
"""
from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from alerts.rules import Receiver
from core.retry_after import parse_retry_after
from core.units import format_value

SLACK_HEADER_MAX = 150
SLACK_TEXT_MAX = 3000
SLACK_FIELD_MAX = 2000
SLACK_MAX_BLOCKS = 50
SLACK_ALERTS_SHOWN = 8
PD_SUMMARY_MAX = 1024
PD_SEVERITY = {"P1": "critical", "P2": "error", "P3": "warning"}


@dataclass(frozen=True)
class SendResult:
    ok: bool
    retryable: bool = False
    http_status: int | None = None
    error: str | None = None
    retry_after_s: float | None = None
    duration_ms: float = 0.0


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _span(notes: dict[str, Any]) -> str:
    """What the value was taken over: a windowed rule's window (`over 5m`), else the bucket grain."""
    return f"over {notes['window']}" if notes.get("window") else str(notes.get("grain", ""))


def value_vs_threshold(notes: dict[str, Any]) -> str:
    """`15% > 1%`, `22.86% <= 30%`, `31,200 ms > 20,000 ms`: in the unit the rule's value has."""
    unit = str(notes.get("unit", ""))
    return (f"{format_value(notes.get('value'), unit)} {notes.get('op', '')} "
            f"{format_value(notes.get('threshold'), unit)}")


def slack_escape(text: Any) -> str:
    """Slack's rule for mrkdwn: `&`, `<` and `>` become entities, so a service or route named
    `<!channel>` or `<https://evil|click>` shows as text instead of pinging or linking."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _where(labels: dict[str, str]) -> str:
    parts = [f"{k}={labels[k]}" for k in ("service", "model", "model_version", "route", "arm") if labels.get(k)]
    return ", ".join(parts) or ("the whole service" if "service" not in labels else "all services")


def _since(iso: str) -> tuple[int, str]:
    try:
        ts = datetime.fromisoformat(iso.replace("Z", "+00:00"))
        return int(ts.timestamp()), ts.strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return 0, iso


# --- Slack ------------------------------------------------------------------------------------

def slack_message(message: dict[str, Any]) -> dict[str, Any]:
    """Block Kit for an alert group: header, severity, what / where / since, value vs threshold, links."""
    if message.get("type") == "digest":
        return slack_digest(message)
    alerts = message["alerts"]
    firing = [a for a in alerts if a["status"] == "firing"]
    first = (firing or alerts)[0]
    labels, notes = first["labels"], first["annotations"]
    severity = labels.get("severity", "")
    status = "FIRING" if message["status"] == "firing" else "RESOLVED"
    emoji = {"P1": ":rotating_light:", "P2": ":warning:", "P3": ":mag:"}.get(severity, ":bell:")
    if status == "RESOLVED":
        emoji = ":white_check_mark:"
    count = f":{len(firing)}" if status == "FIRING" and len(firing) > 1 else ""
    header = _clip(f"[{status}{count}] {severity} {labels.get('alertname', '')} — {labels.get('service', '')}",
                   SLACK_HEADER_MAX)
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": header, "emoji": True}}]
    esc = slack_escape  # every label and annotation is user data by the time it reaches Slack
    for alert in alerts[:SLACK_ALERTS_SHOWN]:
        a_labels, a_notes = alert["labels"], alert["annotations"]
        ts, human = _since(alert["startsAt"])
        metric = a_notes.get("metric", "")
        value = value_vs_threshold(a_notes)
        fields = [f"*Severity*\n{emoji} {esc(a_labels.get('severity', ''))} ({esc(alert['status'])})",
                  f"*What*\n{esc(a_labels.get('alertname', ''))}: {esc(metric)} ({esc(_span(a_notes))})",
                  f"*Where*\n{esc(_where({k: v for k, v in a_labels.items() if k != 'service'}))}",
                  f"*Since*\n<!date^{ts}^{{date_short_pretty}} {{time}}|{esc(human)}>" if ts
                  else f"*Since*\n{esc(human)}",
                  f"*Value vs threshold*\n{esc(value)}"]
        if alert["status"] == "resolved":
            fields.append(f"*Resolved*\n{esc(_since(alert['endsAt'])[1])}")
        summary = str(a_notes.get("summary", ""))
        if a_labels.get("service") and summary.startswith(f"{a_labels['service']}: "):
            summary = summary[len(a_labels["service"]) + 2:]   # the header names the service already
        text = f"*{esc(summary)}*"
        if a_notes.get("description"):
            text += f"\n{esc(a_notes['description'])}"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _clip(text, SLACK_TEXT_MAX)},
                       "fields": [{"type": "mrkdwn", "text": _clip(f, SLACK_FIELD_MAX)} for f in fields[:10]]})
    if len(alerts) > SLACK_ALERTS_SHOWN:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text":
                       f"…and {len(alerts) - SLACK_ALERTS_SHOWN} more alerts in this group"}]})
    buttons = []
    if notes.get("dashboard"):
        buttons.append({"type": "button", "text": {"type": "plain_text", "text": "Dashboard"},
                        "url": _clip(notes["dashboard"], 3000)})
    if notes.get("runbook"):
        buttons.append({"type": "button", "text": {"type": "plain_text", "text": "Runbook"},
                        "url": _clip(notes["runbook"], 3000)})
    if buttons:
        blocks.append({"type": "actions", "elements": buttons})
    blocks = blocks[:SLACK_MAX_BLOCKS]
    return {"text": _clip(esc(f"{header}: {notes.get('summary', '')}"), SLACK_TEXT_MAX), "blocks": blocks}


def slack_digest(message: dict[str, Any]) -> dict[str, Any]:
    items = message["items"]
    esc = slack_escape
    lines = [f"• *{esc(i['rule'])}* "
             f"{esc(_where(json.loads(i['labels']) if isinstance(i['labels'], str) else i['labels']))}"
             f": {esc(i.get('summary') or '')}" for i in items]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "aiwatch weekly review (P3)"}},
        {"type": "section", "text": {"type": "mrkdwn", "text":
            f"{len(items)} P3 alerts between {esc(message['since'][:10])} and {esc(message['until'][:10])}."}}]
    chunk = ""
    for line in lines[:200]:
        if len(chunk) + len(line) + 1 > SLACK_TEXT_MAX:
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": chunk}})
            chunk = ""
        chunk += _clip(line, SLACK_TEXT_MAX - 1) + "\n"
    if chunk:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": chunk}})
    blocks = blocks[: SLACK_MAX_BLOCKS - 1]
    if message.get("dashboard"):
        blocks.append({"type": "actions", "elements": [{"type": "button", "text": {
            "type": "plain_text", "text": "Dashboard"}, "url": message["dashboard"]}]})
    return {"text": f"aiwatch weekly review: {len(items)} P3 alerts", "blocks": blocks}


# --- PagerDuty --------------------------------------------------------------------------------

def pagerduty_event(message: dict[str, Any], dedup_key: str, routing_key: str) -> dict[str, Any]:
    """Events API v2: one trigger/resolve per aggregation group with a stable dedup_key."""
    if message["status"] == "resolved":
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": dedup_key}
    firing = [a for a in message["alerts"] if a["status"] == "firing"]
    first = firing[0]
    labels, notes = first["labels"], first["annotations"]
    summary = notes.get("summary") or labels.get("alertname", "aiwatch alert")
    if len(firing) > 1:
        summary = f"[{len(firing)}] {summary}"
    links = [{"href": notes["dashboard"], "text": "aiwatch dashboard"}] if notes.get("dashboard") else []
    if notes.get("runbook"):
        links.append({"href": notes["runbook"], "text": "Runbook"})
    return {
        "routing_key": routing_key, "event_action": "trigger", "dedup_key": dedup_key,
        "payload": {
            "summary": _clip(summary, PD_SUMMARY_MAX), "source": labels.get("service", "aiwatch"),
            "severity": PD_SEVERITY.get(labels.get("severity", ""), "error"),
            "timestamp": first["startsAt"], "component": labels.get("model"), "group": labels.get("route"),
            "class": labels.get("alertname"),
            "custom_details": {"firing": [{"labels": a["labels"], "summary": a["annotations"].get("summary"),
                                           "value": a["annotations"].get("value"),
                                           "threshold": a["annotations"].get("threshold")} for a in firing[:20]],
                               "num_firing": len(firing)}},
        "links": links, "client": "aiwatch", "client_url": message.get("externalURL"),
    }


# --- apprise (Teams, Opsgenie, Discord, email, ...) ----------------------------------------------

APPRISE_BODY_MAX = 4000


def no_mentions(text: Any) -> str:
    """User data must not ping: a zero-width space after `@` keeps `@everyone`, `@here` and `<@123>`
    from becoming Discord / Teams mentions (apprise turns them into real ones)."""
    return str(text).replace("@", "@\u200b")


def apprise_message(message: dict[str, Any], dedup_key: str | None) -> dict[str, Any]:
    """Plain-text title and body for apprise (it escapes them for each service's markup), the
    notification type (failure/warning opens an Opsgenie alert, success closes it) and the dedup key."""
    esc = no_mentions
    if message.get("type") == "digest":
        items = message["items"]
        lines = [f"- {esc(i['rule'])} "
                 f"{esc(_where(json.loads(i['labels']) if isinstance(i['labels'], str) else i['labels']))}"
                 f": {esc(i.get('summary') or '')}" for i in items[:200]]
        body = f"{len(items)} P3 alerts between {message['since'][:10]} and {message['until'][:10]}.\n" + \
            "\n".join(lines)
        if message.get("dashboard"):
            body += f"\nDashboard: {message['dashboard']}"
        return {"title": f"aiwatch weekly review: {len(items)} P3 alerts", "body": _clip(body, APPRISE_BODY_MAX),
                "type": "info", "dedup_key": dedup_key}
    alerts = message["alerts"]
    firing = [a for a in alerts if a["status"] == "firing"]
    first = (firing or alerts)[0]
    labels, notes = first["labels"], first["annotations"]
    status = "FIRING" if message["status"] == "firing" else "RESOLVED"
    count = f":{len(firing)}" if status == "FIRING" and len(firing) > 1 else ""
    title = _clip(esc(f"[{status}{count}] {labels.get('severity', '')} {labels.get('alertname', '')} — "
                      f"{labels.get('service', '')}"), SLACK_HEADER_MAX)
    parts = []
    for alert in alerts[:SLACK_ALERTS_SHOWN]:
        a_labels, a_notes = alert["labels"], alert["annotations"]
        metric = a_notes.get("metric", "")
        value = value_vs_threshold(a_notes)
        text = f"{a_notes.get('summary', '')}\n{a_labels.get('alertname', '')}: {metric} " \
               f"({_span(a_notes)}) {value}; {_where(a_labels)}; since {_since(alert['startsAt'])[1]}"
        if alert["status"] == "resolved":
            text += f"; resolved {_since(alert['endsAt'])[1]}"
        if a_notes.get("description"):
            text += f"\n{a_notes['description']}"
        parts.append(esc(text))
    if len(alerts) > SLACK_ALERTS_SHOWN:
        parts.append(f"...and {len(alerts) - SLACK_ALERTS_SHOWN} more alerts in this group")
    links = [f"{name}: {notes[key]}" for name, key in (("Dashboard", "dashboard"), ("Runbook", "runbook"))
             if notes.get(key)]
    body = _clip("\n\n".join(parts + ["\n".join(links)] if links else parts), APPRISE_BODY_MAX)
    severity = labels.get("severity", "")
    kind = "success" if status == "RESOLVED" else "failure" if severity in ("P1", "P2") else "warning"
    return {"title": title, "body": body, "type": kind, "dedup_key": dedup_key or message.get("groupKey")}


# --- secrets ----------------------------------------------------------------------------------

def receiver_secrets(receiver: Receiver) -> list[str]:
    """The parts of a receiver's URL and key that are credentials: the whole URL, user and password,
    a host without a dot (apprise puts keys there: opsgenie://KEY, discord://ID/TOKEN), path segments
    and query values that carry digits or capitals (webhook tokens, not words like `services`)."""
    url = receiver.url
    found = [url, receiver.routing_key]
    if "://" in url:
        rest = url.split("://", 1)[1]
        authority, _, tail = rest.partition("/")
        userinfo, _, host = authority.rpartition("@")
        found += userinfo.split(":")
        host = host.rsplit(":", 1)[0]
        if "." not in host and host not in ("localhost", ""):
            found.append(host)
        path, _, query = tail.partition("?")
        found += [seg for seg in path.split("/") if not seg.islower() or any(c.isdigit() for c in seg)]
        found += [kv.partition("=")[2] for kv in query.split("&")]
    return sorted({s for s in found if len(s) >= 4}, key=len, reverse=True)


def mask_secrets(text: str | None, receiver: Receiver | None) -> str | None:
    """`text` (an error, a log line) with the receiver's credentials replaced by `****`."""
    if not text or receiver is None:
        return text
    for secret in receiver_secrets(receiver):
        text = text.replace(secret, "****")
    return text


def describe_destination(receiver: Receiver) -> str:
    """Where a receiver sends, safe to print: apprise's masked URL, or the scheme and host."""
    if not receiver.url:
        return ""
    if receiver.type == "apprise":
        from alerts import apprise_receiver  # apprise loads only when an apprise receiver is used
        return mask_secrets(apprise_receiver.privacy_url(receiver.url), receiver) or ""   # json:// keeps path tokens
    scheme, _, rest = receiver.url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0].rpartition('@')[2]}/…"


# --- sending ----------------------------------------------------------------------------------

def render(receiver: Receiver, message: dict[str, Any], dedup_key: str | None) -> dict[str, Any]:
    if receiver.type == "slack":
        return slack_message(message)
    if receiver.type == "pagerduty":
        return pagerduty_event(message, dedup_key or message["groupKey"], receiver.routing_key)
    if receiver.type == "apprise":
        return apprise_message(message, dedup_key)
    return message


RESPONSE_MAX_BYTES = 64 * 1024   # a receiver's answer is read this far (error bodies are logged clipped)


async def send_async(client: httpx.AsyncClient, receiver: Receiver, body: dict[str, Any]) -> SendResult:
    """POST `body` with a total deadline of the receiver's `timeout`: connect, headers and body
    together. httpx's own timeouts are per read, so a receiver trickling a byte a second would
    otherwise hold the send for as long as it likes."""
    if receiver.type == "apprise":
        from alerts import apprise_receiver
        return await apprise_receiver.send(receiver, body)
    started = time.perf_counter()

    def took() -> float:
        return (time.perf_counter() - started) * 1000

    try:
        async with asyncio.timeout(receiver.timeout_s):
            async with client.stream("POST", receiver.url, json=body, timeout=receiver.timeout_s,
                                     headers={"User-Agent": "aiwatch-alerts"}) as response:
                raw = bytearray()
                async for chunk in response.aiter_raw():
                    raw += chunk
                    if len(raw) >= RESPONSE_MAX_BYTES:
                        break
    except httpx.TimeoutException as exc:
        return SendResult(False, True, None, f"timeout: {type(exc).__name__}", duration_ms=took())
    except TimeoutError:
        return SendResult(False, True, None, f"timeout: no complete answer within the {receiver.timeout_s:g} s "
                                             "deadline", duration_ms=took())
    except httpx.HTTPError as exc:
        return SendResult(False, True, None, f"{type(exc).__name__}: {exc}"[:500], duration_ms=took())
    return classify(response.status_code, bytes(raw), response.headers.get("retry-after"),
                    response.reason_phrase, took())


def classify(code: int, body: bytes, retry_after: str | None, reason: str, duration_ms: float) -> SendResult:
    """A receiver's HTTP answer as a `SendResult`: the one reading for native and apprise receivers.
    2xx delivered; 408, 429 and 5xx retried (after Retry-After when given); any other code fails for good."""
    if 200 <= code < 300:
        return SendResult(True, http_status=code, duration_ms=duration_ms)
    error = body[:500].decode(errors="replace") or reason
    retryable = code in (408, 429) or code >= 500
    return SendResult(False, retryable, code, error, parse_retry_after(retry_after), duration_ms=duration_ms)


def send(receiver: Receiver, body: dict[str, Any]) -> SendResult:
    """`send_async` from synchronous code (the CLI's `aiwatch alerts test`)."""
    async def once() -> SendResult:
        async with httpx.AsyncClient(follow_redirects=False) as client:
            return await send_async(client, receiver, body)
    return asyncio.run(once())
