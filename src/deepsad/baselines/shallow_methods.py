"""The paper's shallow methods by stable name (used by configs, the CLI and the hybrids)."""

from __future__ import annotations

from deepsad.baselines.iforest import IsolationForestDetector
from deepsad.baselines.kde import KDEDetector
from deepsad.baselines.ocsvm import OCSVM
from deepsad.baselines.ssad import SSAD

#: Stable names of the shallow methods (used by configs, the CLI and saved models).
SHALLOW_METHODS: dict[str, type] = {
    "ocsvm": OCSVM,
    "iforest": IsolationForestDetector,
    "kde": KDEDetector,
    "ssad": SSAD,
}
