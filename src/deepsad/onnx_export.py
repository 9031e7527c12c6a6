"""Export a fitted Deep SAD / Deep SVDD to ONNX: one graph from raw features to the anomaly score.

The graph computes exactly what :meth:`~deepsad.detectors.deep_base.BaseDeepDetector.anomaly_score`
computes (higher = more anomalous): the model's standardization (``scaler_mean_`` /
``scaler_scale_``, when it has one), each network phi in eval mode (BatchNorm with its
running statistics), the distance ``||phi(x) - c||`` to its centre and, for an ensemble,
the mean over the networks of each distance divided by that network's median training
distance (``distance_scales_``). Input ``"input"`` of shape ``(batch, *input_shape_)``,
float32, in the training column order; output ``"anomaly_score"`` of shape ``(batch,)``.
The threshold, input shape, feature names and versions are in the model's metadata.

Only the hypersphere detectors export: the shallow baselines (kernels, trees, density
estimates) have no network graph, and are refused with :class:`~deepsad.errors.InvalidInputError`.

The exporter is torch's TorchScript-based one (``torch.onnx.export(..., dynamo=False)``):
the score graph has no control flow, so tracing it is exact, and that path needs only the
``onnx`` package, prints nothing and is several times faster than the ``torch.export``-based
exporter, which also needs ``onnxscript`` and ``onnx-ir`` (figures: docs/performance.md,
"Where the speed layer's numbers come from"). Every exported file is checked with
``onnx.checker`` and its scores compared with the estimator's under onnxruntime before it
is written, so a graph that computes anything else is never left behind.

``onnx`` and ``onnxruntime`` are optional dependencies (``pip install 'deepsad[onnx]'``);
importing :mod:`deepsad` does not import them.
"""

from __future__ import annotations

import contextlib
import json
import importlib
import logging
import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from torch import nn

from deepsad._version import __version__
from deepsad.errors import DeepSADError, InvalidInputError
from deepsad.validation import check_output_file

logger = logging.getLogger(__name__)

INPUT_NAME = "input"
OUTPUT_NAME = "anomaly_score"
BATCH_AXIS = "batch"

#: Opset written unless the caller asks for another: every operator of the score graph
#: (Conv, BatchNormalization, LeakyRelu, MaxPool, MatMul, ReduceSum, Sqrt) has had its
#: current form since opset 13, and 17 is read by every maintained runtime (onnxruntime
#: since 1.12, 2022), so a higher default would only shut out older deployments.
DEFAULT_OPSET = 17

#: Opsets the export accepts: from 13, where ReduceSum got the form the distance uses, to
#: 20, the highest the TorchScript exporter of torch 2.x writes.
MIN_OPSET = 13
MAX_OPSET = 20

#: The scores of the exported graph must equal the estimator's within this relative
#: tolerance (the contract ``deepsad score`` users rely on)...
VERIFY_RTOL = 1e-4
#: ...plus this much of the largest score, for scores near zero, where float32 rounding
#: of different but equivalent operation orders is all that differs.
VERIFY_ATOL_FRACTION = 1e-6
#: Samples scored by both to verify an export: a few is enough to catch a wrong graph.
VERIFY_SAMPLES = 16

INSTALL_HINT = "pip install 'deepsad[onnx]'"


