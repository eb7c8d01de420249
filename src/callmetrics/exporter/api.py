"""The exporter's library interface: payloads for a range and a scope.

``Exporter`` holds one read-only connection and the (small) dimensions, so repeated payloads
on a warm connection cost only the section queries::

    with Exporter() as exporter:
        payload = exporter.payload(parse_range("2025-03-01", "2025-03-30"), organization_id="o")
        print(payload.to_json())

A request with a time zone, a calendar granularity or a comparison (``metrics.md``, "Time
zones and calendars") is a ``Request``; ``Request.parse`` checks every text and raises
``UserError`` (one line for the person who asked) on a bad one::

    request = Request.parse("2025-03-01", "2025-03-31", time_zone="America/New_York",
                            granularity="week", compare="previous")
    payload = exporter.payload(request, organization_id="o")
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from zoneinfo import ZoneInfo

from callmetrics.errors import UserError
from callmetrics.exporter import calendar
from callmetrics.exporter import sections as q
from callmetrics.exporter.formulas import Comparison, build_payload
from callmetrics.exporter.meta import MetricsAnswer, WarehouseFacts, payload_meta, warehouse_facts
from callmetrics.exporter.parts import ScopeParts, merge
from callmetrics.exporter.payload import AgentStatus, MetricsPayload
from callmetrics.exporter.query import LocalClock, fetch_parts
from callmetrics.exporter.sections import Declaration, load_declaration
from callmetrics.exporter.timerange import TimeRange
from callmetrics.exporter.warehouse import connect_read_only
from callmetrics.settings import Settings

UNKNOWN_AGENT = ("Unknown agent", "deleted")
_STATUSES = ("active", "inactive", "cancelled", "pending", "deleted")


@dataclass(frozen=True)
class Scope:
    """Which organizations a payload covers; ``org_ids is None`` means every one."""

    organization_id: str | None
    reseller_id: str | None
    org_ids: tuple[str, ...] | None


@dataclass(frozen=True)
class Request:
    """A range read in a time zone, with a ``dailyVolume`` granularity and whether to compare
    with the previous period. ``Request.parse`` builds one from the request's texts."""

    start_text: str
    end_text: str
    local: calendar.LocalRange
    granularity: calendar.Granularity = "day"
    compare: bool = False

    @classmethod
    def parse(
        cls,
        start: str,
        end: str,
        time_zone: str | None = None,
        granularity: str | None = None,
        compare: str | None = None,
    ) -> Request:
        """Check and read every text (``UserError`` on a bad one): ``time_zone`` an IANA name
        (default UTC), ``granularity`` day|week|month (default day), ``compare`` previous or
        None."""
        unit = calendar.granularity(granularity)
        wanted = calendar.compare(compare)
        return cls(start, end, calendar.parse_local_range(start, end, time_zone), unit, wanted)

    @property
    def time_range(self) -> TimeRange:
        return self.local.time_range

    @property
    def tz(self) -> ZoneInfo:
        return self.local.tz

    def in_zone(self, tz: ZoneInfo) -> Request:
        """The same texts read in another zone."""
        return replace(self, local=calendar.parse_local_range(
            self.start_text, self.end_text, tz.key))


@dataclass
class AllPayloads:
    """Everything ``export-all`` writes: one payload per organization, per reseller, and all."""

    time_range: TimeRange
    organizations: dict[str, MetricsPayload] = field(default_factory=dict)
    resellers: dict[str, MetricsPayload] = field(default_factory=dict)
    all_organizations: MetricsPayload | None = None


