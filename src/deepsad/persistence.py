"""Saving and loading fitted detectors without pickle.

A model directory holds two files:

``weights.safetensors``
    Every array of the fitted state (network weights, centre, ...), in safetensors.
``model.json``
    The estimator class and parameters, fitted metadata, the package versions, the
    SHA-256 of the weights file and a SHA-256 of the JSON content itself.

The JSON is written canonically (sorted keys, fixed indentation), so on load the file
must equal the canonical re-serialisation of its own content: any changed byte — in a
value, a key or the whitespace — is refused, as is any changed byte of the weights.
Nothing is executed from the files, so a hostile model directory can at worst fail to load.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from deepsad.errors import InvalidInputError, ModelFileError

FORMAT_NAME = "deepsad-model"
#: 2: LeNet state dicts in the fused-layer numbering (BatchNormLeakyMaxPool2d,
#: UpsamplingConvTranspose2d); version-1 files still load (their keys are renumbered),
#: and a deepsad that reads only version 1 refuses version-2 files with "upgrade deepsad"
#: instead of failing on unexpected weight names.
#: 3: Deep SAD / Deep SVDD ensembles (``n_networks``; the other networks' weights under
#: ``network<k>.``), the ``"auto"`` recipe parameters and MLPSpec's batch_norm /
#: init_gain; older files load with the settings they were trained with
#: (``_upgrade_saved_params``)
FORMAT_VERSION = 3
WEIGHTS_FILE = "weights.safetensors"
CONFIG_FILE = "model.json"


def _registry() -> dict[str, type]:
    """Detector classes that can be saved, by class name."""
    from deepsad.detectors import DeepSAD, DeepSVDD

    classes: dict[str, type] = {"DeepSAD": DeepSAD, "DeepSVDD": DeepSVDD}
    try:
        from deepsad.baselines import SHALLOW_METHODS
    except ImportError:  # the baselines package is optional at this layer
        SHALLOW_METHODS = {}
    for cls in SHALLOW_METHODS.values():
        classes[cls.__name__] = cls
    try:
        from deepsad.baselines import DEEP_BASELINES
    except ImportError:
        DEEP_BASELINES = {}
    for cls in DEEP_BASELINES.values():
        classes[cls.__name__] = cls
    return classes


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _canonical(content: dict[str, Any]) -> str:
    return json.dumps(content, sort_keys=True, indent=2, allow_nan=False) + "\n"


def _versions() -> dict[str, str]:
    import safetensors
    import sklearn
    import torch

    from deepsad import __version__

    return {
        "deepsad": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "safetensors": safetensors.__version__,
        "python": platform.python_version(),
    }


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save(estimator: Any, path: str | os.PathLike) -> Path:
    """Save a fitted detector to the directory ``path`` (created if needed).

    Parameters
    ----------
    estimator : fitted detector
        Any deepsad detector (``DeepSAD``, ``DeepSVDD``, the baselines).
    path : str or path-like
        Directory to write ``weights.safetensors`` and ``model.json`` into; existing
        files of those names are replaced atomically.

    Returns
    -------
    pathlib.Path
        The model directory.
    """
    from safetensors.numpy import save as save_arrays
    from sklearn.utils.validation import check_is_fitted

    name = type(estimator).__name__
    if name not in _registry():
        raise InvalidInputError(f"cannot save a {name}; savable detectors: {', '.join(sorted(_registry()))}")
    check_is_fitted(estimator)
    arrays, meta = estimator._export_state()
    arrays = {key: np.ascontiguousarray(value) for key, value in arrays.items()}
    weights = save_arrays(arrays)
    params = estimator._params_to_json() if hasattr(estimator, "_params_to_json") else estimator.get_params(deep=False)
    content = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "class": name,
        "params": params,
        "fitted": meta,
        "versions": _versions(),
        "weights_sha256": _sha256(weights),
    }
    try:
        text = _canonical(content)
    except (TypeError, ValueError) as error:
        raise InvalidInputError(f"cannot save {name}: a parameter or fitted value is not JSON-serialisable ({error})") from None
    content["content_sha256"] = _sha256(text.encode())
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    _write_atomic(directory / WEIGHTS_FILE, weights)
    _write_atomic(directory / CONFIG_FILE, _canonical(content).encode())
    return directory


def _read_config(directory: Path) -> dict[str, Any]:
    config_path = directory / CONFIG_FILE
    if not directory.is_dir():
        raise ModelFileError(f"model directory not found: {directory}")
    if not config_path.is_file():
        raise ModelFileError(f"{config_path} is missing; is {directory} a deepsad model directory?")
    raw = config_path.read_bytes()
    try:
        content = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelFileError(f"{config_path} is corrupt (not valid JSON: {error})") from None
    if not isinstance(content, dict) or content.get("format") != FORMAT_NAME:
        raise ModelFileError(f"{config_path} is not a deepsad model file")
    version = content.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelFileError(
            f"{config_path} has model format version {version!r}; this deepsad reads versions up to "
            f"{FORMAT_VERSION} (upgrade deepsad)"
        )
    claimed = content.pop("content_sha256", None)
    if raw.decode("utf-8") != _canonical({**content, "content_sha256": claimed}) or claimed != _sha256(
        _canonical(content).encode()
    ):
        raise ModelFileError(f"{config_path} was modified after saving (checksum mismatch); refusing to load it")
    return content


def load(
    path: str | os.PathLike,
    *,
    network: Any = None,
    decoder: Any = None,
    device: Any = "auto",
) -> Any:
    """Load a detector saved with :func:`save`, verifying both files' checksums.

    Parameters
    ----------
    path : str or path-like
        The model directory.
    network, decoder : torch.nn.Module, optional
        Needed only for models trained with a custom network module: an instance of the
        same architecture to load the weights into (weights are never unpickled).
    device : str or torch.device, default="auto"
        Where the loaded model scores; a model trained on a GPU loads on a CPU-only
        machine.

    Returns
    -------
    The fitted detector.

    Raises
    ------
    ModelFileError
        If the directory or a file is missing, truncated, corrupt or modified.
    """
    from safetensors import SafetensorError
    from safetensors.numpy import load as load_arrays

    directory = Path(path)
    content = _read_config(directory)
    weights_path = directory / WEIGHTS_FILE
    if not weights_path.is_file():
        raise ModelFileError(f"{weights_path} is missing")
    weights = weights_path.read_bytes()
    if _sha256(weights) != content.get("weights_sha256"):
        raise ModelFileError(
            f"{weights_path} does not match the checksum in {CONFIG_FILE} (truncated or modified); refusing to load it"
        )
    try:
        arrays = load_arrays(weights)
    except (SafetensorError, ValueError, OSError) as error:
        raise ModelFileError(f"{weights_path} is corrupt: {error}") from None
    classes = _registry()
    name = content.get("class")
    if name not in classes:
        raise ModelFileError(f"{directory} holds an unknown detector class {name!r}")
    params = dict(content["params"])
    if isinstance(params.get("network"), dict) and params["network"].get("type") == "custom":
        if network is None:
            raise ModelFileError(
                f"{directory} was trained with a custom network ({params['network'].get('class')}); "
                "pass an instance of it: deepsad.load(path, network=...)"
            )
        params["network"] = network
    if isinstance(params.get("decoder"), dict):
        params["decoder"] = decoder
    # JSON has no tuples; sequence parameters were tuples when saved
    params = {key: tuple(value) if isinstance(value, list) else value for key, value in params.items()}
    if "device" in params:
        params["device"] = device
    upgrade = getattr(classes[name], "_upgrade_saved_params", None)
    if upgrade is not None:
        params = upgrade(params, int(content["format_version"]))
    try:
        estimator = classes[name](**params)
        estimator._import_state(arrays, content["fitted"])
    except (KeyError, TypeError, RuntimeError) as error:
        raise ModelFileError(f"{directory} does not describe a valid {name} model: {error}") from None
    return estimator
