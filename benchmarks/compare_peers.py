"""Deep SAD measured side by side with its peers (DeepOD, PyOD) in one run.

Rows: deepsad's DeepSAD (autoencoder pretraining + training; on the image sets also with
precision="bfloat16"), DeepOD's DeepSAD and PyOD's
DeepSVDD at matched settings on

* cardio (ODDS protocol, MLP 32-16-8),
* MNIST one-class (normal 0, known anomaly 1, gamma_l = 0.05, LeNet-MNIST),
* CIFAR-10 one-class (normal 0, known anomaly 1, gamma_l = 0.05, LeNet-CIFAR),

plus the compute floor of the MNIST LeNet (a bare training loop). Columns: wall time,
seconds per pretraining / training epoch, training samples/s, peak memory, test AUC,
scoring throughput. Prints the table and writes a markdown report with machine
information, versions and thread settings.

Each (dataset, method) runs in its own worker process, one after another, so that peak
memory is per method and a crashing peer cannot take the run down; any failure is
recorded in the table with its message.

    python benchmarks/compare_peers.py --data-root ../shared/data --out docs/performance.md
    python benchmarks/compare_peers.py --quick                      # smoke test, < 2 minutes
    python benchmarks/compare_peers.py --only cardio mnist:ours --epochs mnist=20 --seeds 0 1 2

The peers are installed by ``scripts/bench.sh`` (the ``bench`` extra plus DeepOD without
its dependencies: DeepOD pins torch < 1.13.1, which would replace our torch).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from peerbench import report
from peerbench.workloads import DATASETS

METHODS = ("ours", "ours-bf16", "floor", "deepod", "pyod")
FLOOR_DATASETS = ("mnist",)
#: bfloat16 pays off for the LeNets' convolutions; the cardio MLP is dispatch-bound
BF16_DATASETS = ("mnist", "cifar10")
DEFAULT_EPOCHS = {"cardio": 150, "mnist": 10, "cifar10": 5}
QUICK = {
    "epochs": {"cardio": 3, "mnist": 1, "cifar10": 1},
    "train_subset": {"cardio": None, "mnist": 1000, "cifar10": 400},
    "test_subset": {"cardio": None, "mnist": 1000, "cifar10": 400},
    "score_rows": {"cardio": 100_000, "mnist": 2_000, "cifar10": 1_000},
}
SCORE_ROWS = {"cardio": 1_000_000, "mnist": 20_000, "cifar10": 10_000}
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")


def _epochs(values: list[str] | None, base: dict[str, int]) -> dict[str, int]:
    epochs = dict(base)
    for value in values or []:
        name, _, number = value.rpartition("=")
        if name and name not in DATASETS:
            raise SystemExit(f"--epochs: unknown dataset {name!r} (choose from {', '.join(DATASETS)})")
        if not number.isdigit():
            raise SystemExit(f"--epochs: {value!r} is neither N nor DATASET=N")
        if name:
            epochs[name] = int(number)
        else:
            epochs = dict.fromkeys(epochs, int(number))
    if any(e < 1 for e in epochs.values()):
        raise SystemExit("--epochs must be >= 1")
    return epochs


def _plan(only: list[str] | None) -> list[tuple[str, str]]:
    plan = [(d, m) for d in DATASETS for m in METHODS
            if (m != "floor" or d in FLOOR_DATASETS) and (m != "ours-bf16" or d in BF16_DATASETS)]
    if not only:
        return plan
    for token in only:
        parts = token.split(":")
        if not all(p in DATASETS or p in METHODS for p in parts):
            raise SystemExit(f"--only: {token!r} names no dataset ({', '.join(DATASETS)}) or method ({', '.join(METHODS)})")

    def chosen(dataset: str, method: str) -> bool:
        for token in only:
            parts = token.split(":")
            if all(p in (dataset, method) for p in parts):
                return True
        return False

    selected = [(d, m) for d, m in plan if chosen(d, m)]
    # an explicitly named floor on another image dataset is allowed
    for token in only:
        parts = token.split(":")
        if "floor" in parts:
            for d in parts:
                if d in DATASETS and DATASETS[d]["kind"] == "images" and (d, "floor") not in selected:
                    selected.append((d, "floor"))
    return selected


# ----------------------------------------------------------------------------- worker


def worker(spec_path: str, out_path: str) -> None:
    """Run one (dataset, method) for every seed; write the result rows as JSON after each seed."""
    import torch
    from peerbench.runners import RUNNERS, error_text
    from peerbench.workloads import warmup_workload

    from deepsad.training import keep_freed_memory, tuned_threads

    spec = json.loads(Path(spec_path).read_text())
    torch.set_num_threads(spec["threads"])
    # the deepsad command's CPU settings (a library fit leaves them to its caller); every row
    # (peers, compute floor, stock loop, ours) runs under the same malloc settings
    keep_freed_memory()
    results: list[dict] = []
    runner, settings = RUNNERS[spec["method"]], spec["settings"]
    warmup_s = None
    for seed in spec["seeds"]:
        try:
            workload = _cached_workload(spec, seed)
            if warmup_s is None and not spec["quick"]:  # once per process, untimed; errors show in the timed fit
                started = time.perf_counter()
                try:
                    with tuned_threads():
                        runner(warmup_workload(workload, settings["batch_size"]),
                               dict(settings, epochs=1, score_rows=1000, floor_repeats=1))
                except Exception:  # noqa: BLE001
                    pass
                warmup_s = time.perf_counter() - started
            with tuned_threads():  # deepsad's fits pick their threads as under the deepsad command
                rows = runner(workload, settings)
            for row in rows:
                row["warmup_s"] = warmup_s
            results.extend(rows)
        except Exception as error:  # noqa: BLE001 - every failure becomes a row of the table
            results.append(_error_row(spec, seed, error_text(error)))
        Path(out_path).write_text(json.dumps({"results": results, "threads": report.torch_threads()}))


def _cached_workload(spec: dict, seed: int):
    """The workload of this draw, decoded from the data files once per run and kept in the run's cache folder."""
    from peerbench.workloads import Workload, load_workload

    name, cache = spec["dataset"], spec.get("cache_dir")
    path = Path(cache) / f"{name}-{seed}-{spec['train_subset']}-{spec['test_subset']}.npz" if cache else None
    if path is not None and path.is_file():
        with np.load(path) as f:
            summary = {k[len("summary_"):]: int(f[k]) for k in f.files if k.startswith("summary_")}
            return Workload(name, seed, f["X_train"], f["semi_labels"], f["X_test"], f["y_test"], summary)
    workload = load_workload(name, spec["data_root"], seed, train_subset=spec["train_subset"],
                             test_subset=spec["test_subset"])
    if path is not None:
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, X_train=workload.X_train, semi_labels=workload.semi_labels, X_test=workload.X_test,
                 y_test=workload.y_test, **{f"summary_{k}": v for k, v in workload.summary.items()})
        tmp.replace(path)
    return workload