class Exporter:
    """A warm, read-only view of one warehouse (default: ``CALLMETRICS_WAREHOUSE``)."""

    def __init__(self, warehouse: Path | str | None = None) -> None:
        self.path = Path(warehouse) if warehouse else Settings.from_env().warehouse
        self._con = connect_read_only(self.path)
        try:
            self.declaration: Declaration = load_declaration(self._con)
        except BaseException:
            self._con.close()
            raise
        rows = self._con.execute(
            "select organization_id, reseller_id, timezone from marts.dim_organizations"
        ).fetchall()
        self._org_reseller: dict[str, str | None] = {org: reseller for org, reseller, _ in rows}
        self._org_zone: dict[str, str | None] = {org: zone for org, _, zone in rows}
        # The buckets that hold calls: a time zone's offsets are only looked up over them.
        self._span: tuple[datetime | None, datetime | None] = self._con.execute(
            f"select min(bucket_start), max(bucket_start) "
            f"from marts.{self.declaration.section(q.METRICS).mart}"
        ).fetchone() or (None, None)
        self._resellers: list[str] = sorted(
            r for (r,) in self._con.execute("select reseller_id from marts.dim_resellers")
            .fetchall()
        )
        self._agents: dict[str, tuple[str, AgentStatus]] | None = None
        self._facts: WarehouseFacts | None = None

    # -- lifetime
    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> Exporter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- dimensions
    @property
    def organization_ids(self) -> list[str]:
        return sorted(self._org_reseller)

    @property
    def reseller_ids(self) -> list[str]:
        return list(self._resellers)

    def reseller_of(self, organization_id: str) -> str | None:
        """The organization's current reseller (``None``: a direct customer)."""
        return self._org_reseller[organization_id]

    def organizations_of(self, reseller_id: str) -> list[str]:
        """The organizations whose *current* reseller is ``reseller_id``."""
        return sorted(o for o, r in self._org_reseller.items() if r == reseller_id)

    def agent(self, agent_id: str) -> tuple[str, AgentStatus]:
        """(name, status) of an agent; an id the warehouse never saw is an unknown, deleted one."""
        if self._agents is None:
            rows = self._con.execute(
                "select agent_id, agent_name, status from marts.dim_agents"
            ).fetchall()
            self._agents = {}
            for agent_id_, name, status in rows:
                if status not in _STATUSES:
                    raise UserError(f"warehouse has agent {agent_id_!r} with status {status!r}; "
                                    "rebuild it with `callmetrics build`")
                self._agents[agent_id_] = (name if name is not None else UNKNOWN_AGENT[0], status)
        return self._agents.get(agent_id, UNKNOWN_AGENT)  # type: ignore[return-value]

    def resolve_scope(self, organization_id: str | None, reseller_id: str | None) -> Scope:
        """Check the ids against the dimensions; unknown ones are a ``UserError``."""
        if reseller_id is not None and reseller_id not in self._resellers:
            raise UserError(f"reseller {reseller_id!r} not found: no reseller has that id")
        if organization_id is not None:
            if organization_id not in self._org_reseller:
                raise UserError(
                    f"organization {organization_id!r} not found: no organization has that id"
                )
            if reseller_id is not None and self._org_reseller[organization_id] != reseller_id:
                raise UserError(
                    f"organization {organization_id!r} not found under reseller "
                    f"{reseller_id!r}: it belongs to another reseller or to none"
                )
            return Scope(organization_id, reseller_id, (organization_id,))
        if reseller_id is not None:
            return Scope(None, reseller_id, tuple(self.organizations_of(reseller_id)))
        return Scope(None, None, None)

    # -- payloads
    def zone_of(self, organization_id: str) -> ZoneInfo:
        """The organization's own time zone (UTC when it has none the tz database knows)."""
        name = self._org_zone.get(organization_id)
        try:
            return calendar.zone(name)
        except UserError:
            return calendar.zone(None)

    def clock(self, time_range: TimeRange, tz: ZoneInfo) -> LocalClock | None:
        """The zone's offsets over the range (``None`` for UTC: the stored UTC keys)."""
        lo, hi = self._span
        if lo is None or hi is None:
            return None
        start = max(time_range.start, lo.astimezone(UTC))
        end = min(time_range.end, hi.astimezone(UTC) + self.declaration.bucket)
        if start > end:
            start = end = time_range.start
        spans = calendar.offsets(tz, start, end)
        if all(not offset for _, offset in spans):
            return None
        calendar.check_aligned(spans, self.declaration.bucket)
        return LocalClock(tuple(spans))

    def parts(
        self, time_range: TimeRange, org_ids: Sequence[str] | None, tz: ZoneInfo | None = None
    ) -> ScopeParts:
        """The summed parts of the calls in range of ``org_ids`` (``None``: every org), with
        local dates and hours in ``tz`` (default UTC)."""
        clock = None if tz is None else self.clock(time_range, tz)
        return fetch_parts(
            self._con, time_range, org_ids, by_org=False, declaration=self.declaration,
            clock=clock,
        ).get(None, ScopeParts())

    def _metrics_parts(self, time_range: TimeRange, org_ids: Sequence[str] | None,
                       by_org: bool) -> dict[str | None, ScopeParts]:
        """Only what ``metrics`` needs (its section and the agents), for the previous period."""
        wanted = (q.METRICS, q.AGENTS)
        declaration = replace(self.declaration, sections=tuple(
            s for s in self.declaration.sections if s.name in wanted))
        return fetch_parts(self._con, time_range, org_ids, by_org=by_org,
                           declaration=declaration)

    def payload(
        self,
        request: TimeRange | Request,
        organization_id: str | None = None,
        reseller_id: str | None = None,
    ) -> MetricsPayload:
        """The payload for a range (a UTC ``TimeRange``, or a ``Request`` with a time zone,
        granularity and comparison) and a scope (organization, reseller, both or neither)."""
        scope = self.resolve_scope(organization_id, reseller_id)
        if isinstance(request, TimeRange):
            return build_payload(self.parts(request, scope.org_ids), request, self.agent)
        time_range = request.time_range
        previous = None
        if request.compare:
            before = request.local.previous()
            parts = self._metrics_parts(before, scope.org_ids, by_org=False)
            previous = Comparison(before, parts.get(None, ScopeParts()))
        return build_payload(
            self.parts(time_range, scope.org_ids, request.tz), time_range, self.agent,
            request.granularity, previous,
        )

    @property
    def facts(self) -> WarehouseFacts:
        """The warehouse version and ``dataAsOf`` (read once: a version never changes)."""
        if self._facts is None:
            self._facts = warehouse_facts(self._con, self.path)
        return self._facts

    def answer(
        self,
        request: TimeRange | Request,
        organization_id: str | None = None,
        reseller_id: str | None = None,
    ) -> MetricsAnswer:
        """``{"data", "meta"}``: the payload and what it answered (the API's body); a
        ``Request`` also states its time zone and granularity in ``meta``."""
        payload = self.payload(request, organization_id, reseller_id)
        if isinstance(request, TimeRange):
            return MetricsAnswer(data=payload.data, meta=payload_meta(request, self.facts))
        meta = payload_meta(request.time_range, self.facts, request.tz.key, request.granularity)
        return MetricsAnswer(data=payload.data, meta=meta)

    def export_all(
        self, request: TimeRange | Request, organization_zones: bool = False
    ) -> AllPayloads:
        """Every organization's, every reseller's and the all-organizations payload.

        One grouped query per section over all organizations; reseller and all-organization
        parts are sums of organization parts (exact, see ``parts.py``). With
        ``organization_zones`` (``--tz org``) each organization's payload is in its own time
        zone (one more grouped query per distinct zone), resellers' and all in UTC.
        """
        if isinstance(request, TimeRange):
            request = Request(
                "", "", calendar.LocalRange(request, calendar.zone(None), False)
            )
        time_range = request.time_range
        by_org = fetch_parts(
            self._con, time_range, None, by_org=True, declaration=self.declaration,
            clock=self.clock(time_range, request.tz),
        )
        previous = self._previous_by_org(request)
        result = AllPayloads(time_range)

        def build(parts: ScopeParts, req: Request, before: ScopeParts | None) -> MetricsPayload:
            comparison = None
            if req.compare:
                comparison = Comparison(req.local.previous(), before or ScopeParts())
            return build_payload(parts, req.time_range, self.agent, req.granularity, comparison)

        own = self._by_own_zone(request) if organization_zones else {}
        for org_id in self.organization_ids:
            if org_id in own:
                req, parts, before = own[org_id]
            else:
                req, parts = request, by_org.get(org_id, ScopeParts())
                before = previous.get(org_id)
            result.organizations[org_id] = build(parts, req, before)
        for reseller_id in self._resellers:
            members = self.organizations_of(reseller_id)
            parts = merge(by_org[o] for o in members if o in by_org)
            before = merge(previous[o] for o in members if o in previous)
            result.resellers[reseller_id] = build(parts, request, before)
        result.all_organizations = build(
            merge(by_org.values()), request, merge(previous.values())
        )
        return result

    def _previous_by_org(self, request: Request) -> dict[str | None, ScopeParts]:
        if not request.compare:
            return {}
        return self._metrics_parts(request.local.previous(), None, by_org=True)

    def _by_own_zone(
        self, request: Request
    ) -> dict[str, tuple[Request, ScopeParts, ScopeParts | None]]:
        """Organizations whose own zone is not UTC: their request, parts and previous parts,
        one grouped query per distinct zone."""
        if not request.start_text:
            raise ValueError("organization zones need the request's texts: pass a Request")
        zones: dict[str, list[str]] = {}
        for org_id in self.organization_ids:
            tz = self.zone_of(org_id)
            if tz.key != "UTC":
                zones.setdefault(tz.key, []).append(org_id)
        found: dict[str, tuple[Request, ScopeParts, ScopeParts | None]] = {}
        for key, org_ids in zones.items():
            req = request.in_zone(ZoneInfo(key))
            by_org = fetch_parts(
                self._con, req.time_range, org_ids, by_org=True, declaration=self.declaration,
                clock=self.clock(req.time_range, req.tz),
            )
            before = (self._metrics_parts(req.local.previous(), org_ids, by_org=True)
                      if req.compare else {})
            for org_id in org_ids:
                found[org_id] = (req, by_org.get(org_id, ScopeParts()), before.get(org_id))
        return found
