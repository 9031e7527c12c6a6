"""What the tabular defaults cost: DeepSAD() (5 networks from scratch) vs DeepSAD.paper().

The quality issue's budget: the default ensemble must not cost more than one fit with the
paper's settings (autoencoder pretraining + 150 epochs) on cardio and satellite. Each
setting is fitted in alternation, on the paper's Table 6 draw (60:40 split, gamma_l =
.01, standardized), and the median wall time is reported with the median CPU time of the
process (both trainings run on one thread under ``tuned_threads()``, so on idle cores the
two agree; on shared cores the CPU time is the fairer comparison) and the test AUC::

    python benchmarks/bench_defaults_cost.py --data-root ../shared/data [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np


def main(argv: list[str] | None = None) -> int:
    from sklearn.metrics import roc_auc_score

    from deepsad import DeepSAD
    from deepsad.data.loaders import load_odds
    from deepsad.data.scenarios import sample_odds_scenario
    from deepsad.training import tuned_threads

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=os.environ.get("DEEPSAD_DATA", "../shared/data"))
    parser.add_argument("--datasets", nargs="+", default=["cardio", "satellite"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    settings = {
        "DeepSAD() (defaults)": lambda seed: DeepSAD(random_state=seed, device="cpu"),
        "DeepSAD.paper()": lambda seed: DeepSAD.paper(random_state=seed, device="cpu"),
    }
    print("| dataset | setting | median fit s | median CPU s | wall runs | test AUC |")
    print("|---|---|---|---|---|---|")
    for name in args.datasets:
        X, y = load_odds(name, args.data_root)
        draw = sample_odds_scenario(y, gamma_l=0.01, rng=np.random.default_rng(args.seed))
        X_train = X[draw.train_indices].astype(np.float32)
        X_test = X[draw.test_indices].astype(np.float32)
        times: dict[str, list[float]] = {label: [] for label in settings}
        cpu_times: dict[str, list[float]] = {label: [] for label in settings}
        aucs: dict[str, float] = {}
        for _ in range(args.repeats):
            for label, make in settings.items():  # alternating, so drifts hit both alike
                started, cpu_started = time.perf_counter(), time.process_time()
                with tuned_threads():  # the deepsad command's CPU thread choice
                    est = make(args.seed).fit(X_train, draw.train_semi_labels)
                times[label].append(time.perf_counter() - started)
                cpu_times[label].append(time.process_time() - cpu_started)
                aucs[label] = roc_auc_score(draw.test_ground_truth, est.anomaly_score(X_test))
        for label in settings:
            runs = ", ".join(f"{t:.2f}" for t in times[label])
            print(
                f"| {name} | {label} | {statistics.median(times[label]):.2f} | "
                f"{statistics.median(cpu_times[label]):.2f} | {runs} | {100 * aucs[label]:.1f} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