def _error_row(spec: dict, seed: int, message: str) -> dict:
    labels = {"ours": "deepsad DeepSAD", "ours-bf16": "deepsad DeepSAD, bfloat16 autocast",
              "floor": "compute floor (bare loop)", "deepod": "DeepOD DeepSAD",
              "pyod": "PyOD DeepSVDD"}
    return {"dataset": spec["dataset"], "method": spec["method"], "label": labels[spec["method"]], "network": "",
            "seed": seed, "n_train": None, "n_labeled_anomaly": None, "pretrain_epochs": 0,
            "train_epochs": spec["settings"]["epochs"], "note": "", "error": message}


def _run_worker(spec: dict, timeout: float, threads: int) -> tuple[list[dict], dict | None]:
    env = dict(os.environ, **{k: str(threads) for k in THREAD_VARIABLES})
    with tempfile.TemporaryDirectory(prefix="compare_peers_") as tmp:
        spec_path, out_path = Path(tmp) / "spec.json", Path(tmp) / "out.json"
        spec_path.write_text(json.dumps(spec))
        command = [sys.executable, str(Path(__file__).resolve()), "--worker", str(spec_path), str(out_path)]
        problem = None
        try:
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, check=False)
            if done.returncode != 0:
                tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or [""]
                problem = f"worker exited with status {done.returncode}: {tail[0]}"
        except subprocess.TimeoutExpired:
            problem = f"TimeoutExpired: worker ran past --row-timeout {timeout:.0f} s"
        try:
            data = json.loads(out_path.read_text())
        except (OSError, ValueError):
            data = {"results": [], "threads": None}
            problem = problem or "worker wrote no readable results"
    results = data["results"]
    if problem:
        done_seeds = {r["seed"] for r in results}
        results += [_error_row(spec, seed, problem) for seed in spec["seeds"] if seed not in done_seeds]
    return results, data.get("threads")


# ----------------------------------------------------------------------------- main


