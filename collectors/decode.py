"""Turn an OTLP/HTTP request body into its protobuf message, or a clear 4xx reason.

OTLP/HTTP carries either binary protobuf or OTLP/JSON, optionally gzip-compressed. OTLP/JSON
differs from canonical proto3 JSON in one way that matters: trace and span ids are hex, not
base64, so ids are converted before `ParseDict`.
"""
from __future__ import annotations

import base64
import json
import zlib
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
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
    # A gzip body may hold several members one after another (RFC 1952); each is read, under one budget.
    out: list[bytes] = []
    size, rest = 0, body
    while True:
        inflater = zlib.decompressobj(wbits=31)
        try:
            part = inflater.decompress(rest, max_bytes - size + 1)
        except zlib.error as exc:
            raise BadPayload(400, f"body is not valid gzip: {exc}") from None
        size += len(part)
        if size > max_bytes:
            raise BadPayload(413, f"inflated body is over the {max_bytes}-byte limit")
        out.append(part)
        if not inflater.eof:
            raise BadPayload(400, "body is truncated gzip")
        rest = inflater.unused_data
        if not rest:
            return b"".join(out)


# OTLP requests share one shape: request{1: resource_X*} > resource_X{1: resource, 2: scope_X*} >
# scope_X{1: scope, 2: item*}. Salvaging walks it to keep every item that parses on its own.
_RESOURCE, _SCOPE, _ITEM = 1, 2, 2


@dataclass
class Parsed(Generic[M]):
    """A request message, and the items left out of it because they did not parse on their own."""
    message: M
    rejected: int = 0
    reasons: list[str] = field(default_factory=list)


