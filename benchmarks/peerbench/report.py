"""Machine and version facts, aggregation over seeds, and the markdown report."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import statistics
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]

PEER_NOTES = {
    "deepod": (
        "DeepOD `deepod.models.tabular.DeepSAD`: given y with 1 = labeled anomaly, 0 = unlabeled. "
        "Matched: data and split, epochs (= our Deep SAD training epochs), batch size, learning rate, "
        "hidden sizes and representation size, bias-free layers, leaky ReLU. Not matchable through its API: "
        "no autoencoder pretraining (random start), no learning-rate schedule, weight decay fixed at 1e-5, "
        "no BatchNorm, leaky ReLU slope 0.01 (torch default), and its training loader is a "
        "`WeightedRandomSampler` that balances labeled anomalies and unlabeled samples in every batch "
        "(samples drawn with replacement). Tabular MLP only: 4-D image arrays are rejected."
    ),
    "pyod": (
        "PyOD `pyod.models.deep_svdd.DeepSVDD` (unsupervised one-class Deep SVDD): fit on all training "
        "samples without labels (the labeled anomalies included as ordinary samples), `preprocessing=False` "
        "(it gets the same standardized rows), `dropout_rate=0`, `hidden_activation='leaky_relu'`, "
        "`l2_regularizer=1e-6`. Matched: data, epochs, batch size, learning rate, hidden and representation "
        "sizes. Not matchable: no pretraining, no learning-rate schedule, an extra fixed 1e-6 * sum of weight "
        "norms in the loss, an activation after the output layer, the best-loss epoch's weights are kept, and "
        "scoring pushes all rows through the network in a single batch. Tabular MLP only: `check_array` "
        "rejects 4-D image arrays."
    ),
}


# ----------------------------------------------------------------------------- facts


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def machine_info() -> dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo").splitlines()
                if line.startswith("model name")), platform.processor() or "unknown")
    mem = next((line.split()[1] for line in _read("/proc/meminfo").splitlines() if line.startswith("MemTotal")), None)
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = None
    quota = _read("/sys/fs/cgroup/cpu.max").strip()
    return {
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "cpus_available": affinity,
        "cgroup_cpu_max": quota or None,
        "memory_gib": round(int(mem) / 2**20, 1) if mem else None,
        "os": platform.platform(),
        "python": platform.python_version(),
    }


def load_average() -> tuple[float, float, float] | None:
    try:
        return os.getloadavg()
    except OSError:
        return None


def versions() -> dict[str, str]:
    out = {}
    for name in ("deepsad", "torch", "numpy", "scipy", "scikit-learn", "deepod", "pyod", "numba"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False,
                                timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, timeout=10, check=False).stdout.strip()
        if commit:
            out["deepsad"] += f" (git {commit}{', uncommitted changes' if dirty else ''})"
    except (OSError, subprocess.SubprocessError):
        pass
    return out


def torch_threads() -> dict[str, Any]:
    """Thread settings of this worker, and whether malloc keeps freed memory in it."""
    import torch

    from deepsad.training import allocator

    return {
        "torch.get_num_threads()": torch.get_num_threads(),
        "torch.get_num_interop_threads()": torch.get_num_interop_threads(),
        **{k: os.environ.get(k, "unset") for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                   "NUMBA_NUM_THREADS")},
        # set at worker start, so peers, floor and stock loops run under deepsad's allocator settings too
        "deepsad.training.keep_freed_memory() in effect": allocator.keep_freed_memory(),
    }


# ----------------------------------------------------------------------------- aggregation

NUMERIC = ("wall_s", "pretrain_s_per_epoch", "train_s_per_epoch", "train_samples_per_s", "peak_rss_mib",
           "base_rss_mib", "score_samples_per_s", "paired_ours_pretrain_s_per_epoch", "paired_ours_train_s_per_epoch",
           "stock_pretrain_s_per_epoch", "stock_train_s_per_epoch", "warmup_s")


def aggregate(results: list[dict]) -> list[dict]:
    """One row per (dataset, label), in first-seen order: means over the seeds that ran."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in results:
        groups.setdefault((r["dataset"], r["label"]), []).append(r)
    rows = []
    for rs in groups.values():
        ok = [r for r in rs if not r.get("error")]
        failed = [r for r in rs if r.get("error")]
        row = {k: rs[0].get(k) for k in ("dataset", "method", "label", "network", "n_train", "n_labeled_anomaly",
                                         "pretrain_epochs", "train_epochs", "note")}
        row["seeds"] = len(rs)
        row["ok"] = len(ok)
        for key in NUMERIC:
            values = [r[key] for r in ok if r.get(key) is not None]
            row[key] = statistics.fmean(values) if values else None
        aucs = [r["test_auc"] for r in ok if r.get("test_auc") is not None]
        row["auc_mean"] = statistics.fmean(aucs) if aucs else None
        row["auc_std"] = statistics.pstdev(aucs) if len(aucs) > 1 else None
        row["error"] = failed[0]["error"] if failed else None
        if failed and ok:
            row["error"] = f"{len(failed)}/{len(rs)} seeds failed: {failed[0]['error']}"
        rows.append(row)
    return rows