def _run_stacked(args: argparse.Namespace, data_root: str | None) -> list[tuple[str, str]]:
    """Run the grid-throughput benchmarks (bench_stacked.py, bench_grid.py, bench_kernel_search.py).

    Each in a fresh process.

    Returns (command, markdown) pairs: the table lines of each run and any summary line.
    """
    here = Path(__file__).parent
    if args.quick:
        runs = [("bench_stacked.py", ["--workload", "cardio", "--seeds", "3", "--epochs", "5"]),
                ("bench_stacked.py", ["--workload", "mnist", "--seeds", "2", "--epochs", "1"]),
                ("bench_grid.py", ["--known-classes", "2", "--epochs", "1", "--stack", "2"]),
                ("bench_kernel_search.py", ["--dataset", "cardio"])]
    else:
        runs = [("bench_stacked.py", ["--workload", "cardio", "--seeds", "10"]),
                ("bench_stacked.py", ["--workload", "mnist", "--seeds", "2", "--epochs", "10"]),
                ("bench_grid.py", ["--known-classes", "4", "--epochs", "3", "--stack", "2"]),
                ("bench_kernel_search.py", ["--dataset", "mnist"])]
    sections = []
    for script, extra in runs:
        argv = [*extra, "--threads", str(args.threads)]
        shown = f"python benchmarks/{script} --data-root ../shared/data " + " ".join(shlex.quote(a) for a in argv)
        if data_root:
            argv += ["--data-root", data_root]
        print(f"  grid: {shown}", flush=True)
        done = subprocess.run([sys.executable, str(here / script), *argv], capture_output=True, text=True,
                              timeout=args.row_timeout,
                              env={**os.environ, **{name: str(args.threads) for name in THREAD_VARIABLES}})
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            sections.append((shown, f"**not run:** {last}"))
            continue
        lines = done.stdout.strip().splitlines()
        table = "\n".join(line for line in lines if line.startswith("|"))
        notes = [line for line in lines[1:] if not line.startswith("|")]
        text = table + ("\n\n" + "\n".join(notes) if notes else "")
        print(text, flush=True)
        sections.append((lines[0] + "; `" + shown + "`" if lines else shown, text))
    return sections


