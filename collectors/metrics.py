"""OTLP metric requests to `resource_metrics` rows: gauges and sums as values, histograms as means."""
from __future__ import annotations

import json
import math

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from collectors.attributes import any_value
from collectors.logs import rows_to_table
from collectors.traces import Converted


def _number(point) -> float:
    return point.as_double if point.WhichOneof("value") == "as_double" else float(point.as_int)


def convert_metrics(req: ExportMetricsServiceRequest) -> Converted:
    rows: list[dict] = []
    out = Converted(tables={})
    for rm in req.resource_metrics:
        res = {kv.key: any_value(kv.value) for kv in rm.resource.attributes}
        service = res.get("service.name")
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                kind = metric.WhichOneof("data")
                if kind in ("gauge", "sum"):
                    points = [(p, _number(p)) for p in getattr(metric, kind).data_points]
                elif kind in ("histogram", "exponential_histogram", "summary"):
                    points = [(p, p.sum / p.count) for p in getattr(metric, kind).data_points if p.count]
                else:
                    out.rejected += 1
                    out.messages.append(f"metric {metric.name!r} has no data")
                    continue
                for point, value in points:
                    if not math.isfinite(value):   # a NaN or infinity would poison every mean it enters
                        out.rejected += 1
                        out.messages.append(f"metric {metric.name!r}: value {value} is not a finite number")
                        continue
                    attrs = {kv.key: any_value(kv.value) for kv in point.attributes}
                    rows.append({"time": point.time_unix_nano // 1000, "service_name": service,
                                 "name": metric.name, "kind": kind, "value": value, "unit": metric.unit or None,
                                 "attributes": json.dumps(attrs, default=str) if attrs else None})
                    out.accepted += 1
    if rows:
        out.tables["resource_metrics"] = rows_to_table(rows, "resource_metrics")
    return out
