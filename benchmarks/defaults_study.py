"""Choose Deep SAD's tabular defaults on the development suite, by average rank.

Trains candidate recipes of Deep SAD on every dataset of the tabular development suite
(the six ODDS sets and the 31 ADBench sets), in the paper's clean scenario and in the
polluted one, and prints each candidate's average rank (and mean AUC) per scenario,
with an unlabeled Isolation Forest as the yardstick. Rows are appended to a JSON-lines
file, so an interrupted run continues where it stopped::

    python benchmarks/defaults_study.py --data-root ../shared/data --out results/defaults_study.jsonl
    python benchmarks/defaults_study.py --out results/defaults_study.jsonl --report-only

The candidates differ in one setting each from the chosen default (``default``), so the
table says what each choice is worth. (In the first run, before the default ensemble
divided each network's distances by its median training distance, the candidates kept
the plain mean; its rows are relabelled: the plain-mean default as ``ensemble-raw-mean``,
the median-scaled variant computed from it as ``default``.) Training sets are capped (``--max-train``,
stratified) to keep the study to about an hour on 2 cores; test sets stay whole.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

ODDS = ["arrhythmia", "cardio", "satellite", "satimage-2", "shuttle", "thyroid"]

#: candidate name -> DeepSAD parameters (the "paper" one is built with DeepSAD.paper)
SAD_CANDIDATES: dict[str, dict] = {
    "default": {},
    "batchnorm": {"network": {"type": "mlp-auto", "batch_norm": True}},
    "gain1": {"network": {"type": "mlp-auto", "init_gain": 1.0}},
    "gain0.25": {"network": {"type": "mlp-auto", "init_gain": 0.25}},
    "milestone50": {"lr_milestones": (50,)},
    "paper": {"preset": "paper"},
}

#: Deep SVDD (no labels): does it want Deep SAD's recipe, BatchNorm, or pretraining?
#: (Its default has BatchNorm since this study: ONE_CLASS_TABULAR_RECIPE.)
SVDD_CANDIDATES: dict[str, dict] = {
    "default": {},
    "no-batchnorm": {"network": {"type": "mlp-auto", "batch_norm": False}},
    "pretrain": {"pretrain": True},
    "pretrain-no-batchnorm": {"pretrain": True, "network": {"type": "mlp-auto", "batch_norm": False}},
    "paper-5": {"preset": "paper", "n_networks": 5},
    "paper": {"preset": "paper"},
}


def suite(data_root: Path) -> list[str]:
    names = list(ODDS)
    names += sorted(f"adbench-{p.stem}" for p in (data_root / "adbench").glob("*.npz"))
    return names


def load(name: str, data_root: Path) -> tuple[np.ndarray, np.ndarray]:
    if name.startswith("adbench-"):
        with np.load(data_root / "adbench" / f"{name[len('adbench-'):]}.npz", allow_pickle=False) as f:
            return np.asarray(f["X"], dtype=np.float64), np.asarray(f["y"]).astype(np.int64).ravel()
    from deepsad.data.loaders import load_odds

    return load_odds(name, data_root)


def draw(y: np.ndarray, seed: int, scenario: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training indices, their semi-labels, test indices (the same split in both scenarios)."""
    from deepsad.data.scenarios import sample_odds_scenario

    if scenario == "clean":
        d = sample_odds_scenario(y, gamma_l=0.01, gamma_p=0.0, label_available_if_short=True,
                                 rng=np.random.default_rng(seed))
        return d.train_indices, d.train_semi_labels.astype(np.int64), d.test_indices
    d = sample_odds_scenario(y, gamma_l=0.0, gamma_p=0.0, rng=np.random.default_rng(seed))
    test = d.test_indices
    train = np.setdiff1d(np.arange(y.size), test)
    anomalies = train[y[train] == 1]
    n_labeled = max(1, int(np.floor(0.1 * anomalies.size + 0.5))) if anomalies.size else 0
    labeled = np.random.default_rng([seed, 7]).permutation(anomalies)[:n_labeled]
    semi = np.zeros(train.size, dtype=np.int64)
    semi[np.isin(train, labeled)] = -1
    return train, semi, test


