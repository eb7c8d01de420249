"""The versions manifest: which warehouse versions were published, in order, and their facts.

The manifest is bookkeeping, not the commit point: the live version is whatever the warehouse
symbolic link points at. `reconcile` makes the manifest agree with the link and the files, so a
publish or rollback killed between its steps leaves nothing to clean up by hand.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from callmetrics.publishing.files import write_atomic

VERSION_NAME = re.compile(r"^v(\d{6,})$")
# Before the constant catalog name, a version was a file `vNNNNNN.duckdb` (see store.py).
LEGACY_VERSION_FILE = re.compile(r"^v(\d{6,})\.duckdb$")


def version_name(number: int) -> str:
    return f"v{number:06d}"


def number_of(name: str) -> int | None:
    """The number of a version folder name (`v000042`), None for anything else."""
    match = VERSION_NAME.match(name)
    return int(match.group(1)) if match else None


def legacy_number_of(file_name: str) -> int | None:
    """The number of an old-layout version file name (`v000042.duckdb`)."""
    match = LEGACY_VERSION_FILE.match(file_name)
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class Version:
    """One published warehouse version."""

    number: int
    published_at: str
    base: int | None = None
    method: str = "unknown"
    row_counts: dict[str, int] = field(default_factory=dict)
    publish_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return version_name(self.number)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Version:
        return cls(
            number=int(data["number"]),
            published_at=str(data["published_at"]),
            base=None if data.get("base") is None else int(data["base"]),
            method=str(data.get("method", "unknown")),
            row_counts={str(k): int(v) for k, v in data.get("row_counts", {}).items()},
            publish_seconds={str(k): float(v) for k, v in data.get("publish_seconds", {}).items()},
        )


@dataclass
class Manifest:
    """Published versions, oldest first; after `reconcile` the last one is live."""

    history: list[Version] = field(default_factory=list)
    last_number: int = 0
    rolled_back: list[int] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> Manifest:
        if not path.exists():
            return cls()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                history=[Version.from_json(v) for v in data.get("history", [])],
                last_number=int(data.get("last_number", 0)),
                rolled_back=[int(n) for n in data.get("rolled_back", [])],
            )
        except (ValueError, KeyError, TypeError):
            # A damaged manifest loses only bookkeeping: reconcile rebuilds it from the files.
            return cls()

    def save(self, path: Path) -> None:
        data = {
            "live": self.history[-1].name if self.history else None,
            "last_number": self.last_number,
            "history": [asdict(v) for v in self.history],
            "rolled_back": self.rolled_back,
        }
        write_atomic(path, json.dumps(data, indent=2) + "\n")

    def reconcile(self, live_number: int | None, existing: set[int]) -> bool:
        """Agree with the link and the version folders (`existing`, by number); return True
        when something changed.

        - versions whose file is gone are dropped;
        - versions after the live one were never switched to (a publish killed before its
          switch) or were rolled back (a rollback killed after its switch): dropped;
        - a live version the manifest does not know (a lost manifest) is added.
        """
        before = list(self.history)
        kept = [v for v in self.history if v.number in existing]
        if live_number is None:
            kept = []
        else:
            position = next((i for i, v in enumerate(kept) if v.number == live_number), None)
            if position is None:
                kept = [v for v in kept if v.number < live_number]
                kept.append(Version(number=live_number, published_at="unknown"))
            else:
                kept = kept[: position + 1]
        self.history = kept
        self.last_number = max([self.last_number, *(v.number for v in kept), *existing])
        return self.history != before
