"""The exporter's library interface: payloads for a range and a scope.

``Exporter`` holds one read-only connection and the (small) dimensions, so repeated payloads
on a warm connection cost only the section queries::

    with Exporter() as exporter:
        payload = exporter.payload(parse_range("2025-03-01", "2025-03-30"), organization_id="o")
        print(payload.to_json())
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from callmetrics.errors import UserError
from callmetrics.exporter.formulas import build_payload
from callmetrics.exporter.meta import MetricsAnswer, WarehouseFacts, payload_meta, warehouse_facts
from callmetrics.exporter.parts import ScopeParts, merge
from callmetrics.exporter.payload import AgentStatus, MetricsPayload
from callmetrics.exporter.query import fetch_parts
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
        self._org_reseller: dict[str, str | None] = dict(
            self._con.execute(
                "select organization_id, reseller_id from marts.dim_organizations"
            ).fetchall()
        )
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
    def parts(self, time_range: TimeRange, org_ids: Sequence[str] | None) -> ScopeParts:
        """The summed parts of the calls in range of ``org_ids`` (``None``: every org)."""
        return fetch_parts(
            self._con, time_range, org_ids, by_org=False, declaration=self.declaration
        ).get(None, ScopeParts())

    def payload(
        self,
        time_range: TimeRange,
        organization_id: str | None = None,
        reseller_id: str | None = None,
    ) -> MetricsPayload:
        """The payload for a range and a scope (organization, reseller, both or neither)."""
        scope = self.resolve_scope(organization_id, reseller_id)
        return build_payload(self.parts(time_range, scope.org_ids), time_range, self.agent)

    @property
    def facts(self) -> WarehouseFacts:
        """The warehouse version and ``dataAsOf`` (read once: a version never changes)."""
        if self._facts is None:
            self._facts = warehouse_facts(self._con, self.path)
        return self._facts

    def answer(
        self,
        time_range: TimeRange,
        organization_id: str | None = None,
        reseller_id: str | None = None,
    ) -> MetricsAnswer:
        """``{"data", "meta"}``: the payload and what it answered (the API's body)."""
        payload = self.payload(time_range, organization_id, reseller_id)
        return MetricsAnswer(data=payload.data, meta=payload_meta(time_range, self.facts))

    def export_all(self, time_range: TimeRange) -> AllPayloads:
        """Every organization's, every reseller's and the all-organizations payload.

        One grouped query per section over all organizations; reseller and all-organization
        parts are sums of organization parts (exact, see ``parts.py``).
        """
        by_org = fetch_parts(
            self._con, time_range, None, by_org=True, declaration=self.declaration
        )
        result = AllPayloads(time_range)
        for org_id in self.organization_ids:
            parts = by_org.get(org_id, ScopeParts())
            result.organizations[org_id] = build_payload(parts, time_range, self.agent)
        for reseller_id in self._resellers:
            parts = merge(by_org[o] for o in self.organizations_of(reseller_id) if o in by_org)
            result.resellers[reseller_id] = build_payload(parts, time_range, self.agent)
        result.all_organizations = build_payload(merge(by_org.values()), time_range, self.agent)
        return result

