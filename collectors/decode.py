"""Turn an OTLP/HTTP request body into its protobuf message, or a clear 4xx reason.

OTLP/HTTP carries either binary protobuf or OTLP/JSON, optionally gzip-compressed. OTLP/JSON
differs from canonical proto3 JSON in one way that matters: trace and span ids are hex, not
base64, so ids are converted before `ParseDict`.
"""
from __future__ import annotations

import base64
import json
import zlib
from typing import TypeVar

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message

M = TypeVar("M", bound=Message)

PROTOBUF = "application/x-protobuf"
JSON = "application/json"

_ID_KEYS = {"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"}


class BadPayload(Exception):
    """The request cannot be accepted; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(status, reason)  # both in args, so it pickles across worker processes
        self.status = status
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


def media_type(content_type: str | None) -> str:
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind in (PROTOBUF, "application/protobuf"):
        return PROTOBUF
    if kind == JSON:
        return JSON
    raise BadPayload(415, f"unsupported content type {content_type!r}: send {PROTOBUF} or {JSON}")


def inflate(body: bytes, content_encoding: str | None, max_bytes: int) -> bytes:
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("identity", ""):
        if len(body) > max_bytes:
            raise BadPayload(413, f"body of {len(body)} bytes is over the {max_bytes}-byte limit")
        return body
    if encoding != "gzip":
        raise BadPayload(415, f"unsupported content encoding {content_encoding!r}: send gzip or identity")
    inflater = zlib.decompressobj(wbits=31)
    try:
        out = inflater.decompress(body, max_bytes + 1)
    except zlib.error as exc:
        raise BadPayload(400, f"body is not valid gzip: {exc}") from None
    if len(out) > max_bytes:
        raise BadPayload(413, f"inflated body is over the {max_bytes}-byte limit")
    if not inflater.eof:
        raise BadPayload(400, "body is truncated gzip")
    return out


def parse(body: bytes, kind: str, message_cls: type[M]) -> M:
    msg = message_cls()
    if kind == PROTOBUF:
        try:
            msg.ParseFromString(body)
        except (DecodeError, RuntimeError, ValueError) as exc:
            raise BadPayload(400, f"malformed protobuf {message_cls.__name__}: {exc}") from None
        return msg
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadPayload(400, f"malformed JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadPayload(400, f"JSON body must be an object ({message_cls.__name__})")
    _hex_ids_to_base64(data)
    try:
        json_format.ParseDict(data, msg, ignore_unknown_fields=True)
    except (json_format.ParseError, TypeError, ValueError) as exc:
        raise BadPayload(400, f"JSON does not match OTLP {message_cls.__name__}: {exc}") from None
    return msg


def _hex_ids_to_base64(node: object) -> None:
    """OTLP/JSON ids are hex strings; proto3 JSON expects base64 for bytes fields."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_KEYS and isinstance(value, str):
                try:
                    node[key] = base64.b64encode(bytes.fromhex(value)).decode()
                except ValueError:
                    raise BadPayload(400, f"{key} {value[:64]!r} is not hex") from None
            else:
                _hex_ids_to_base64(value)
    elif isinstance(node, list):
        for item in node:
            _hex_ids_to_base64(item)


def serialize(msg: Message, kind: str) -> bytes:
    """Encode a response message in the request's own encoding, as the OTLP spec asks."""
    if kind == PROTOBUF:
        return msg.SerializeToString()
    return json.dumps(json_format.MessageToDict(msg)).encode()