def _status(r: dict) -> str:
    if r.get("error"):
        return f"error: {r['error']}"
    parts = []
    for key, text in (("wall_s", "wall {:.1f} s"), ("pretrain_s_per_epoch", "AE {:.3f} s/ep"),
                      ("train_s_per_epoch", "train {:.3f} s/ep"), ("test_auc", "AUC {:.4f}")):
        if r.get(key) is not None:
            parts.append(text.format(r[key]))
    return ", ".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default=None, help="data root (default: $DEEPSAD_DATA or the cache folder)")
    parser.add_argument("--out", default="docs/performance.md", help="markdown report to write ('' for none)")
    parser.add_argument("--epochs", nargs="+", metavar="N|DATASET=N",
                        help=f"epochs (pretraining = training) for all datasets or per dataset; "
                             f"default {' '.join(f'{k}={v}' for k, v in DEFAULT_EPOCHS.items())}")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--only", nargs="+", metavar="DATASET|METHOD|DATASET:METHOD",
                        help=f"datasets {list(DATASETS)}, methods {list(METHODS)}")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads and *_NUM_THREADS (default 2)")
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--device", default="cpu", help="torch device for deepsad and DeepOD (PyOD runs on the CPU)")
    parser.add_argument("--score-rows", type=int, default=None,
                        help="rows for the scoring throughput (default cardio 1M synthetic, MNIST 20k, CIFAR 10k)")
    parser.add_argument("--quick", action="store_true", help="few epochs and subsets: a smoke test in < 2 minutes")
    parser.add_argument("--floor-repeats", type=int, default=2,
                        help="alternating repeats of floor and our fit for the floor ratio (fastest kept)")
    parser.add_argument("--row-timeout", type=float, default=3600.0, help="seconds before a worker is stopped")
    parser.add_argument("--render", metavar="JSON",
                        help="only re-render --out from the raw measurements a run saved (docs/performance.json)")
    parser.add_argument("--no-stacked", action="store_true",
                        help="skip the sequential-vs-stacked grid throughput section (benchmarks/bench_stacked.py)")
    parser.add_argument("--worker", nargs=2, metavar=("SPEC", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(*args.worker)
        return 0
    if args.render:
        _render(Path(args.render), Path(args.out))
        print(f"wrote {args.out} from {args.render}")
        return 0

    started_at, started = dt.datetime.now(dt.timezone.utc), time.perf_counter()
    epochs = _epochs(args.epochs, QUICK["epochs"] if args.quick else DEFAULT_EPOCHS)
    plan = _plan(args.only)
    seeds = args.seeds[:1] if args.quick else args.seeds
    score_rows = {d: args.score_rows or (QUICK["score_rows"] if args.quick else SCORE_ROWS)[d] for d in DATASETS}
    data_root = str(Path(args.data_root).resolve()) if args.data_root else None
    load_before = report.load_average()
    print(f"compare_peers: {len(plan)} workers, seeds {seeds}, {args.threads} threads, epochs {epochs}"
          + (" [quick]" if args.quick else ""), flush=True)

    results: list[dict] = []
    threads_seen = None
    cache = tempfile.TemporaryDirectory(prefix="compare_peers_data_")
    for dataset, method in plan:
        settings = {"epochs": epochs[dataset], "batch_size": args.batch_size, "lr": args.lr, "device": args.device,
                    "score_rows": score_rows[dataset], "floor_repeats": 1 if args.quick else args.floor_repeats}
        spec = {"dataset": dataset, "method": method, "seeds": seeds, "threads": args.threads, "data_root": data_root,
                "settings": settings, "cache_dir": cache.name, "quick": args.quick,
                "train_subset": QUICK["train_subset"][dataset] if args.quick else None,
                "test_subset": QUICK["test_subset"][dataset] if args.quick else None}
        t0 = time.perf_counter()
        rows, threads = _run_worker(spec, 300.0 if args.quick else args.row_timeout, args.threads)
        threads_seen = threads_seen or threads
        results += rows
        for r in rows:
            print(f"  {dataset:8} {r['label']:40} seed {r['seed']}: {_status(r)}", flush=True)
        print(f"  ({dataset}/{method} worker: {time.perf_counter() - t0:.0f} s)", flush=True)

    cache.cleanup()
    stacked = [] if args.no_stacked else _run_stacked(args, data_root)
    elapsed = time.perf_counter() - started
    rows = report.aggregate(results)
    print()
    print(report.results_table(rows))
    floor = report.floor_table(rows)
    if floor:
        print()
        print(floor)
    sources = sorted({r["peak_rss_source"] for r in results if r.get("peak_rss_source")})
    memory_source = ("peak resident set size of the worker process during `fit` and the test scoring: "
                     + " / ".join(sources or ["VmHWM (reset before fit)"]) + "; VmHWM is the kernel's high-water "
                     "mark from `/proc/self/status`, reset just before `fit` by writing 5 to `/proc/self/clear_refs`")
    command = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__), *(argv or sys.argv[1:])])
    if args.out:
        settings_text = {
            "quick": args.quick, "epochs": {d: epochs[d] for d in dict.fromkeys(d for d, _ in plan)},
            "seeds": seeds, "batch_size": args.batch_size, "lr": args.lr, "device": args.device, "threads": args.threads,
            "score_rows_text": ", ".join(
                f"{d} {score_rows[d]:,} " + ("synthetic rows" if DATASETS[d]["kind"] == "odds" else "test images, tiled")
                for d in dict.fromkeys(d for d, _ in plan)),
        }
        measured = {
            "command": command, "settings": settings_text, "machine": report.machine_info(), "load_before": load_before,
            "load_after": report.load_average(), "vers": report.versions(),
            "threads": threads_seen or {"requested": args.threads}, "results": results,
            "started": started_at.isoformat(), "elapsed_s": elapsed, "memory_source": memory_source, "stacked": stacked,
        }
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        # the raw measurements beside the page, so the page can be re-rendered without re-measuring
        out.with_suffix(".json").write_text(json.dumps(measured, indent=1, default=str) + "\n")
        _render(out.with_suffix(".json"), out)
        print(f"\nwrote {out} and {out.with_suffix('.json')} ({elapsed / 60:.1f} min)")
    return 0


def _render(measured_path: Path, out: Path) -> None:
    """Write the markdown page from the raw measurements of a run (``--render``)."""
    measured = json.loads(measured_path.read_text())
    measured["started"] = dt.datetime.fromisoformat(measured["started"])
    measured["stacked"] = [tuple(pair) for pair in measured.get("stacked") or []]
    out.write_text(report.markdown(**measured))


if __name__ == "__main__":
    sys.exit(main())
