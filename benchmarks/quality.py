"""The tabular quality benchmark in one command: run, run the peer, rank, write ``docs/quality.md``.

Stages, each resumable (rerun the same command to continue where it stopped):

1. deepsad's methods on ``configs/tabular.toml``, one profile after the other (default
   ``full``, the clean scenario, and ``polluted``), into ``RESULTS/tabular_<profile>.sqlite``:
   what ``deepsad experiment run tabular --profile <profile> --results ...`` does, run here
   through the same library calls so that ``--only`` can restrict the datasets (a task's
   hash does not depend on the others, so restricted and whole runs share the stores);
2. DeepOD's DeepSAD on the same draws (``benchmarks/quality_peers.py``) into
   ``RESULTS/deepod_<profile>.csv``;
3. ``deepsad experiment rank`` over the stores and the peer CSVs into ``--out`` (default
   ``docs/quality.md``) with the critical-difference diagrams in ``--figures`` (default
   ``docs/figures/quality``), and a header: the command, the wall time of every stage,
   the training caps recorded in the rows, and the package versions.

The wall time of each stage is printed as it ends.

    python benchmarks/quality.py --data-root ../shared/data --workers 2      # both profiles: hours
    python benchmarks/quality.py --profiles quick --only thyroid adbench-wine \\
        --results /tmp/q --out /tmp/q/quality.md --figures /tmp/q/figures           # smoke test, ~1 min

The peer needs DeepOD (``scripts/bench.sh`` installs it); without it, stage 2 fails with a
clear message (``--no-peer`` leaves the peer out).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

import quality_peers  # noqa: E402 - the benchmarks folder is not a package

DEFAULT_PROFILES = ("full", "polluted")
#: What each profile stands for in the report.
SCENARIO_TEXT = {
    "full": "clean: the paper's ODDS protocol, 60:40 split, 1% of the training set labeled anomalies "
            "(gamma_l = 0.01), the other training anomalies dropped",
    "polluted": "every training sample kept, 10% of the training split's anomalies labeled, the rest unlabeled",
    "quick": "CI smoke run: few datasets, one seed, at most 600 samples, short schedules (not comparable)",
}


#: How the report names the config's methods: which Deep SAD is which, and no paper-only
#: suffixes ("Raw": the paper's shallow methods on raw features, the only kind here).
METHOD_LABELS = {
    "deepsad": "Deep SAD (defaults)",
    "deepsad-paper": "Deep SAD (paper)",
    "deepsvdd": "Deep SVDD (defaults)",
    "deepsvdd-paper": "Deep SVDD (paper)",
    "devnet": "DevNet",
    "supervised": "Supervised",
    "iforest": "IF",
    "ocsvm": "OC-SVM",
    "ssad": "SSAD",
    "kde": "KDE",
    quality_peers.METHOD: "DeepOD DeepSAD",
}


def store_path(results: Path, profile: str) -> Path:
    """Where deepsad's rows of ``profile`` go (the CLI's default name, under ``results``)."""
    return results / f"{quality_peers.CONFIG}_{profile}.sqlite"


def peer_path(results: Path, profile: str) -> Path:
    """Where the peer's rows of ``profile`` go."""
    return results / f"deepod_{profile}.csv"


# --------------------------------------------------------------------------- stages


