"""``deepsad export``: a saved model as one ONNX graph, for serving without deepsad or torch.

The graph goes from raw features to the anomaly score (see :mod:`deepsad.onnx_export`);
its scores equal ``deepsad score``'s. Nothing heavy is imported until the command runs,
so that ``deepsad --help`` stays fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from deepsad.cli.arguments import add_command, add_shared_argument
from deepsad.errors import InvalidInputError

#: What ``--format`` accepts; one today, a choice so that the command line stays stable
#: when another format comes.
EXPORT_FORMATS = ("onnx",)


def add_export_command(commands: Any) -> None:
    """Register ``export`` on the ``deepsad`` sub-command parser."""
    export = add_command(
        commands, "export", run_export,
        help="export a saved Deep SAD / Deep SVDD model as an ONNX graph (raw features -> anomaly score)",
        description="Write one ONNX graph that computes the model's anomaly_score (higher = more anomalous, "
        "as 'deepsad score' writes it) from raw float32 features in the training column order: "
        "standardization, network(s), distance to the centre(s). Input 'input' (batch, features...), "
        "output 'anomaly_score' (batch,); the threshold and feature names are in the model metadata. "
        "Needs: pip install 'deepsad[onnx]'. Shallow methods do not export.",
    )
    add_shared_argument(export, "model")
    export.add_argument("--format", choices=EXPORT_FORMATS, default="onnx", help="export format (default: onnx)")
    export.add_argument("--out", required=True, metavar="FILE.onnx", help="file to write (replaced if it exists)")
    export.add_argument("--opset", type=int, metavar="N", help="ONNX opset (default 17; 13 to 20)")


def run_export(args: argparse.Namespace) -> int:
    """Export ``args.model`` to ``args.out``; every refusal is an :class:`InvalidInputError` (one line, exit 2)."""
    from deepsad.persistence import load
    from deepsad.onnx_export import check_destination, export_onnx

    out = Path(args.out)
    # before loading: a bad destination is the cheapest mistake to report
    check_destination(out)
    _refuse_model_file(out, Path(args.model))
    model = load(args.model, device="cpu")
    try:
        export_onnx(model, out, opset=args.opset)
    except ImportError as error:  # onnx is optional; the library says how to install it
        raise InvalidInputError(str(error)) from None
    shape = ", ".join(str(s) for s in model.input_shape_)
    networks = len(model.networks_)
    print(
        f"exported {type(model).__name__} ({networks} network{'s' if networks > 1 else ''}, input (batch, {shape})) "
        f"to {out}; scores above {model.threshold_:.6g} are anomalies"
    )
    return 0


def _refuse_model_file(out: Path, model_dir: Path) -> None:
    """Refuse an ``--out`` that is one of the model's own files (it would destroy the model)."""
    if not out.exists() or not model_dir.is_dir():
        return
    if any(path.is_file() and out.samefile(path) for path in model_dir.iterdir()):
        raise InvalidInputError(f"--out {out} is a file of the model {model_dir}; write the ONNX file elsewhere")
