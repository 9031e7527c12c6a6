"""``deepsad data``: look at datasets and scenario draws before running experiments.

Sub-commands: ``list`` (known datasets, present or missing under the data root),
``describe`` (shape, classes, counts of a dataset or file), ``sample`` (one scenario
draw's summary as JSON, optionally the indices as ``.npz``) and ``download``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from deepsad.cli.arguments import add_command, add_command_group, add_shared_argument
from deepsad.errors import DataFileError, DeepSADError, InvalidInputError

if TYPE_CHECKING:  # pragma: no cover
    from deepsad.data.scenarios import ScenarioDraw


def add_data_commands(subparsers: Any) -> None:
    """Add the ``data`` command and its sub-commands to the ``deepsad`` parser.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The ``deepsad`` parser's sub-commands.
    """
    commands = add_command_group(
        subparsers, "data", dest="data_command", help="list, describe, sample and download datasets",
        description="Look at datasets and scenario draws before running experiments.",
    )
    _add_list(commands)
    _add_describe(commands)
    _add_sample(commands)
    _add_download(commands)


def _add_list(commands: Any) -> None:
    p = add_command(commands, "list", cmd_list, help="known datasets and whether their files are present")
    add_shared_argument(p, "data_root")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _add_describe(commands: Any) -> None:
    p = add_command(commands, "describe", cmd_describe, help="shape, classes and counts of a dataset or a file")
    p.add_argument("target", metavar="NAME_OR_FILE", help="a dataset name or a data file (CSV, NPY, NPZ, Parquet, MAT)")
    add_shared_argument(p, "data_root")
    p.add_argument("--label-column", default="label", help="label column of a table file (default: label)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")


def _add_sample(commands: Any) -> None:
    p = add_command(commands, "sample", cmd_sample, help="draw a semi-supervised scenario and print its summary as JSON",
                    description=_SAMPLE_DESCRIPTION)
    p.add_argument("name", metavar="NAME", help="dataset name (see 'deepsad data list')")
    add_shared_argument(p, "data_root")
    p.add_argument("--normal-class", type=int, nargs="+", metavar="C", help="normal class(es) (image datasets)")
    known = p.add_mutually_exclusive_group()
    known.add_argument("--known-classes", type=int, nargs="*", metavar="K",
                       help="classes labeled anomalies are drawn from (none: k_l = 0)")
    known.add_argument("--k-l", type=int, metavar="N", help="draw N known classes at random (scenario iii)")
    p.add_argument("--gamma-l", type=float, required=True, metavar="R", help="share of labeled anomalies in training, in [0, 1)")
    p.add_argument("--gamma-p", type=float, default=0.0, metavar="R", help="share of anomalies in the unlabeled data, in [0, 1) (default 0)")
    p.add_argument("--ratio-labeled-normal", type=float, default=0.0, metavar="R",
                   help="share of the normal class given label +1, images only (default 0)")
    p.add_argument("--test-fraction", type=float, default=0.4, metavar="F", help="test share of ODDS splits (default 0.4)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--indices", metavar="OUT.npz", help="also write the indices and labels to this .npz file")


_SAMPLE_DESCRIPTION = (
    "Draw the training/test indices of one scenario. Image datasets need "
    "--normal-class and --known-classes or --k-l; ODDS datasets use a stratified split."
)


def _add_download(commands: Any) -> None:
    p = add_command(commands, "download", cmd_download, help="download datasets into the data root (checksums verified)")
    p.add_argument("names", nargs="+", metavar="NAME", help="built-in dataset names")
    add_shared_argument(p, "data_root")
    p.add_argument("--force", action="store_true", help="download again even if present")
    add_shared_argument(p, "no_progress")


# --- list ----------------------------------------------------------------------------

def _status(info, root: Path) -> dict:
    from deepsad.data.registry import resolve_data_root

    paths = info.file_paths(root)
    missing = info.missing_files(root)
    location = str(info.path) if info.path is not None else str(resolve_data_root(root) / info.folder)
    state = "present" if not missing else ("missing" if len(missing) == len(paths) else f"missing {len(missing)} of {len(paths)} files")
    return {"name": info.name, "kind": info.kind, "status": state, "location": location,
            "missing": [str(p) for p in missing], "title": info.title, "user": not info.builtin}


def cmd_list(args: argparse.Namespace) -> int:
    """Run ``deepsad data list``: the known datasets, present or missing; returns the exit status."""
    from deepsad.data.registry import data_root_origin, list_datasets, resolve_data_root

    root = resolve_data_root(args.data_root)
    rows = [_status(info, root) for info in list_datasets(root)]
    if args.json:
        print(json.dumps({"data_root": str(root), "datasets": rows}, indent=2))
        return 0
    print(f"data root: {root} ({data_root_origin(args.data_root)})")
    headers = ("NAME", "KIND", "STATUS", "DESCRIPTION")
    table = [(r["name"], r["kind"], r["status"], r["title"]) for r in rows]
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(headers)]
    for row in (headers, *table):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    if any(r["status"] != "present" for r in rows):
        print("get missing built-in datasets with: deepsad data download NAME")
    return 0


# --- describe ------------------------------------------------------------------------

def _counts(values: np.ndarray) -> dict[str, int]:
    uniq, counts = np.unique(values, return_counts=True)
    return {str(u.item() if hasattr(u, "item") else u): int(c) for u, c in zip(uniq, counts)}


def _describe_images(name: str, root: Path | None) -> dict:
    from deepsad.data.loaders import load_raw_images
    from deepsad.data.registry import get_dataset

    info = get_dataset(name, root)
    result = {"name": name, "kind": "images", "title": info.title, "splits": {}}
    if info.classes and list(info.classes) != [str(i) for i in range(len(info.classes))]:
        result["class_names"] = {str(i): c for i, c in enumerate(info.classes)}
    for split in ("train", "test"):
        try:
            images, labels = load_raw_images(name, split, root)
        except DeepSADError as error:  # a user dataset without a test split is still describable
            if split == "test" and info.path is not None:
                result["splits"]["test"] = {"absent": str(error)}
                continue
            raise
        result["splits"][split] = {
            "shape": list(images.shape), "dtype": str(images.dtype),
            "pixel_range": [float(images.min()), float(images.max())] if images.size else None,
            "classes": _counts(labels),
        }
    return result


def _describe_table(table, title: str, name: str) -> dict:
    result = {
        "name": name, "kind": "tabular", "title": title,
        "shape": list(table.X.shape),
        "features": table.feature_names[:10] + (["..."] if len(table.feature_names) > 10 else []),
    }
    if table.labels is not None:
        result["labels"] = _counts(table.labels)
    if table.ground_truth is not None:
        result["ground_truth"] = _counts(table.ground_truth)
        result["outliers"] = int(np.sum(table.ground_truth == 1))
    return result


def _describe_file(path: Path, label_column: str) -> dict:
    from deepsad.data.tabular import read_table

    if path.suffix.lower() == ".npz":
        with np.load(path, allow_pickle=False) as content:
            if "X" in content.files and content["X"].ndim in (3, 4):
                result = {"name": str(path), "kind": "images", "arrays": {}}
                for key in content.files:
                    array = content[key]
                    entry = {"shape": list(array.shape), "dtype": str(array.dtype)}
                    if key.startswith("y") and array.ndim == 1:
                        entry["classes"] = _counts(array)
                    result["arrays"][key] = entry
                return result
    return _describe_table(read_table(path, label_column), f"file {path.name}", str(path))


def _print_description(d: dict) -> None:
    print(f"{d['name']} ({d['kind']}): {d.get('title', '')}".rstrip(": "))
    if "splits" in d:
        for split, s in d["splits"].items():
            if "absent" in s:
                print(f"  {split}: absent ({s['absent']})")
                continue
            lo, hi = s["pixel_range"] or (None, None)
            print(f"  {split}: {' x '.join(map(str, s['shape']))} {s['dtype']}, pixel values {lo:g}..{hi:g}")
            names = d.get("class_names", {})
            print("    classes: " + ", ".join(
                f"{c}{' (' + names[c] + ')' if c in names else ''}: {n}" for c, n in s["classes"].items()))
    elif "arrays" in d:
        for key, a in d["arrays"].items():
            line = f"  {key}: {' x '.join(map(str, a['shape']))} {a['dtype']}"
            if "classes" in a:
                line += "; classes " + ", ".join(f"{c}: {n}" for c, n in a["classes"].items())
            print(line)
    else:
        print(f"  shape: {d['shape'][0]} samples x {d['shape'][1]} features")
        print(f"  features: {', '.join(d['features'])}")
        if "labels" in d:
            print("  label column: " + ", ".join(f"{v}: {n}" for v, n in d["labels"].items()))
        if "ground_truth" in d:
            print(f"  ground truth: {d['outliers']} outliers of {d['shape'][0]} "
                  f"({100.0 * d['outliers'] / d['shape'][0]:.1f}%)")


def cmd_describe(args: argparse.Namespace) -> int:
    """Run ``deepsad data describe``: shape, classes and counts; returns the exit status."""
    from deepsad.data.loaders import load_table
    from deepsad.data.registry import BUILTIN_DATASETS, get_dataset, list_datasets, resolve_data_root

    root = resolve_data_root(args.data_root)
    target = args.target
    known = {info.name for info in list_datasets(root)}
    if target in known or target in BUILTIN_DATASETS:
        info = get_dataset(target, root)
        if info.kind == "images":
            description = _describe_images(target, root)
        else:
            description = _describe_table(load_table(target, root), info.title, target)
            description["kind"] = info.kind
    elif os.path.exists(target) or Path(target).suffix:
        path = Path(target)
        if not path.is_file():
            raise DataFileError(f"data file not found: {path}")
        description = _describe_file(path, args.label_column)
    else:
        raise InvalidInputError(
            f"{target!r} is neither a known dataset nor a file; known datasets: {', '.join(sorted(known))}"
        )
    if args.json:
        print(json.dumps(description, indent=2))
    else:
        _print_description(description)
    return 0


# --- sample --------------------------------------------------------------------------

def _draw(args: argparse.Namespace, root: Path):
    from deepsad.data.loaders import load_labels, load_table
    from deepsad.data.registry import get_dataset
    from deepsad.data.scenarios import draw_known_classes, sample_image_scenario, sample_odds_scenario

    info = get_dataset(args.name, root)
    rng = np.random.default_rng(args.seed)
    if info.kind == "images":
        if not args.normal_class:
            raise InvalidInputError(f"{args.name} is an image dataset: give --normal-class C")
        if args.known_classes is None and args.k_l is None:
            raise InvalidInputError("give --known-classes K [K ...] (or none for k_l = 0) or --k-l N")
        # labels only: the pixels are not needed to draw indices
        train_classes = load_labels(args.name, "train", root)
        test_classes = load_labels(args.name, "test", root)
        known = args.known_classes
        if known is None:
            present = sorted(int(c) for c in np.unique(train_classes))
            candidates = [c for c in present if c not in args.normal_class]
            # the same generator then draws the scenario, so one seed fixes everything
            known = draw_known_classes(candidates, args.k_l, rng)
        return sample_image_scenario(
            train_classes, test_classes, normal_classes=args.normal_class, known_anomaly_classes=known,
            gamma_l=args.gamma_l, gamma_p=args.gamma_p, ratio_labeled_normal=args.ratio_labeled_normal,
            rng=rng, seed=args.seed,
        )
    if args.normal_class or args.known_classes or args.k_l is not None:
        raise InvalidInputError(
            f"{args.name} is a tabular dataset: --normal-class, --known-classes and --k-l apply to image datasets only"
        )
    if args.ratio_labeled_normal:
        raise InvalidInputError("--ratio-labeled-normal applies to image datasets only")
    table = load_table(args.name, root)
    if table.ground_truth is None:
        raise InvalidInputError(
            f"{args.name} has no ground truth to split on; register it with ground_truth_column=..."
        )
    return sample_odds_scenario(table.ground_truth, gamma_l=args.gamma_l, gamma_p=args.gamma_p,
                                test_fraction=args.test_fraction, rng=rng, seed=args.seed)


def write_indices(path: Path, draw: ScenarioDraw, dataset: str) -> None:
    """Write a draw's arrays and summary to ``path`` (.npz) atomically.

    Parameters
    ----------
    path : pathlib.Path
        The ``.npz`` file; it appears complete or not at all.
    draw : deepsad.data.scenarios.ScenarioDraw
        The training / test indices and labels of one scenario draw.
    dataset : str
        The dataset's name, stored in the summary.
    """
    from deepsad.data.atomic import atomic_output

    with atomic_output(path) as (handle, _):
        np.savez(
            handle,
            train_indices=draw.train_indices, train_semi_labels=draw.train_semi_labels,
            test_indices=draw.test_indices, test_ground_truth=draw.test_ground_truth,
            summary=np.array(json.dumps({"dataset": dataset, **draw.summary})),
        )


def cmd_sample(args: argparse.Namespace) -> int:
    """Run ``deepsad data sample``: one scenario draw's summary as JSON; returns the exit status."""
    from deepsad.data.registry import resolve_data_root

    out = Path(args.indices) if args.indices else None
    if out is not None:
        # check before the (slow) draw so that a typo costs nothing and writes nothing
        if out.suffix.lower() != ".npz":
            raise InvalidInputError(f"--indices must name a .npz file, got {out}")
        if not out.parent.is_dir():
            raise DataFileError(f"cannot write {out}: folder {out.parent} does not exist")
    root = resolve_data_root(args.data_root)
    draw = _draw(args, root)
    summary = {"dataset": args.name, **draw.summary}
    if out is not None:
        write_indices(out, draw, args.name)
        summary["indices_file"] = str(out)
    print(json.dumps(summary, indent=2))
    return 0


# --- download ------------------------------------------------------------------------

def cmd_download(args: argparse.Namespace) -> int:
    """Run ``deepsad data download``; returns the exit status."""
    from deepsad.data.download import fetch_dataset
    from deepsad.data.registry import get_dataset, resolve_data_root

    root = resolve_data_root(args.data_root)
    for name in args.names:
        get_dataset(name, root)  # all names valid before any download starts
    for name in args.names:
        written = fetch_dataset(name, root, force=args.force, progress=not args.no_progress)
        state = f"downloaded {len(written)} file(s)" if written else "already present"
        print(f"{name}: {state} in {root}")
    return 0