def parse(body: bytes, kind: str, message_cls: type[M]) -> Parsed[M]:
    """The request, or (when it does not parse whole) the request without the items that do not
    parse alone: one string with invalid UTF-8 rejects its span, log record or metric, not the batch.
    BadPayload 400 when the body is not OTLP at all or no item survives."""
    msg = message_cls()
    if kind == PROTOBUF:
        try:
            msg.ParseFromString(body)
            return Parsed(msg)
        except (DecodeError, RuntimeError, ValueError) as exc:
            failure = BadPayload(400, f"malformed protobuf {message_cls.__name__}: {exc}")
        return _salvage(message_cls, body, _ProtoTree(), failure)
    try:
        data = json.loads(body)
    except UnicodeDecodeError:
        # Invalid UTF-8 inside a string: keep the bytes as lone surrogates, which the items that
        # hold them fail to parse, so only those items are rejected.
        try:
            data = json.loads(body.decode("utf-8", "surrogateescape"))
        except json.JSONDecodeError as exc:
            raise BadPayload(400, f"malformed JSON: {exc}") from None
    except json.JSONDecodeError as exc:
        raise BadPayload(400, f"malformed JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadPayload(400, f"JSON body must be an object ({message_cls.__name__})")
    _hex_ids_to_base64(data)
    try:
        json_format.ParseDict(data, msg, ignore_unknown_fields=True)
        return Parsed(msg)
    except (json_format.ParseError, TypeError, ValueError) as exc:
        failure = BadPayload(400, f"JSON does not match OTLP {message_cls.__name__}: {exc}")
    return _salvage(message_cls, data, _JsonTree(), failure)


class _Tree(Protocol):
    def children(self, unit: Any, fd: Any) -> list[Any]: ...

    def parse_into(self, target: Message, unit: Any) -> None: ...


class _ProtoTree:
    """Protobuf wire format: a unit is the bytes of one message."""

    def children(self, unit: bytes, fd: FieldDescriptor) -> list[Any]:
        return [value for number, value in _wire_fields(unit) if number == fd.number]

    def parse_into(self, target: Message, unit: bytes) -> None:
        target.ParseFromString(unit)


class _JsonTree:
    """OTLP/JSON: a unit is the dict of one message."""

    def children(self, unit: dict, fd: FieldDescriptor) -> list[Any]:
        value = unit.get(fd.json_name, unit.get(fd.name)) if isinstance(unit, dict) else None
        if value is None:
            return []
        if fd.is_repeated:
            if not isinstance(value, list):
                raise ValueError(f"{fd.json_name} must be a list")
            return value
        return [value]

    def parse_into(self, target: Message, unit: Any) -> None:
        if not isinstance(unit, dict):
            raise ValueError(f"{target.DESCRIPTOR.name} must be an object")
        json_format.ParseDict(unit, target, ignore_unknown_fields=True)


_ITEM_ERRORS = (DecodeError, RuntimeError, ValueError, TypeError, json_format.ParseError)


def _salvage(message_cls: type[M], root: Any, tree: _Tree, failure: BadPayload) -> Parsed[M]:
    msg = message_cls()
    out = Parsed(msg)
    kept = 0
    # Any: protobuf's stubs type descriptors as a union of its pure-Python and upb classes, with an
    # Optional message_type; for these OTLP fields both always exist.
    res_fd: Any = msg.DESCRIPTOR.fields_by_number[1]
    scope_fd: Any = res_fd.message_type.fields_by_number[_SCOPE]
    item_fd: Any = scope_fd.message_type.fields_by_number[_ITEM]
    item_name = item_fd.message_type.name

    def reject(count: int, where: str, exc: Exception) -> None:
        out.rejected += count
        out.reasons.append(f"{count} {item_name}(s) {where}: {str(exc)[-160:]}")

    try:
        for r, res_unit in enumerate(tree.children(root, res_fd)):
            scopes = tree.children(res_unit, scope_fd)
            try:
                res = _add_with_header(tree, msg, res_fd, res_unit)
            except _ITEM_ERRORS as exc:
                reject(sum(len(tree.children(s, item_fd)) for s in scopes), f"in resource {r} (its resource is bad)",
                       exc)
                continue
            for s, scope_unit in enumerate(scopes):
                items = tree.children(scope_unit, item_fd)
                try:
                    scope = _add_with_header(tree, res, scope_fd, scope_unit)
                except _ITEM_ERRORS as exc:
                    reject(len(items), f"in resource {r} scope {s} (its scope is bad)", exc)
                    continue
                container = getattr(scope, item_fd.name)
                for i, unit in enumerate(items):
                    try:
                        tree.parse_into(container.add(), unit)
                        kept += 1
                    except _ITEM_ERRORS as exc:
                        del container[-1]
                        reject(1, f"#{i} of resource {r} scope {s}", exc)
    except (ValueError, DecodeError):  # the envelope itself is broken: nothing to salvage
        raise failure from None
    if not kept:
        raise failure
    return out


def _add_with_header(tree: _Tree, parent: Message, fd: Any, unit: Any) -> Any:
    """Append a `fd` message to `parent` with its header (field 1: the resource, or the scope) parsed
    from `unit`; a bad header removes it again and raises. Its items are parsed by the caller."""
    child = getattr(parent, fd.name).add()
    header = fd.message_type.fields_by_number[_RESOURCE]
    try:
        for part in tree.children(unit, header):
            tree.parse_into(getattr(child, header.name), part)
    except _ITEM_ERRORS:
        del getattr(parent, fd.name)[-1]
        raise
    return child


def _wire_fields(buf: bytes) -> list[tuple[int, bytes]]:
    """(field number, bytes) of the length-delimited fields of one message; ValueError if malformed."""
    fields, pos, end = [], 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            _, pos = _varint(buf, pos)
        elif wire_type == 1:
            pos += 8
        elif wire_type == 5:
            pos += 4
        elif wire_type == 2:
            length, pos = _varint(buf, pos)
            if pos + length > end:
                raise ValueError("truncated field")
            fields.append((number, buf[pos:pos + length]))
            pos += length
        else:
            raise ValueError(f"unsupported wire type {wire_type}")
    if pos != end:
        raise ValueError("truncated field")
    return fields


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ValueError("bad varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


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


