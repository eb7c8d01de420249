"""The exporter on the hand-made raw fixture (tests/fixtures/handmade.py), every field checked
against numbers worked out by hand in the comments."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from callmetrics.errors import UserError
from callmetrics.exporter import Exporter, parse_range
from tests.conftest import BuiltWarehouse
from tests.fixtures.handmade import EXPECTED_ORG1_PAYLOAD, ORG1_RANGE
from tests.reference_metrics import assert_valid_payload, load_staged, reference_payload

RANGE = parse_range(*ORG1_RANGE)  # 2025-01-10T00:00Z .. 2025-01-11T23:59:59.999999Z


@pytest.fixture(scope="module")
def exporter(handmade_warehouse: BuiltWarehouse) -> Iterator[Exporter]:
    with Exporter(handmade_warehouse.warehouse) as opened:
        yield opened


def payload(exporter: Exporter, start: str, end: str, org: str | None = None,
            reseller: str | None = None) -> dict[str, Any]:
    body = exporter.payload(parse_range(start, end), org, reseller).to_dict()
    assert_valid_payload(body)
    return body


def hours(filled: dict[int, tuple[int, float]]) -> list[dict[str, Any]]:
    return [{"hour": f"{h:02d}:00", "calls": filled.get(h, (0, 0.0))[0],
             "minutes": filled.get(h, (0, 0.0))[1]} for h in range(24)]


def test_org1_every_field(exporter: Exporter) -> None:
    assert payload(exporter, *ORG1_RANGE, org="org-1") == EXPECTED_ORG1_PAYLOAD


def test_org2_every_field(exporter: Exporter) -> None:
    # org-2 (no reseller) has one counted call, c-6: 10:00:00 -> 10:03:00 = 180 s, code
    # "callback-scheduled" (unmapped: other), sentiment "mixed" (data, not positive),
    # 0 corrections, agent a-3 "Cy" with status "on-leave" (reported inactive).
    # Telemetry: e-14 llm ttft 200, cached 100 / total 100 -> ratio 1; e-15 stt 0.8.
    assert payload(exporter, *ORG1_RANGE, org="org-2") == {"data": {
        "metrics": {"totalCalls": 1, "totalMinutes": 3.0, "resolutionRate": 0.0,
                    "avgDuration": 180.0, "activeAgents": 1, "responseTime": 200.0,
                    "sentimentPercent": 0.0, "escalationRate": 0.0},
        "dailyVolume": [{"date": "2025-01-10", "totalCalls": 1, "resolvedCalls": 0},
                        {"date": "2025-01-11", "totalCalls": 0, "resolvedCalls": 0}],
        "hourlyDistribution": hours({10: (1, 3.0)}),
        "resolutionBreakdown": {"resolved": 0, "transferred": 0, "abandoned": 0, "other": 1},
        "agentPerformance": [
            {"agentId": "a-3", "agentName": "Cy", "totalCalls": 1, "resolved": 0,
             "transferred": 0, "abandoned": 0, "other": 1, "resolvedPercent": 0.0,
             "transferredPercent": 0.0, "abandonedPercent": 0.0, "otherPercent": 100.0,
             "avgDuration": 180.0, "sentimentPercent": 0.0, "status": "inactive"}],
        "aiInsights": {"intentAccuracy": 100.0, "contextRetention": 100.0,
                       "speechRecognition": 80.0, "entityExtraction": None,
                       "responseLatency": 200.0, "trainingSessions": 1,
                       # one sample, 200 ms: its sketch bin's value, 198.4 (0.8% off)
                       "responseLatencyPercentiles": {"p50": 198.4, "p90": 198.4,
                                                      "p95": 198.4, "p99": 198.4}},
        "escalationReasons": [],
    }}


def test_reseller_merges_its_organizations(exporter: Exporter) -> None:
    # r-1 = org-1 (c-1..c-5, EXPECTED_ORG1_PAYLOAD) + org-3 (c-12). c-12: 05:00 -> 05:02 =
    # 120 s, "Transferred", transferred_at 05:03 after the end (so 120 s before escalation),
    # positive, 0 corrections, reason "technical issue requiring specialist", no agent,
    # telemetry e-20 tool success.
    # Durations 1170.000001 + 120 = 1290.000001 s: 21.50000001 min, mean 215.0000001667 s.
    body = payload(exporter, *ORG1_RANGE, reseller="r-1")
    expected_agents = EXPECTED_ORG1_PAYLOAD["data"]["agentPerformance"]  # c-12 has no agent
    assert body == {"data": {
        "metrics": {"totalCalls": 6, "totalMinutes": 21.5,
                    "resolutionRate": 16.7,     # 1 / 6
                    "avgDuration": 215.0, "activeAgents": 3,
                    "responseTime": 400.2,      # org-3 has no latency sample
                    "sentimentPercent": 50.0,   # c-1, c-12 of c-1, c-2, c-4, c-12
                    "escalationRate": 50.0},    # c-2, c-3, c-12 of 6
        "dailyVolume": [{"date": "2025-01-10", "totalCalls": 5, "resolvedCalls": 1},
                        {"date": "2025-01-11", "totalCalls": 1, "resolvedCalls": 0}],
        "hourlyDistribution": hours({0: (1, 1.0), 5: (1, 2.0), 9: (2, 7.5), 13: (1, 1.0),
                                     23: (1, 10.0)}),
        "resolutionBreakdown": {"resolved": 1, "transferred": 3, "abandoned": 1, "other": 1},
        "agentPerformance": expected_agents,
        "aiInsights": {"intentAccuracy": 50.0,  # 0 corrections: c-1, c-12 of c-1, c-2, c-4, c-12
                       "contextRetention": 11.7, "speechRecognition": 63.3,
                       "entityExtraction": 66.7,  # e-4, e-20 success; e-12 error
                       "responseLatency": 400.2, "trainingSessions": 6,
                       # org-1's samples only (c-12 has none): as in EXPECTED_ORG1_PAYLOAD
                       "responseLatencyPercentiles": {"p50": 399.5, "p90": 497.8,
                                                      "p95": 497.8, "p99": 497.8}},
        "escalationReasons": [
            # c-2 (60 s) and c-3 (60.000001 s): 2 of 3 escalated calls.
            {"reason": "billing dispute", "count": 2, "percentOfTotal": 66.7,
             "avgTimeBeforeEscalation": 60.0},
            {"reason": "technical issue requiring specialist", "count": 1,
             "percentOfTotal": 33.3, "avgTimeBeforeEscalation": 120.0},
        ],
    }}


def test_all_organizations_include_those_without_a_reseller(exporter: Exporter) -> None:
    body = payload(exporter, *ORG1_RANGE)
    metrics = body["data"]["metrics"]
    # r-1's 6 calls plus org-2's c-6 (org-2 has no reseller).
    assert metrics["totalCalls"] == 7
    assert metrics["totalMinutes"] == 24.5  # 1470.000001 s
    assert metrics["activeAgents"] == 4
    assert body["data"]["resolutionBreakdown"] == {
        "resolved": 1, "transferred": 3, "abandoned": 1, "other": 2}
    assert [a["agentId"] for a in body["data"]["agentPerformance"]] == ["a-1", "a-2", "a-3", "a-4"]


def test_a_reseller_without_organizations_gives_the_empty_payload(exporter: Exporter) -> None:
    body = payload(exporter, "2025-01-10", "2025-01-12", reseller="r-2")
    assert body == {"data": {
        "metrics": {"totalCalls": 0, "totalMinutes": 0.0, "resolutionRate": 0.0,
                    "avgDuration": 0.0, "activeAgents": 0, "responseTime": None,
                    "sentimentPercent": None, "escalationRate": None},
        "dailyVolume": [{"date": d, "totalCalls": 0, "resolvedCalls": 0}
                        for d in ("2025-01-10", "2025-01-11", "2025-01-12")],
        "hourlyDistribution": hours({}),
        "resolutionBreakdown": {"resolved": 0, "transferred": 0, "abandoned": 0, "other": 0},
        "agentPerformance": [],
        "aiInsights": {"intentAccuracy": None, "contextRetention": None,
                       "speechRecognition": None, "entityExtraction": None,
                       "responseLatency": None, "trainingSessions": 0,
                       "responseLatencyPercentiles": None},
        "escalationReasons": [],
    }}


@pytest.mark.parametrize(
    ("start", "end", "calls"),
    [
        # c-3 starts at 13:59:59.999999, the last microsecond of its hour and bucket.
        ("2025-01-10T13:59:59.999999Z", "2025-01-10T13:59:59.999999Z", 1),
        ("2025-01-10T14:00:00Z", "2025-01-10T23:00:00Z", 0),
        ("2025-01-10T13:00:00Z", "2025-01-10T13:59:59.999998Z", 0),
        ("2025-01-10T13:45:00Z", "2025-01-10T14:00:00Z", 1),
        # Midnight: c-5 starts at 2025-01-11T00:00:00 exactly.
        ("2025-01-10T23:59:59.999999Z", "2025-01-11T00:00:00Z", 1),
        ("2025-01-11T00:00:00.000001Z", "2025-01-11T23:59:59Z", 0),
        ("2025-01-10", "2025-01-10", 4),
        # With an offset: 2025-01-10T18:59:59.999999-05:00 is 23:59:59.999999Z.
        ("2025-01-10T08:59:59-05:00", "2025-01-10T18:59:59.999999-05:00", 2),
    ],
)
def test_edges_to_the_microsecond(exporter: Exporter, start: str, end: str, calls: int) -> None:
    assert payload(exporter, start, end, org="org-1")["data"]["metrics"]["totalCalls"] == calls


def test_c3_alone(exporter: Exporter) -> None:
    # Only c-3: 60.000001 s, escalated with no transferred_at, blank sentiment, agent a-2.
    data = payload(exporter, "2025-01-10T13:59:59.999999Z", "2025-01-10T13:59:59.999999Z",
                   org="org-1")["data"]
    assert data["metrics"] == {"totalCalls": 1, "totalMinutes": 1.0, "resolutionRate": 0.0,
                               "avgDuration": 60.0, "activeAgents": 1, "responseTime": None,
                               "sentimentPercent": None, "escalationRate": 100.0}
    assert data["hourlyDistribution"][13] == {"hour": "13:00", "calls": 1, "minutes": 1.0}
    assert data["dailyVolume"] == [{"date": "2025-01-10", "totalCalls": 1, "resolvedCalls": 0}]
    assert data["escalationReasons"] == [{"reason": "billing dispute", "count": 1,
                                          "percentOfTotal": 100.0,
                                          "avgTimeBeforeEscalation": 60.0}]


def test_both_ids(exporter: Exporter) -> None:
    assert payload(exporter, *ORG1_RANGE, org="org-1", reseller="r-1") == EXPECTED_ORG1_PAYLOAD
    with pytest.raises(UserError, match="organization 'org-2' not found under reseller 'r-1'"):
        exporter.payload(RANGE, "org-2", "r-1")  # org-2 has no reseller
    with pytest.raises(UserError, match="organization 'org-1' not found under reseller 'r-2'"):
        exporter.payload(RANGE, "org-1", "r-2")


def test_export_all_matches_single_payloads(exporter: Exporter) -> None:
    everything = exporter.export_all(RANGE)
    assert sorted(everything.organizations) == ["org-1", "org-2", "org-3"]
    assert sorted(everything.resellers) == ["r-1", "r-2"]
    assert everything.organizations["org-1"].to_dict() == EXPECTED_ORG1_PAYLOAD
    for org_id, body in everything.organizations.items():
        assert body == exporter.payload(RANGE, org_id)
    for reseller_id, body in everything.resellers.items():
        assert body == exporter.payload(RANGE, reseller_id=reseller_id)
    assert everything.all_organizations == exporter.payload(RANGE)


def test_reference_agrees_on_the_handmade_data(handmade_warehouse: BuiltWarehouse,
                                               exporter: Exporter) -> None:
    # The test-only reference reaches the hand-computed numbers too (it checks the rest).
    data = load_staged(str(handmade_warehouse.warehouse))
    expected = reference_payload(data, RANGE.start, RANGE.end, organization_id="org-1")
    assert expected == EXPECTED_ORG1_PAYLOAD
    for reseller in ("r-1", "r-2", None):
        got = exporter.payload(RANGE, reseller_id=reseller).to_dict()
        assert got == reference_payload(data, RANGE.start, RANGE.end, reseller_id=reseller)
