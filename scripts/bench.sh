#!/usr/bin/env bash
# Measure deepsad beside its peers (DeepOD, PyOD): installs what the benchmark needs into
# .venv when it is missing, then runs benchmarks/compare_peers.py, which prints the table and
# writes docs/performance.md. Extra arguments go to compare_peers.py, e.g.
#   bash scripts/bench.sh --quick                 # smoke test, < 2 minutes
#   bash scripts/bench.sh --only cardio --seeds 0 1 2
#
# Installing never replaces torch, numpy, scipy or scikit-learn: they are pinned to the installed
# versions for the install. PyOD comes from the `bench` extra; DeepOD is installed with --no-deps
# because every DeepOD release pins torch<1.13.1 (its other requirements are deepsad's own).
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -x .venv/bin/python ]] || bash scripts/setup.sh
PY=.venv/bin/python
DEEPOD_VERSION=${DEEPOD_VERSION:-0.4.1}

if ! "$PY" -c "import pyod.models.deep_svdd, deepod.models.tabular" >/dev/null 2>&1; then
  constraints=$(mktemp)
  "$PY" - >"$constraints" <<'EOF'
from importlib.metadata import version
for name in ("torch", "numpy", "scipy", "scikit-learn"):
    print(f"{name}=={version(name)}")
EOF
  echo "bench.sh: installing the peers into .venv (pinned: $(tr '\n' ' ' <"$constraints"))"
  "$PY" -m pip install --quiet -c "$constraints" -e ".[bench]"
  "$PY" -m pip install --quiet --no-deps "deepod==${DEEPOD_VERSION}"
  rm -f "$constraints"
fi

exec "$PY" benchmarks/compare_peers.py --data-root "${DEEPSAD_DATA:-../shared/data}" --out docs/performance.md "$@"
