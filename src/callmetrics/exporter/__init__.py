"""The exporter: Get Metrics payloads read from the warehouse marts (``metrics.md``)."""

from callmetrics.exporter.api import AllPayloads, Exporter
from callmetrics.exporter.meta import Meta, MetricsAnswer, WarehouseFacts, payload_meta
from callmetrics.exporter.payload import MetricsPayload
from callmetrics.exporter.timerange import TimeRange, parse_range

__all__ = [
    "AllPayloads",
    "Exporter",
    "Meta",
    "MetricsAnswer",
    "MetricsPayload",
    "TimeRange",
    "WarehouseFacts",
    "parse_range",
    "payload_meta",
]
