"""The CPU engine's settings as chosen by leave-stores-out validation, and its confidence calibration.

The classifier's raw confidence is the share of softmax mass under the category it answers; how often such an
answer is right depends on the temperature, the views and the catalog. `catalogvlm eval --leave-stores-out`
fits an isotonic map from that mass to the observed share of right answers (the label or an ancestor of it)
on stores other than those it is scored on; `--write-settings` writes the settings chosen on all stores. The
engine reads `settings.json` beside this module, whose provenance says where its settings came from.
The map is a monotone step function: `np.interp` over its knots.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from .categories import ClassifierSettings

SHIPPED_SETTINGS = "settings.json"


@dataclass(frozen=True)
class Calibration:
    """Knots of a monotone map from raw mass to confidence; without knots the raw mass is the confidence."""

    raw: tuple[float, ...] = ()
    calibrated: tuple[float, ...] = ()

    def confidence(self, mass: float) -> float:
        if not self.raw:
            return float(min(max(mass, 0.0), 1.0))
        return float(np.interp(mass, self.raw, self.calibrated))


@dataclass(frozen=True)
class EngineSettings:
    classifier: ClassifierSettings = field(default_factory=ClassifierSettings)
    glossary: bool = True  # append English glosses of foreign words before classifying
    calibration: Calibration = field(default_factory=Calibration)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def label(self) -> str:
        c = self.classifier
        return (
            f"embedding {c.embedding_weight:g}, product type {c.product_type_weight:g}, "
            f"temperature {c.temperature:g} (confidence {c.confidence_temperature or c.temperature:g}), "
            f"glossary {'on' if self.glossary else 'off'}"
        )

    @classmethod
    def from_dict(cls, data: dict) -> EngineSettings:
        calibration = data.get("calibration") or {}
        return cls(
            ClassifierSettings(**data.get("classifier", {})),
            bool(data.get("glossary", True)),
            Calibration(tuple(calibration.get("raw", ())), tuple(calibration.get("calibrated", ()))),
        )

    @classmethod
    def shipped(cls) -> EngineSettings:
        """The settings validation chose (defaults when the file is absent)."""
        path = resources.files(__package__).joinpath(SHIPPED_SETTINGS)
        if not path.is_file():
            return cls()
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8"))["settings"])

    def write(self, path: Path, provenance: dict[str, object]) -> Path:
        path.write_text(json.dumps({"provenance": provenance, "settings": self.to_dict()}, indent=2) + "\n")
        return path