def cap(train: np.ndarray, semi: np.ndarray, limit: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """At most ``limit`` training rows: every labeled anomaly, the rest drawn at random."""
    if train.size <= limit:
        return train, semi
    rng = np.random.default_rng([seed, 11])
    labeled = np.flatnonzero(semi != 0)
    others = rng.permutation(np.flatnonzero(semi == 0))[: limit - labeled.size]
    keep = np.sort(np.concatenate([labeled, others]))
    return train[keep], semi[keep]


def make(candidate: str, input_dim: int, seed: int, detector: str = "deepsad"):
    import dataclasses

    from deepsad import DeepSAD, DeepSVDD
    from deepsad.models import auto_spec

    cls = DeepSVDD if detector == "deepsvdd" else DeepSAD
    params = dict((SVDD_CANDIDATES if detector == "deepsvdd" else SAD_CANDIDATES)[candidate])
    if params.pop("preset", None) == "paper":
        return cls.paper(random_state=seed, device="cpu", **params)
    network = params.pop("network", None)
    if network is not None:
        overrides = {k: v for k, v in network.items() if k != "type"}
        params["network"] = dataclasses.replace(auto_spec((input_dim,)), **overrides)
    return cls(random_state=seed, device="cpu", **params)


def run_unit(name: str, scenario: str, seed: int, data_root: str, max_train: int, done: set,
             detector: str = "deepsad") -> list[dict]:
    import torch
    from sklearn.ensemble import IsolationForest
    from sklearn.metrics import roc_auc_score

    from deepsad.data.preprocessing import Standardizer

    torch.set_num_threads(1)
    X, y = load(name, Path(data_root))
    train, semi, test = draw(y, seed, scenario)
    train, semi = cap(train, semi, max_train, seed)
    scaler = Standardizer().fit(X[train])
    Xtr = scaler.transform(X[train]).astype(np.float32)
    Xte = scaler.transform(X[test]).astype(np.float32)
    truth = y[test]
    rows = []

    def row(method: str, scores: np.ndarray, seconds: float) -> dict:
        return {"dataset": name, "scenario": scenario, "seed": seed, "method": method,
                "auc": float(roc_auc_score(truth, scores)), "seconds": round(seconds, 3),
                "n_train": int(train.size), "n_test": int(test.size)}

    if ("iforest",) not in done:
        t = time.perf_counter()
        forest = IsolationForest(n_estimators=100, max_samples=256, random_state=seed).fit(Xtr)
        rows.append(row("iforest", -forest.score_samples(Xte), time.perf_counter() - t))
    candidates = SVDD_CANDIDATES if detector == "deepsvdd" else SAD_CANDIDATES
    for candidate in candidates:
        if (candidate,) in done:
            continue
        t = time.perf_counter()
        est = make(candidate, Xtr.shape[1], seed, detector).fit(Xtr, semi)
        seconds = time.perf_counter() - t
        rows.append(row(candidate, est.anomaly_score(Xte), seconds))
        if candidate == "default" and detector == "deepsad":
            # the ensemble's first network is the single-network fit with the same seed
            per = [np.linalg.norm(est.embed(Xte, network=k) - est.centers_[k], axis=1) for k in range(est.n_networks_)]
            rows.append(row("single-network", per[0], float("nan")))
            # the plain mean of the networks' distances (the shipped default divides each
            # by the network's median training distance first)
            rows.append(row("ensemble-raw-mean", np.mean(per, axis=0), float("nan")))
    return rows


def average_ranks(rows: list[dict], scenario: str) -> tuple[list[tuple[str, float, float, int]], int]:
    import pandas as pd

    frame = pd.DataFrame([r for r in rows if r["scenario"] == scenario])
    if frame.empty:
        return [], 0
    table = frame.groupby(["dataset", "method"])["auc"].mean().unstack()
    table = table.dropna()
    ranks = table.rank(axis=1, ascending=False).mean()
    means = table.mean()
    beats_if = {m: int((table[m] > table["iforest"]).sum()) for m in table.columns}
    out = sorted(((m, float(ranks[m]), float(means[m]), beats_if[m]) for m in table.columns), key=lambda t: t[1])
    return out, len(table)


def report(rows: list[dict]) -> str:
    lines = []
    for scenario in ("clean", "polluted"):
        ranked, n = average_ranks(rows, scenario)
        if not ranked:
            continue
        lines.append(f"\n{scenario}: {n} datasets (mean over seeds)\n")
        lines.append("| method | average rank | mean AUC | beats IF on |")
        lines.append("|---|---|---|---|")
        for method, rank, mean, wins in ranked:
            lines.append(f"| {method} | {rank:.2f} | {100 * mean:.1f} | {wins}/{n} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=os.environ.get("DEEPSAD_DATA", "../shared/data"))
    parser.add_argument("--out", default="results/defaults_study.jsonl")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--max-train", type=int, default=4000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", nargs="+", help="datasets to run (default: the whole suite)")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--detector", choices=("deepsad", "deepsvdd"), default="deepsad",
                        help="whose candidates to train (deepsvdd: does it want the same recipe?)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = [json.loads(line) for line in out.read_text().splitlines() if line.strip()] if out.exists() else []
    if not args.report_only:
        data_root = Path(args.data_root)
        names = args.only or suite(data_root)
        done: dict[tuple, set] = {}
        for r in rows:
            done.setdefault((r["dataset"], r["scenario"], r["seed"]), set()).add((r["method"],))
        units = [(n, s, seed) for n in names for s in ("clean", "polluted") for seed in args.seeds]
        # a unit is done when every trained candidate and IF have a row
        candidates = SVDD_CANDIDATES if args.detector == "deepsvdd" else SAD_CANDIDATES
        wanted = {(c,) for c in candidates} | {("iforest",)}
        units = [u for u in units if not wanted <= done.get(u, set())]
        start = time.perf_counter()
        with ProcessPoolExecutor(args.workers) as pool, out.open("a") as sink:
            futures = {pool.submit(run_unit, *u, str(data_root), args.max_train, done.get(u, set()), args.detector): u
                       for u in units}
            for i, future in enumerate(as_completed(futures), 1):
                unit = futures[future]
                try:
                    new = future.result()
                except Exception as error:  # a failing dataset is reported, the study goes on
                    print(f"{unit}: failed: {type(error).__name__}: {error}", file=sys.stderr)
                    continue
                for r in new:
                    sink.write(json.dumps(r) + "\n")
                sink.flush()
                rows.extend(new)
                print(f"[{i}/{len(units)}] {unit} {time.perf_counter() - start:.0f} s", file=sys.stderr)
    print(report(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