# ----------------------------------------------------------------------------- formatting


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "—"
    if value != value:  # NaN
        return "n/a"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.{digits}f}"


def _rate(value: Any) -> str:
    if value is None:
        return "—"
    if value >= 1e6:
        return f"{value / 1e6:.2f} M"
    if value >= 1e3:
        return f"{value / 1e3:.1f} k"
    return f"{value:.0f}"


def _short(text: str, limit: int = 160) -> str:
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


HEADER = ("dataset", "method", "network", "epochs AE+train", "n train (lab. anom.)", "wall s", "AE s/epoch",
          "train s/epoch", "train samples/s", "peak RSS MiB (pre-fit)", "test AUC", "score samples/s", "notes")


def results_table(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "|".join("---" for _ in HEADER) + "|"]
    for r in rows:
        if r["ok"] == 0:
            cells = [r["dataset"], r["label"], r["network"] or "", "", "", "", "", "", "", "", "", "",
                     "**not run:** " + _short(r["error"] or "")]
        else:
            auc = "—" if r["auc_mean"] is None else f"{r['auc_mean']:.4f}"
            if r["auc_std"] is not None:
                auc += f" ± {r['auc_std']:.4f}"
            peak = "—" if r["peak_rss_mib"] is None else f"{r['peak_rss_mib']:.0f}"
            if r["base_rss_mib"] is not None and r["peak_rss_mib"] is not None:
                peak += f" ({r['base_rss_mib']:.0f})"
            notes = "; ".join(x for x in (r["note"], r["error"] and _short(r["error"])) if x)
            if r["seeds"] > 1:
                notes = f"mean of {r['ok']} seeds" + ("; " + notes if notes else "")
            cells = [
                r["dataset"], r["label"], r["network"], f"{r['pretrain_epochs']}+{r['train_epochs']}",
                f"{r['n_train']} ({r['n_labeled_anomaly']})", _num(r["wall_s"], 2), _num(r["pretrain_s_per_epoch"]),
                _num(r["train_s_per_epoch"]), _rate(r["train_samples_per_s"]), peak, auc,
                _rate(r["score_samples_per_s"]), notes,
            ]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def floor_table(rows: list[dict]) -> str | None:
    lines = []
    for r in rows:
        if r["method"] != "floor" or not r["ok"]:
            continue
        for phase, key in (("autoencoder pretraining", "pretrain_s_per_epoch"), ("Deep SAD training", "train_s_per_epoch")):
            mine, floor, stock = r.get("paired_ours_" + key), r.get(key), r.get("stock_" + key)
            ratio = f"{mine / floor:.2f}" if mine and floor else "—"
            faster = f"{stock / mine:.2f}" if mine and stock else "—"
            lines.append(f"| {r['dataset']} | {phase} | {_num(mine)} | {_num(floor)} | {ratio} | {_num(stock)} | {faster} |")
    if not lines:
        return None
    head = ("| dataset | phase | deepsad s/epoch | floor s/epoch | deepsad / floor | stock NCHW loop s/epoch "
            "| stock loop / deepsad |\n|---|---|---|---|---|---|---|")
    return head + "\n" + "\n".join(lines)


