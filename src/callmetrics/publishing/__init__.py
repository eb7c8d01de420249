"""Safe publishing of the warehouse: write, audit, publish (see docs/publishing.md)."""

from callmetrics.publishing.manifest import Version
from callmetrics.publishing.store import PublishReport, WarehouseStore, WorkSlot

__all__ = ["PublishReport", "Version", "WarehouseStore", "WorkSlot"]
