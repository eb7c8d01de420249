"""What a generation run wrote: rows and files per table, and how much of each kind of dirt."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class GenerationSummary:
    kind: str  # "base" or "increment"
    out_dir: str
    params: dict[str, Any]
    rows: dict[str, int] = field(default_factory=dict)  # rows written per table
    files: dict[str, int] = field(default_factory=dict)  # files written per table
    calls: dict[str, int] = field(default_factory=dict)  # call-level facts (distinct calls)
    dirt: dict[str, int] = field(default_factory=dict)  # injected dirt, by kind
    variations: dict[str, int] = field(default_factory=dict)  # harmless case/space variations
    changes: dict[str, int] = field(default_factory=dict)  # increment only: what changed
    details: dict[str, Any] = field(default_factory=dict)  # increment only: ids changed
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n")