#: The authors' reference code on one MNIST cell of scenario (i), as issue 6 quotes it (2 threads,
#: torch 2.13 CPU, batch 200): seconds per autoencoder epoch and per Deep SAD epoch.
REFERENCE_MNIST_S_PER_EPOCH = (1.31, 0.46)


def _times(less: float) -> str:
    """``less`` = theirs / ours as words: '3.10x less' or '2.22x more'."""
    return f"{less:.2f}x less" if less >= 1 else f"{1 / less:.2f}x more"


def targets_table(rows: list[dict]) -> str | None:
    """Issue 6's speed targets against this run's numbers (ratios, not verdicts on other hosts)."""
    def ok(r: dict) -> bool:
        return r["ok"] > 0 and r.get("wall_s") is not None

    lines = []
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        ours = next((r for r in rows if r["dataset"] == dataset and r["method"] == "ours" and ok(r)), None)
        peers = [r for r in rows if r["dataset"] == dataset and r["method"] in ("deepod", "pyod") and ok(r)]
        if ours and peers:
            fastest = min(peers, key=lambda r: r["wall_s"])
            ratio = fastest["wall_s"] / ours["wall_s"]
            caveat = ("; not matched work: the peers have no convolutional network and run an MLP on the pixels"
                      if "flattened" in fastest["label"] else "")
            lines.append(f"| {dataset}: wall time vs the fastest peer (target: 5x less) | ours {_num(ours['wall_s'], 2)} s "
                         f"(pretraining included) vs {fastest['label']} {_num(fastest['wall_s'], 2)} s (no pretraining)"
                         f"{caveat} | {_times(ratio)} |")
        timed = [r for r in peers if r.get("train_s_per_epoch")]
        if ours and ours.get("train_s_per_epoch") and timed:
            fastest = min(timed, key=lambda r: r["train_s_per_epoch"])
            caveat = " (different networks)" if "flattened" in fastest["label"] else ""
            lines.append(f"| {dataset}: one training epoch vs the fastest peer's (the matched part of the work) | "
                         f"ours {_num(ours['train_s_per_epoch'])} s vs {fastest['label']} "
                         f"{_num(fastest['train_s_per_epoch'])} s{caveat} | "
                         f"{_times(fastest['train_s_per_epoch'] / ours['train_s_per_epoch'])} |")
        if ours and dataset == "cardio" and ours.get("score_samples_per_s"):
            rate = ours["score_samples_per_s"]
            lines.append(f"| cardio: scoring throughput (target: 1 M samples/s) | {_rate(rate)} samples/s | "
                         f"{rate / 1e6:.2f}x the target |")
        floor = next((r for r in rows if r["dataset"] == dataset and r["method"] == "floor" and r["ok"]), None)
        if floor:
            for phase, key in (("autoencoder", "pretrain_s_per_epoch"), ("Deep SAD", "train_s_per_epoch")):
                mine, bare = floor.get("paired_ours_" + key), floor.get(key)
                if mine and bare:
                    lines.append(f"| {dataset}: {phase} epoch vs the compute floor (target: within 2x) | "
                                 f"{_num(mine)} vs {_num(bare)} s | {mine / bare:.2f}x the floor |")
        if floor and dataset == "mnist":
            keys = ("pretrain_s_per_epoch", "train_s_per_epoch")
            mine = [floor.get("paired_ours_" + k) for k in keys]
            stock = [floor.get("stock_" + k) for k in keys]
            if all(mine) and all(stock):
                cell, stock_cell = 150 * sum(mine), 150 * sum(stock)
                lines.append(f"| mnist: one cell at 150 + 150 epochs vs the reference's way of computing it, same "
                             f"process (target: 3x less) | ours {cell:.0f} s vs stock-module NCHW bare loop "
                             f"{stock_cell:.0f} s (a lower bound on the reference code) | {_times(stock_cell / cell)} |")
        mixed = next((r for r in rows if r["dataset"] == dataset and r["method"] == "ours-bf16" and ok(r)), None)
        for mine, how in ((ours, "ours"), (mixed, "ours with bfloat16 autocast")):
            if dataset == "mnist" and mine and mine.get("pretrain_s_per_epoch") and mine.get("train_s_per_epoch"):
                cell = 150 * (mine["pretrain_s_per_epoch"] + mine["train_s_per_epoch"])
                reference = 150 * sum(REFERENCE_MNIST_S_PER_EPOCH)
                lines.append(f"| mnist: one cell at the paper's 150 + 150 epochs (target: 3x less than the reference) | "
                             f"{how} {cell:.0f} s projected from this run's s/epoch (test AUC {mine['auc_mean']:.4f}); "
                             f"the reference {reference:.0f} s as quoted in issue 6, measured on another host | "
                             f"{_times(reference / cell)} |")
    if not lines:
        return None
    return "| target | measured here | ratio |\n|---|---|---|\n" + "\n".join(lines)