class Stages:
    """Times the stages and keeps what the report says about them."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, float, str]] = []

    def record(self, name: str, seconds: float, note: str) -> None:
        self.rows.append((name, seconds, note))
        print(f"[{name}] {seconds:.1f} s: {note}", flush=True)


def run_deepsad(profile: str, args: argparse.Namespace, root: str) -> tuple[float, str]:
    """Stage 1 for one profile; returns (seconds, what happened)."""
    from deepsad.experiments.executors import make_executor
    from deepsad.experiments.runner import run_experiment

    config = quality_peers.load_benchmark(profile, only=args.only, data_root=root)
    executor = make_executor("local", workers=args.workers)
    summary = run_experiment(config, store_path(args.results, profile), executor, data_root=root,
                             progress=not args.no_progress, argv=sys.argv, stack=args.stack)
    if summary.interrupted:
        raise KeyboardInterrupt
    note = (f"{summary.n_tasks} tasks; {summary.n_skipped} already done, {summary.n_done} done now, "
            f"{summary.n_failed} failed")
    for example in summary.failed_examples:
        print(f"  failed: {example.splitlines()[0]}", file=sys.stderr)
    return summary.seconds, note


def run_peer(profile: str, args: argparse.Namespace, root: str) -> tuple[float, str]:
    """Stage 2 for one profile; returns (seconds, what happened)."""
    summary = quality_peers.run_peers(profile, peer_path(args.results, profile), data_root=root, only=args.only,
                                      workers=args.workers, on_row=quality_peers.print_progress)
    for example in summary.failed_examples:
        print(f"  failed: {example}", file=sys.stderr)
    return summary.seconds, (f"{summary.n_tasks} setups; {summary.n_skipped} already done, {summary.n_done} done "
                             f"now, {summary.n_failed} failed")


def rank_command(args: argparse.Namespace) -> list[str]:
    """The ``deepsad experiment rank`` call of stage 3."""
    command = [sys.executable, "-m", "deepsad", "experiment", "rank"]
    command += [str(store_path(args.results, p)) for p in args.profiles]
    if not args.no_peer:
        for profile in args.profiles:
            command += ["--extra", str(peer_path(args.results, profile))]
    for method, label in METHOD_LABELS.items():
        command += ["--label", f"{method}={label}"]
    return command + ["--out", str(args.out), "--figures", str(args.figures)]


# --------------------------------------------------------------------------- the report's header


def _store_rows(args: argparse.Namespace) -> dict[str, pd.DataFrame]:
    """Each profile's rows in its results file, read once for the whole header (profiles
    without a file are left out)."""
    from deepsad.experiments.store import read_results

    return {profile: read_results(store_path(args.results, profile))
            for profile in args.profiles if store_path(args.results, profile).is_file()}


def _caps_table(args: argparse.Namespace, stored: dict[str, pd.DataFrame]) -> list[str]:
    """Per scenario and method: the cap in the rows, how many training sets it cut, seeds, done / failed,
    and the fit seconds the rows record (which, unlike the wall time, add up over resumed runs)."""
    lines = ["| scenario | method | max_train_samples | training sets capped | seeds | done | failed "
             "| fit time (sum) |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for profile in args.profiles:
        frames = []
        if profile in stored:
            rows = stored[profile].copy()
            rows["capped"] = rows["sampler_summary"].map(lambda s: bool(s) and "train_cap" in json.loads(s))
            frames.append(rows)
        peer = peer_path(args.results, profile)
        if not args.no_peer and peer.is_file():
            rows = pd.read_csv(peer)
            rows["capped"] = rows["train_capped_from"].notna()
            frames.append(rows)
        for frame in frames:
            for method, group in frame.groupby("method", sort=False):
                caps = sorted({int(c) for c in group["max_train_samples"].dropna()})
                cap_text = ", ".join(str(c) for c in caps) or "none"
                # pretraining is stored apart from the fit (shared autoencoders), and counts too
                seconds = group["fit_seconds"].sum() + group.get("pretrain_seconds", pd.Series(dtype=float)).sum()
                lines.append(f"| {profile} | {method} | {cap_text} | {int(group['capped'].sum())} of {len(group)} | "
                             f"{group['seed'].nunique()} | {int((group['status'] == 'done').sum())} | "
                             f"{int((group['status'] == 'failed').sum())} | {_duration(seconds)} |")
    return lines


def _runs_table(args: argparse.Namespace, stored: dict[str, pd.DataFrame]) -> list[str]:
    """Stage 1's wall time over every invocation that wrote to the stores: per profile, the
    sum over runs of first task start to last task end (idle time between resumed runs is
    not counted; a run cut short counts until its last recorded task)."""
    lines = ["Stage 1 over all invocations (from the runs recorded in the results files):", "",
             "| profile | runs | wall time of the runs |", "|---|---:|---:|"]
    for profile, rows in stored.items():
        started = pd.to_datetime(rows["started_at"], utc=True)
        finished = pd.to_datetime(rows["finished_at"], utc=True)
        spans = (finished.groupby(rows["run_id"]).max() - started.groupby(rows["run_id"]).min()).dt.total_seconds()
        lines.append(f"| {profile} | {len(spans)} | {_duration(float(spans.sum()))} |")
    return lines


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 600 else f"{seconds / 60:.0f} min"


def _versions(args: argparse.Namespace, stored: dict[str, pd.DataFrame]) -> str:
    """The package versions the rows record (several sets where resumed runs differed)."""
    seen: list[str] = []
    for rows in stored.values():
        for text in rows["versions"].dropna().unique():
            described = ", ".join(f"{k} {v}" for k, v in json.loads(text).items())
            if described not in seen:
                seen.append(described)
    text = "; ".join(seen) or "(no rows)"
    if not args.no_peer:
        text += f"; deepod {quality_peers.package_version('deepod') or 'not installed'}"
    return text


def header(args: argparse.Namespace, stages: Stages, total: float, argv: Sequence[str]) -> str:
    """The section put above the ranking report."""
    command = shlex.join(["python", "benchmarks/quality.py", *argv])
    rank = shlex.join(["deepsad", *rank_command(args)[3:]])
    stored = _store_rows(args)
    lines = [
        "# Tabular quality benchmark",
        "",
        f"Made by `{command}` on {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC "
        f"({platform.node() or 'unknown host'}, {os.cpu_count()} cores, --workers {args.workers}, "
        f"--stack {args.stack}), "
        "from `configs/tabular.toml`. Do not edit by hand: rerun the command.",
        "",
        "Scenarios (one results file per profile of the config):",
        "",
        *[f"- **{p}**: {SCENARIO_TEXT.get(p, 'profile ' + p)}" for p in args.profiles],
        "",
        "DeepOD's DeepSAD (`deepod-deepsad`, a benchmark-only peer) runs at DeepOD's defaults on the same draws, "
        "standardization and training caps as deepsad's `deepsad` method (`benchmarks/quality_peers.py`).",
        "",
        f"Ranked by `{rank}`.",
        "",
        "## How long it took",
        "",
        f"Wall time of this invocation: **{total / 60:.1f} min** ({total:.0f} s). "
        "Stages resumed from earlier invocations count only what ran now.",
        "",
        *_runs_table(args, stored),
        "",
        "| stage | wall time | |",
        "|---|---:|---|",
        *[f"| {name} | {seconds:.1f} s | {note} |" for name, seconds, note in stages.rows],
        "",
        "## Training caps and seeds recorded in the rows",
        "",
        *_caps_table(args, stored),
        "",
        f"Versions: {_versions(args, stored)}; {platform.platform()}.",
        "",
    ]
    return "\n".join(lines)


def _demote(report: str) -> str:
    """The ranking report as a section of this one: every heading one level down."""
    return "\n".join("#" + line if line.startswith("#") else line for line in report.split("\n"))


# --------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", nargs="+", default=list(DEFAULT_PROFILES), choices=quality_peers.PROFILES,
                        help="profiles of configs/tabular.toml to run and rank (default: full polluted; "
                             "quick for a smoke test)")
    parser.add_argument("--results", type=Path, default=Path("results"),
                        help="folder of the results files (default: results/)")
    parser.add_argument("--data-root", default=None, metavar="DIR",
                        help="folder holding the datasets (default: $DEEPSAD_DATA, else the user cache folder)")
    parser.add_argument("--workers", type=int, default=2, metavar="N", help="worker processes (default 2)")
    parser.add_argument("--stack", type=int, default=2, metavar="K",
                        help="train the networks of up to K seeds of one dataset and method together as one stacked "
                             "model (`deepsad experiment run --stack`; default 2: on CPU it cuts the deep methods' time "
                             "by about a third, docs/quality.md records it; 1: off)")
    parser.add_argument("--only", nargs="+", metavar="DATASET", help="only these datasets (runs; the report ranks "
                        "whatever the results files hold)")
    parser.add_argument("--out", type=Path, default=Path("docs/quality.md"),
                        help="the report (default: docs/quality.md)")
    parser.add_argument("--figures", type=Path, default=Path("docs/figures/quality"),
                        help="the CD diagrams (default: docs/figures/quality/)")
    parser.add_argument("--no-peer", action="store_true", help="leave DeepOD's DeepSAD out")
    parser.add_argument("--report-only", action="store_true", help="rank what the results files hold, run nothing")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if args.workers < 1:
        raise SystemExit("--workers must be at least 1")
    if args.stack < 1:
        raise SystemExit("--stack must be at least 1")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from deepsad.data.registry import resolve_data_root

    root = str(Path(resolve_data_root(args.data_root)).expanduser().resolve())
    args.results.mkdir(parents=True, exist_ok=True)
    if not args.no_peer and quality_peers.package_version("deepod") is None:
        print("quality: DeepOD is not installed (bash scripts/bench.sh installs it), or pass --no-peer",
              file=sys.stderr)
        return 2
    stages = Stages()
    started = time.perf_counter()
    try:
        if not args.report_only:
            for profile in args.profiles:
                stages.record(f"deepsad {profile}", *run_deepsad(profile, args, root))
            if not args.no_peer:
                for profile in args.profiles:
                    stages.record(f"deepod-deepsad {profile}", *run_peer(profile, args, root))
    except KeyboardInterrupt:
        print("quality: interrupted; finished tasks are saved, run the same command again to continue", file=sys.stderr)
        return 130
    except Exception as error:  # e.g. settings changed under a results file: the message says what to do
        print(f"quality: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    command = rank_command(args)
    t0 = time.perf_counter()
    done = subprocess.run(command)
    if done.returncode != 0:
        print(f"quality: the ranking failed: {shlex.join(command)}", file=sys.stderr)
        return done.returncode
    stages.record("rank", time.perf_counter() - t0, f"`deepsad experiment rank` -> {args.out}")
    total = time.perf_counter() - started
    report = args.out.read_text(encoding="utf-8")
    args.out.write_text(header(args, stages, total, argv) + "\n" + _demote(report), encoding="utf-8")
    print(f"wrote {args.out} (total {total:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
