"""Where a fleet run writes each bag, and how a later run knows a bag is already done.

``OUT/<name>/replay`` is the output bag and ``OUT/<name>/replay_report/`` its report - exactly what
``gapcam replay BAG --out OUT/<name>/replay`` writes. ``OUT/<name>/fleet_task.json`` is written
last, atomically, and only for a bag replayed completely: its presence (with the same model) is
what "complete" means, so a run stopped at any point is resumed by running it again.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gapcam.replay.report import report_dir_for

MARKER = "fleet_task.json"
OUTPUT_BAG = "replay"
SUMMARY_JSON = "fleet_summary.json"
REPORT_MD = "fleet_report.md"
OVERVIEW_PNG = "fleet_overview.png"


@dataclass(frozen=True)
class TaskDir:
    """The output folder of one bag (for one model)."""

    root: Path

    @property
    def output_bag(self) -> Path:
        return self.root / OUTPUT_BAG

    @property
    def report_dir(self) -> Path:
        return report_dir_for(self.output_bag)

    @property
    def marker(self) -> Path:
        return self.root / MARKER

    def read_marker(self) -> dict[str, Any] | None:
        """The recorded result of a complete earlier replay, or ``None``."""
        try:
            data = json.loads(self.marker.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("status") != "ok":
            return None
        if not (self.output_bag / "metadata.yaml").is_file():
            return None
        return data

    def is_complete(self, model_sha256: str) -> bool:
        data = self.read_marker()
        return data is not None and data.get("model_sha256") == model_sha256

    def write_marker(self, result: dict[str, Any]) -> None:
        """Atomic: a reader sees no marker or the whole marker, never half of one."""
        tmp = self.marker.with_suffix(".tmp")
        tmp.write_text(json.dumps(result, indent=2) + "\n")
        os.replace(tmp, self.marker)

    def clear(self) -> None:
        """Remove what an earlier (partial) replay of this bag left; nothing else in the folder."""
        for p in (self.marker, self.marker.with_suffix(".tmp")):
            p.unlink(missing_ok=True)
        for d in (self.output_bag, self.report_dir):
            if d.is_dir():
                shutil.rmtree(d)
            elif d.exists():
                d.unlink()
        self.root.mkdir(parents=True, exist_ok=True)