def per_seed_table(results: list[dict]) -> str:
    head = ("| dataset | method | seed | load (1 min) before | wall s | CPU s / wall s in fit | warm-up s | AE s/epoch | "
            "train s/epoch | peak RSS MiB | test AUC | score samples/s | final loss (AE / train) | error |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in results:
        losses = ""
        if r.get("final_loss") is not None:
            pre = r.get("final_pretrain_loss")
            losses = f"{pre:.4g} / {r['final_loss']:.4g}" if pre is not None else f"{r['final_loss']:.4g}"
        auc = r.get("test_auc")
        lines.append(
            f"| {r['dataset']} | {r['label']} | {r['seed']} | {_num(r.get('load_1min_before'), 2)} | "
            f"{_num(r.get('wall_s'), 2)} | {_num(r.get('cpu_per_wall'), 2)} | {_num(r.get('warmup_s'), 1)} | "
            f"{_num(r.get('pretrain_s_per_epoch'))} | {_num(r.get('train_s_per_epoch'))} | "
            f"{_num(r.get('peak_rss_mib'))} | {'—' if auc is None else f'{auc:.4f}'} | "
            f"{_rate(r.get('score_samples_per_s'))} | {losses} | {_short(r.get('error') or '', 300)} |"
        )
    return "\n".join(lines)


def _load_warning(machine: dict, load_before, load_after, results: list[dict], settings: dict) -> list[str]:
    """A warning paragraph when other processes visibly competed for the CPUs during the run."""
    cpus = machine.get("cpus_available") or machine.get("logical_cpus") or 1
    loads = [x[0] for x in (load_before, load_after) if x] + [
        r["load_1min_before"] for r in results if r.get("load_1min_before") is not None]
    shares = [r["cpu_per_wall"] for r in results if r.get("cpu_per_wall") is not None]
    threads = settings.get("threads") or 1
    # a worker of ours adds up to `threads` to the load average by itself
    crowded = bool(loads) and max(loads) > max(cpus, threads) + 0.5 * cpus
    # (the CPU share is no criterion: tiny networks run most ops on one thread even on an idle machine)
    if not crowded:
        return []
    parts = []
    if loads:
        parts.append(f"1-minute load averages up to {max(loads):.1f} on {cpus} CPUs")
    if shares:
        parts.append(f"workers got {min(shares):.2f}-{max(shares):.2f} CPU seconds per wall second with "
                     f"{threads} threads")
    return [
        f"> **Warning: the machine was shared during this run** ({'; '.join(parts)}). Other processes competed "
        "for the cores, so the times below are inflated by different amounts in different rows and are not "
        "comparable with each other; AUCs and memory are unaffected. Rerun on an otherwise idle machine for "
        "timings.",
        "",
    ]


def _test_sizes(results: list[dict]) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for r in results:
        if r.get("n_test") and r["dataset"] not in sizes:
            sizes[r["dataset"]] = r["n_test"]
    return sizes


def markdown(*, command: str, settings: dict, machine: dict, load_before, load_after, vers: dict, threads: dict,
             results: list[dict], started: _dt.datetime, elapsed_s: float, memory_source: str,
             stacked: list[tuple[str, str]] | None = None) -> str:
    rows = aggregate(results)

    def fmt_load(x) -> str:
        return "unknown" if x is None else ", ".join(f"{v:.2f}" for v in x)

    out = [
        "# Performance: deepsad beside DeepOD and PyOD",
        "",
        f"Generated by `{command}` on {started:%Y-%m-%d %H:%M} UTC in {elapsed_s / 60:.1f} min"
        + (" (**--quick**: few epochs, subsets; smoke test only, not a measurement)." if settings["quick"] else "."),
        "Regenerate with `bash scripts/bench.sh` (installs the peers, then runs this command).",
        "",
        "Every row ran in its own fresh worker process, one after another, on the same data: each method gets "
        "the same training and test arrays of the same draw. Times are wall-clock seconds on a CPU; "
        "figures from a shared or loaded machine are noisy (see the load averages below).",
        "",
        *_load_warning(machine, load_before, load_after, results, settings),
        "## Results",
        "",
        results_table(rows),
        "",
    ]
    floor = floor_table(rows)
    if floor:
        out += [
            "### Compute floor (MNIST LeNet)",
            "",
            "A bare loop over preloaded batches of the same size through the same networks (built with "
            "`deepsad.models`; same memory formats, losses and Adam settings), doing forward, loss, backward "
            "and optimizer step and nothing else, for the same number of epochs. The ratio is the overhead "
            "of our training loop (batch gathering by index, loss bookkeeping, scheduler). The stock NCHW loop "
            "is the same bare loop computed the way the authors' reference code computes it (stock layers, "
            "`deepsad.models.to_stock_layers`: native `nn.BatchNorm2d`, separate leaky ReLU and max-pool, "
            "`nn.Upsample` before each `nn.ConvTranspose2d`; default NCHW memory format in both phases): a lower "
            "bound, on this machine and in the same process, on the reference code's time, which also pays a "
            "per-sample DataLoader (and, unlike this loop, glibc's default malloc thresholds: every worker here "
            "runs with `deepsad.training.keep_freed_memory()`, see the thread settings below).",
            "",
            floor,
            "",
        ]
    targets = targets_table(rows)
    if targets:
        out += [
            "### Speed targets (issue 6)",
            "",
            "Ratios computed from the rows above. The hosts lent to this project differ from session to "
            "session (the same bare loop has measured 0.74 and 1.9 s per MNIST autoencoder epoch), so the "
            "reference figures quoted in the issue compare only roughly with a projection from another run; "
            "the compute-floor ratio is measured in the same process and is the robust one.",
            "",
            targets,
            "",
        ]
    if stacked:
        out += [
            "### Grid throughput: sequential, stacked, parallel",
            "",
            "`bench_stacked.py`: K seeds of one grid cell (each seed draws its own training set) fitted one after "
            "another with `DeepSAD.fit`, then all K at once with `deepsad.fit_stacked` per strategy "
            "(`grouped`: one network of K-fold wider grouped layers, on CPU the MNIST LeNet in pairs; `vmap`: "
            "one functional forward mapped over stacked weights; `deepsad.training.stacked`). `bench_grid.py`: "
            "a slice of the MNIST Deep SAD column of Table 3 through the experiment runner: serial executor "
            "plain and with `--stack`, and the local executor with 2 worker processes of 1 thread each "
            "(`--executor local --workers 2`), plain and with `--stack`; and the full column "
            "(450 experiments) projected to the paper's 150 + 150 epochs. Each in a fresh process; `exp/h` = "
            "experiments per hour; AUCs are mean ± sample std; the paths must agree up to float rounding. "
            "`bench_kernel_search.py`: one OC-SVM task of the grid, the paper's 10 x 5 (gamma, nu) search on "
            "the flattened pixels of that MNIST cell, libsvm computing the kernel vs the candidates sharing one "
            "Gram matrix (`deepsad.baselines.GramMemo`).",
            "",
        ]
        for heading, table in stacked:
            out += [heading if heading.startswith(("torch", "OC-SVM")) else f"`{heading}`", "", table, ""]
    out += [
        "## Columns",
        "",
        "* **wall s**: the whole `fit` call. Ours: pretraining + centre + training + threshold. Peers: their "
        "setup, training and scoring of the training data. Data loading is excluded.",
        "* **AE s/epoch**, **train s/epoch**: time inside the training loops / epochs. Ours: each call of "
        "`deepsad.training.train` timed separately. DeepOD: its `_training` method. PyOD: `fit` minus its "
        "scoring of the training data (so its centre pass is included).",
        "* **train samples/s**: training samples / train s/epoch (the Deep SAD / Deep SVDD phase, not pretraining).",
        f"* **peak RSS MiB**: {memory_source}; in parentheses the RSS just before `fit` (interpreter, torch, "
        "the peer's imports and the loaded data), so the difference is what fitting added.",
        "* **test AUC**: ROC AUC of the anomaly scores on the test set: "
        + "; ".join(f"{d} {n} samples" for d, n in _test_sizes(results).items())
        + " (cardio: the 40 % test split; MNIST: the official test set; CIFAR-10: the 1000 test images "
        "available here" + ("; --quick: random subsets" if settings["quick"] else "") + ").",
        f"* **score samples/s**: the public scoring call (ours `anomaly_score`, DeepOD `decision_function`, "
        f"PyOD `decision_function`, peers including the standardization / flattening of the input) on "
        f"{settings['score_rows_text']}; best of up to 3 calls after a warm-up call.",
        "",
        "## Settings",
        "",
        f"* Epochs per dataset (deepsad: pretraining + training; peers: the training number): "
        f"{', '.join(f'{k} {v}+{v}' for k, v in settings['epochs'].items())}. The paper uses 150+150; "
        "fewer for the images, where the per-epoch figures are the point.",
        f"* Seeds: {settings['seeds']}. Batch size {settings['batch_size']}, Adam lr {settings['lr']:g} "
        "(deepsad also drops it tenfold after epoch 50, the paper's schedule; weight decay 1e-6, autoencoder "
        "5e-4).",
        f"* Device: {settings['device']}. Threads (in every worker): "
        + ", ".join(f"{k} = {v}" for k, v in threads.items()) + ".",
        "* cardio: ODDS protocol, stratified disjoint 60:40 split, 1 % labeled anomalies (gamma_l = 0.01), "
        "gamma_p = 0, features standardized with training statistics (inside `fit` for deepsad; the same "
        "statistics applied beforehand for the peers).",
        "* MNIST: normal class 0, known anomaly class 1, gamma_l = 0.05, gamma_p = 0, pixels in [0, 1]. "
        "CIFAR-10: normal class 0, known anomaly class 1, gamma_l = 0.05, gamma_p = 0.",
        "* The peers have no convolutional network, so on images they run an MLP on the flattened pixels "
        "with the LeNet's representation size (MNIST 784-128-64-32, CIFAR-10 3072-512-256-128); their row "
        "with the images as given records the error a user gets.",
        "",
        "### Peers: matched settings and differences",
        "",
        *[f"* {text}" for text in PEER_NOTES.values()],
        "",
        "## Machine and versions",
        "",
        *[f"* {k}: {v}" for k, v in machine.items()],
        f"* load average (1, 5, 15 min) before the run: {fmt_load(load_before)}; after: {fmt_load(load_after)}",
        *[f"* {k} {v}" for k, v in vers.items()],
        "",
        "## Per seed",
        "",
        "`load (1 min) before`: the 1-minute load average when the timed fit started (our own worker adds up "
        "to the thread count to it). `CPU s / wall s` is the process's CPU time (all threads) over the wall "
        "time of `fit`: at most the thread count; tiny networks run most operations on one thread, so about 1 "
        "is normal for them, and spinning threads count as CPU too. `warm-up s`: the untimed first fit on a "
        "small slice that each worker does before the timed one.",
        "",
        per_seed_table(results),
        "",
    ]
    errors = [r for r in results if r.get("error")]
    if errors:
        out += ["## Errors (full messages)", ""]
        out += [f"* {r['dataset']} / {r['label']} / seed {r['seed']}: `{r['error']}`" for r in errors]
        out += [""]
    return "\n".join(out)