class AnomalyScoreGraph(nn.Module):
    """A fitted hypersphere detector's ``anomaly_score`` as one ``nn.Module``: raw features -> score.

    Build it with :meth:`from_estimator`; it holds CPU float32 copies of the networks in
    stock PyTorch layers (:func:`deepsad.models.to_stock_layers`), in eval mode, so that
    any exporter sees only standard operators.

    Parameters
    ----------
    networks : sequence of torch.nn.Module
        The networks phi (already stock layers, eval mode, CPU).
    centers : numpy.ndarray of shape (n_networks, rep_dim)
        Each network's centre.
    distance_scales : numpy.ndarray of shape (n_networks,) or None
        An ensemble's median training distances; ``None`` for one network.
    scaler_mean, scaler_scale : numpy.ndarray of shape (n_features,) or None
        The standardization, or ``None`` for none.
    """

    def __init__(
        self,
        networks: Sequence[nn.Module],
        centers: np.ndarray,
        distance_scales: np.ndarray | None = None,
        scaler_mean: np.ndarray | None = None,
        scaler_scale: np.ndarray | None = None,
    ) -> None:
        super().__init__()
        self.networks = nn.ModuleList(networks)
        self.register_buffer("centers", _float32_tensor(centers))  # (n_networks, rep_dim)
        # the estimator multiplies each distance by 1 / scale (a float64 reciprocal);
        # storing the reciprocal keeps the same operation order
        weights = None if distance_scales is None else 1.0 / np.asarray(distance_scales, dtype=np.float64)
        self.register_buffer("weights", None if weights is None else _float32_tensor(weights))  # (n_networks,)
        self.register_buffer("scaler_mean", None if scaler_mean is None else _float32_tensor(scaler_mean))
        self.register_buffer("scaler_scale", None if scaler_scale is None else _float32_tensor(scaler_scale))

    @classmethod
    def from_estimator(cls, estimator: Any) -> "AnomalyScoreGraph":
        """The score graph of a fitted :class:`~deepsad.DeepSAD` or :class:`~deepsad.DeepSVDD`.

        Raises
        ------
        InvalidInputError
            For any other estimator (see :func:`check_exportable`).
        sklearn.exceptions.NotFittedError
            For an estimator that is not fitted.
        """
        from deepsad.models import to_stock_layers

        check_exportable(estimator)
        networks = [
            to_stock_layers(network)
            .to(device="cpu", dtype=torch.float32, memory_format=torch.contiguous_format)
            .eval()
            for network in estimator.networks_
        ]
        scales = getattr(estimator, "distance_scales_", None)
        return cls(
            networks,
            np.asarray(estimator.centers_),
            None if scales is None or len(networks) == 1 else np.asarray(scales),
            getattr(estimator, "scaler_mean_", None),
            getattr(estimator, "scaler_scale_", None),
        ).eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, *input_shape) -> (batch,)`` anomaly scores."""
        if self.scaler_mean is not None:
            x = (x - self.scaler_mean) / self.scaler_scale  # (batch, n_features)
        total: torch.Tensor | None = None
        for index, network in enumerate(self.networks):
            z = network(x)  # (batch, rep_dim)
            distance = ((z - self.centers[index]) ** 2).sum(dim=1).sqrt()  # (batch,)
            if self.weights is not None:
                distance = distance * self.weights[index]
            total = distance if total is None else total + distance
        assert total is not None  # at least one network (checked by from_estimator)
        return total / len(self.networks) if len(self.networks) > 1 else total


def check_exportable(estimator: Any) -> None:
    """Raise unless ``estimator`` is a fitted detector that exports to ONNX.

    Raises
    ------
    InvalidInputError
        For anything but a Deep SAD / Deep SVDD (e.g. the shallow baselines), naming its class.
    sklearn.exceptions.NotFittedError
        For a Deep SAD / Deep SVDD that is not fitted.
    """
    from sklearn.utils.validation import check_is_fitted

    # The detectors that export are those whose class offers ``export_onnx`` (Deep SAD and
    # Deep SVDD, through their base class). Asked of the class, not by isinstance: that
    # method imports this module, and this module importing the detectors back would make
    # the two import each other.
    if not callable(getattr(type(estimator), "export_onnx", None)):
        raise InvalidInputError(
            f"ONNX export is not supported for {type(estimator).__name__}: only DeepSAD and DeepSVDD "
            "(MLP and LeNet networks) export to ONNX"
        )
    check_is_fitted(estimator, "network_")
    if not estimator.networks_:
        raise InvalidInputError(f"this {type(estimator).__name__} holds no network to export")


def export_onnx(estimator: Any, path: str | os.PathLike, *, opset: int | None = None) -> Path:
    """Write a fitted detector's anomaly score as one ONNX graph.

    The graph takes ``"input"``, float32 of shape ``(batch, *estimator.input_shape_)``
    (tabular data: the training columns in their training order), with any batch size,
    and returns ``"anomaly_score"`` of shape ``(batch,)``, equal to
    ``estimator.anomaly_score(X)`` within a relative 1e-4: standardization, the
    network(s), the distance to the centre(s) and an ensemble's scaled mean are all in
    the graph. The model's metadata holds ``threshold`` (scores above it are anomalies,
    as ``predict`` and ``deepsad score`` decide), ``input_shape``, ``feature_names``
    (when the model has them), the detector's class and the deepsad and torch versions.

    Before anything is written, the file is checked with ``onnx.checker`` and its scores
    on a few samples compared with ``estimator.anomaly_score`` under onnxruntime; the
    file appears complete or not at all.

    Parameters
    ----------
    estimator : DeepSAD or DeepSVDD
        A fitted detector with MLP or LeNet networks (or a custom network that torch can
        trace: its export is verified like the others).
    path : str or path-like
        The ``.onnx`` file to write; an existing file is replaced.
    opset : int or None, default=None
        ONNX opset; ``None`` means :data:`DEFAULT_OPSET`.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    InvalidInputError
        For an estimator that does not export (the shallow baselines), an unusable
        ``path`` or ``opset``, or a graph whose scores differ from the estimator's.
    ImportError
        When ``onnx`` or ``onnxruntime`` is not installed (``pip install 'deepsad[onnx]'``).

    Examples
    --------
    Needs ``onnx`` and ``onnxruntime`` (``pip install 'deepsad[onnx]'``):

    >>> import numpy as np
    >>> import onnxruntime  # doctest: +SKIP
    >>> from deepsad import DeepSAD
    >>> X = np.random.default_rng(0).normal(size=(100, 5)).astype(np.float32)
    >>> est = DeepSAD(epochs=2, random_state=0).fit(X)  # doctest: +SKIP
    >>> path = export_onnx(est, "deepsad.onnx")  # doctest: +SKIP
    >>> session = onnxruntime.InferenceSession(path)  # doctest: +SKIP
    >>> scores = session.run(None, {"input": X})[0]  # same as est.anomaly_score(X)  # doctest: +SKIP
    """
    check_exportable(estimator)
    opset = _check_opset(opset)
    onnx = _require("onnx")
    onnxruntime = _require("onnxruntime")
    path = check_destination(path)
    graph = AnomalyScoreGraph.from_estimator(estimator)
    # written next to the destination, then renamed over it: a failed or refused export
    # leaves neither a partial file nor a wrong graph at ``path``
    try:
        handle, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise InvalidInputError(f"cannot write {path}: {error.strerror or error}") from None
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        _trace_to_file(graph, estimator.input_shape_, tmp, opset)
        model = onnx.load(str(tmp))
        _add_metadata(model, estimator)
        onnx.checker.check_model(model, full_check=True)
        onnx.save(model, str(tmp))
        _verify(onnxruntime, tmp, estimator)
        tmp.replace(path)
    except OSError as error:
        raise InvalidInputError(f"cannot write {path}: {error.strerror or error}") from None
    finally:
        with contextlib.suppress(OSError):  # gone already after a successful replace
            tmp.unlink()
    logger.info("exported %s (%d network(s)) to %s", type(estimator).__name__, len(graph.networks), path)
    return path


def _float32_tensor(values: Any) -> torch.Tensor:
    return torch.from_numpy(np.array(values, dtype=np.float32))


def _require(name: str) -> ModuleType:
    """Import an optional dependency of the export, or say how to install it."""
    try:
        return importlib.import_module(name)
    except ImportError:
        raise ImportError(f"ONNX export needs the {name!r} package: {INSTALL_HINT}") from None


def _check_opset(opset: int | None) -> int:
    if opset is None:
        return DEFAULT_OPSET
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)) or not MIN_OPSET <= opset <= MAX_OPSET:
        raise InvalidInputError(f"opset must be an integer from {MIN_OPSET} to {MAX_OPSET}, got {opset!r}")
    return int(opset)


def check_destination(path: str | os.PathLike) -> Path:
    """Raise unless an ONNX file can be written at ``path``; return it as a Path.

    :func:`deepsad.validation.check_output_file` for an ``.onnx`` file (a directory, a
    missing folder or one where no file can be created is an ``InvalidInputError``).
    """
    return check_output_file(path, what="the .onnx file")


def _trace_to_file(graph: AnomalyScoreGraph, input_shape: Sequence[int], path: Path, opset: int) -> None:
    # two samples: tracing with one would let the exporter treat the batch as a constant 1
    example = torch.zeros((2, *input_shape), dtype=torch.float32)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            # the TorchScript exporter announces its own deprecation on every call (see the
            # module docstring for why it is the path taken); nothing for our users to act on
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
            torch.onnx.export(
                graph,
                (example,),
                str(path),
                dynamo=False,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: BATCH_AXIS}, OUTPUT_NAME: {0: BATCH_AXIS}},
                opset_version=opset,
            )
    except DeepSADError:
        raise
    except Exception as error:  # noqa: BLE001 - the exporter raises many types; the message says what failed
        message = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise InvalidInputError(f"torch could not export the network to ONNX (opset {opset}): {message}") from error


def _add_metadata(model: Any, estimator: Any) -> None:
    model.doc_string = (
        f"deepsad {type(estimator).__name__}: anomaly_score (higher = more anomalous) of float32 input of shape "
        f"(batch, {', '.join(str(s) for s in estimator.input_shape_)}); scores above the threshold are anomalies"
    )
    metadata = {
        "deepsad_version": __version__,
        "torch_version": torch.__version__,
        "estimator": type(estimator).__name__,
        "n_networks": str(len(estimator.networks_)),
        "input_shape": json.dumps(list(estimator.input_shape_)),
        "threshold": repr(float(estimator.threshold_)),
        "score": "anomaly_score: higher = more anomalous",
    }
    if hasattr(estimator, "feature_names_in_"):
        metadata["feature_names"] = json.dumps([str(name) for name in estimator.feature_names_in_])
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value


def _probe_samples(estimator: Any) -> np.ndarray:
    """A few samples like the training data (in distribution where the scaler says where)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((VERIFY_SAMPLES, *estimator.input_shape_)).astype(np.float32)
    mean = getattr(estimator, "scaler_mean_", None)
    if mean is not None:
        X = (X * estimator.scaler_scale_ + mean).astype(np.float32)
    return X


def _verify(onnxruntime: ModuleType, path: Path, estimator: Any) -> None:
    """Raise unless the graph at ``path`` scores like ``estimator`` under onnxruntime."""
    X = _probe_samples(estimator)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    exported = session.run([OUTPUT_NAME], {INPUT_NAME: X})[0].astype(np.float64)
    with warnings.catch_warnings():
        # a model fitted on a table with column names warns about the nameless probe array
        warnings.filterwarnings("ignore", message=".*feature names.*", category=UserWarning)
        expected = estimator.anomaly_score(X)
    atol = VERIFY_ATOL_FRACTION * max(1.0, float(np.max(np.abs(expected))))
    if exported.shape != expected.shape or not np.allclose(exported, expected, rtol=VERIFY_RTOL, atol=atol):
        worst = float(np.max(np.abs(exported - expected) / np.maximum(np.abs(expected), atol)))
        raise InvalidInputError(
            f"the exported graph does not reproduce {type(estimator).__name__}.anomaly_score "
            f"(largest relative difference {worst:.2g}); nothing was written"
        )
