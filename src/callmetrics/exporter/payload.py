"""Typed models of the Get Metrics payload (``shared/spec/metrics-payload.schema.json``).

Python names are snake_case; the JSON uses the schema's camelCase names (aliases). Models are
frozen and forbid unknown fields, so a payload that validates here has exactly the schema's
shape. Values are computed in ``formulas.py``; these classes only carry them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
)
from pydantic.alias_generators import to_camel

AgentStatus = Literal["active", "inactive", "cancelled", "pending", "deleted"]


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, frozen=True, extra="forbid"
    )


class Metrics(_Model):
    total_calls: int = Field(ge=0)
    total_minutes: float = Field(ge=0)
    resolution_rate: float = Field(ge=0, le=100)
    avg_duration: float = Field(ge=0)
    active_agents: int = Field(ge=0)
    response_time: float | None = Field(ge=0)
    sentiment_percent: float | None = Field(ge=0, le=100)
    escalation_rate: float | None = Field(ge=0, le=100)


class DailyVolume(_Model):
    date: str = Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
    total_calls: int = Field(ge=0)
    resolved_calls: int = Field(ge=0)


class HourlyDistribution(_Model):
    hour: str = Field(pattern=r"^([01][0-9]|2[0-3]):00$")
    calls: int = Field(ge=0)
    minutes: float = Field(ge=0)


class ResolutionBreakdown(_Model):
    resolved: int = Field(ge=0)
    transferred: int = Field(ge=0)
    abandoned: int = Field(ge=0)
    other: int = Field(ge=0)


class AgentPerformance(_Model):
    agent_id: str
    agent_name: str
    total_calls: int = Field(ge=1)
    resolved: int = Field(ge=0)
    transferred: int = Field(ge=0)
    abandoned: int = Field(ge=0)
    other: int = Field(ge=0)
    resolved_percent: float = Field(ge=0, le=100)
    transferred_percent: float = Field(ge=0, le=100)
    abandoned_percent: float = Field(ge=0, le=100)
    other_percent: float = Field(ge=0, le=100)
    avg_duration: float = Field(ge=0)
    sentiment_percent: float | None = Field(ge=0, le=100)
    status: AgentStatus


class LatencyPercentiles(_Model):
    p50: float = Field(ge=0)
    p90: float = Field(ge=0)
    p95: float = Field(ge=0)
    p99: float = Field(ge=0)


class AiInsights(_Model):
    intent_accuracy: float | None = Field(ge=0, le=100)
    context_retention: float | None = Field(ge=0, le=100)
    speech_recognition: float | None = Field(ge=0, le=100)
    entity_extraction: float | None = Field(ge=0, le=100)
    response_latency: float | None = Field(ge=0)
    training_sessions: int = Field(ge=0)
    response_latency_percentiles: LatencyPercentiles | None = None


class EscalationReason(_Model):
    reason: str = Field(min_length=1)
    count: int = Field(ge=1)
    percent_of_total: float = Field(ge=0, le=100)
    avg_time_before_escalation: float = Field(ge=0)


class MetricsChange(_Model):
    """Percentage change of each ``metrics`` field against the previous period."""

    total_calls: float | None
    total_minutes: float | None
    resolution_rate: float | None
    avg_duration: float | None
    active_agents: float | None
    response_time: float | None
    sentiment_percent: float | None
    escalation_rate: float | None


class PreviousPeriod(_Model):
    start_date: str = Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
                                    r"\.[0-9]{6}Z$")
    end_date: str = Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
                                  r"\.[0-9]{6}Z$")
    metrics: Metrics
    change: MetricsChange


class MetricsData(_Model):
    metrics: Metrics
    daily_volume: list[DailyVolume]
    hourly_distribution: list[HourlyDistribution] = Field(min_length=24, max_length=24)
    resolution_breakdown: ResolutionBreakdown
    agent_performance: list[AgentPerformance]
    ai_insights: AiInsights
    escalation_reasons: list[EscalationReason]
    previous_period: PreviousPeriod | None = None  # only with compare=previous

    @model_serializer(mode="wrap")
    def _without_absent_comparison(self, handler: SerializerFunctionWrapHandler) -> dict:
        """``previousPeriod`` is left out, not null, when no comparison was asked (so every
        dump of a payload, ``data`` alone or with ``meta``, is the published API's)."""
        dumped = handler(self)
        if self.previous_period is None:
            dumped.pop("previousPeriod", None)
            dumped.pop("previous_period", None)
        return dumped


class MetricsPayload(_Model):
    """The response body: ``{"data": {...}}``."""

    data: MetricsData

    def to_json(self, indent: int | None = 2) -> str:
        return self.model_dump_json(by_alias=True, indent=indent)

    def to_dict(self) -> dict:
        return self.model_dump(by_alias=True, mode="json")
