"""Saving and loading fitted detectors without pickle.

A model directory holds two files:

``weights-<checksum>.safetensors``
    Every array of the fitted state (network weights, centre, ...), in safetensors,
    named by the first 16 hex digits of its SHA-256 (files of format 3 and older:
    ``weights.safetensors``).
``model.json``
    The estimator class and parameters, fitted metadata, the package versions, the name
    and SHA-256 of the weights file and a SHA-256 of the JSON content itself.

Saving is atomic: the new weights go to a file of their own name next to the old ones,
and replacing ``model.json`` (one ``rename``) switches the directory from the old model
to the new; only then are older weights files removed. A save interrupted at any
instant leaves the old model or the new one loadable, never a mix.

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
import re
import secrets
from pathlib import Path
from typing import Any

import numpy as np

from deepsad._version import __version__
from deepsad.detector_registry import detector_class_by_name, detector_class_names
from deepsad.errors import InvalidInputError, ModelFileError

FORMAT_NAME = "deepsad-model"
#: Format versions, one line each: why it came. Files of every older version load (their
#: differences are upgraded on load); a newer one is refused with "upgrade deepsad".
#: 1: deepsad 0.1.0: safetensors weights + checksummed canonical JSON; LeNets in stock layers.
#: 2: LeNet weights in the fused speed layers' numbering (a format-1 reader refuses, not misloads).
#: 3: Deep SAD / Deep SVDD ensembles, "auto" recipe parameters, MLPSpec batch_norm / init_gain.
#: 4: the weights file named by its checksum (``weights_file``), which makes saving atomic.
#: 5: LeNet weights under their canonical stock-layer names again (format 1's), readable by anyone.
FORMAT_VERSION = 5
#: Format versions whose LeNet weights use the fused-layer numbering.
FUSED_LENET_NAMES_VERSIONS = (2, 3, 4)
#: The weights file of formats 1 to 3.
WEIGHTS_FILE = "weights.safetensors"
CONFIG_FILE = "model.json"
_WEIGHTS_NAME = re.compile(r"^weights(-[0-9a-f]{16})?\.safetensors$")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _canonical(content: dict[str, Any]) -> str:
    return json.dumps(content, sort_keys=True, indent=2, allow_nan=False) + "\n"


def _versions() -> dict[str, str]:
    import safetensors
    import sklearn
    import torch

    return {
        "deepsad": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "safetensors": safetensors.__version__,
        "python": platform.python_version(),
    }


def _fit_seconds(estimator: Any) -> float | None:
    seconds = getattr(estimator, "fit_seconds_", None)
    return None if seconds is None else round(float(seconds), 3)


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and one rename.

    The temporary file is created with mode 0o666 so that the process's umask decides
    the final permissions, as for any file the user writes (``tempfile.mkstemp`` would
    give 0o600); a failure removes it.
    """
    tmp = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def weights_file_name(weights: bytes) -> str:
    """The name under which a model directory holds the safetensors bytes ``weights``."""
    return f"weights-{_sha256(weights)[:16]}.safetensors"


def _remove_stale_weights(directory: Path, keep: str) -> None:
    """Delete the weights files of earlier saves (after the new model.json is in place)."""
    for entry in directory.iterdir():
        if entry.name != keep and _WEIGHTS_NAME.match(entry.name) and entry.is_file():
            entry.unlink(missing_ok=True)


def save(estimator: Any, path: str | os.PathLike) -> Path:
    """Save a fitted detector to the directory ``path`` (created if needed).

    Parameters
    ----------
    estimator : fitted detector
        Any deepsad detector (``DeepSAD``, ``DeepSVDD``, the baselines).
    path : str or path-like
        Directory to write the weights file and ``model.json`` into. A model saved there
        before is replaced atomically: an interrupted save leaves the old model or the
        new one loadable.

    Returns
    -------
    pathlib.Path
        The model directory.
    """
    from safetensors.numpy import save as save_arrays
    from sklearn.utils.validation import check_is_fitted

    name = type(estimator).__name__
    if name not in detector_class_names():
        raise InvalidInputError(f"cannot save a {name}; savable detectors: {', '.join(detector_class_names())}")
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
        # the wall time of fit (deepsad info); None for a model trained without it (fit_stacked)
        "fit_seconds": _fit_seconds(estimator),
        "weights_file": weights_file_name(weights),
        "weights_sha256": _sha256(weights),
    }
    try:
        text = _canonical(content)
    except (TypeError, ValueError) as error:
        raise InvalidInputError(f"cannot save {name}: a parameter or fitted value is not JSON-serialisable ({error})") from None
    content["content_sha256"] = _sha256(text.encode())
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    # the new weights first, under their own name: the old model.json still names the
    # old weights, so until the rename below the directory holds the old model
    _write_atomic(directory / content["weights_file"], weights)
    _write_atomic(directory / CONFIG_FILE, _canonical(content).encode())
    _remove_stale_weights(directory, keep=content["weights_file"])
    return directory


def read_config(path: str | os.PathLike) -> dict[str, Any]:
    """The verified ``model.json`` content of the model directory ``path`` (no weights loaded).

    Raises
    ------
    ModelFileError
        If the directory or ``model.json`` is missing, corrupt, modified or of a newer
        format.
    """
    return _read_config(Path(path))


def weights_path(path: str | os.PathLike) -> Path:
    """The weights file of the model saved in the directory ``path``, as its ``model.json`` names it.

    Raises
    ------
    ModelFileError
        If the directory is not a deepsad model directory or its ``model.json`` fails
        its checks.
    """
    directory = Path(path)
    return directory / _weights_name(_read_config(directory), directory)


def _weights_name(content: dict[str, Any], directory: Path) -> str:
    name = content.get("weights_file", WEIGHTS_FILE)
    if not isinstance(name, str) or not _WEIGHTS_NAME.match(name):
        # never follow a path out of the directory, whatever the file says
        raise ModelFileError(f"{directory / CONFIG_FILE} names an invalid weights file {name!r}")
    return name


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
    content["content_sha256"] = claimed  # verified above
    return content


def _upgrade_weight_names(arrays: dict[str, np.ndarray], content: dict[str, Any]) -> dict[str, np.ndarray]:
    """The weights of a file of an older format under today's names.

    Formats 2 to 4 saved LeNets (recognised by the saved spec) in the fused-layer
    numbering; formats 1 and 5 use the canonical names. A custom network's weights are
    passed on as saved.
    """
    fitted = content.get("fitted")
    spec = fitted.get("spec") if isinstance(fitted, dict) else None
    if content.get("format_version") not in FUSED_LENET_NAMES_VERSIONS or not isinstance(spec, dict) \
            or spec.get("type") != "lenet":
        return arrays
    from deepsad.models.lenet_names import canonical_lenet_names

    return canonical_lenet_names(arrays)


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
    weights_file = directory / _weights_name(content, directory)
    if not weights_file.is_file():
        raise ModelFileError(f"{weights_file} is missing")
    weights = weights_file.read_bytes()
    if _sha256(weights) != content.get("weights_sha256"):
        raise ModelFileError(
            f"{weights_file} does not match the checksum in {CONFIG_FILE} (truncated or modified); refusing to load it"
        )
    try:
        arrays = load_arrays(weights)
    except (SafetensorError, ValueError, OSError) as error:
        raise ModelFileError(f"{weights_file} is corrupt: {error}") from None
    name = content.get("class")
    if not isinstance(name, str) or name not in detector_class_names():
        raise ModelFileError(f"{directory} holds an unknown detector class {name!r}")
    cls = detector_class_by_name(name)
    try:
        arrays = _upgrade_weight_names(arrays, content)
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
        upgrade = getattr(cls, "_upgrade_saved_params", None)
        if upgrade is not None:
            params = upgrade(params, int(content["format_version"]))
        estimator = cls(**params)
        estimator._import_state(arrays, content["fitted"])
        if content.get("fit_seconds") is not None:
            estimator.fit_seconds_ = float(content["fit_seconds"])
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, RuntimeError) as error:
        # a consistent (checksummed) file with content no deepsad wrote, e.g. a threshold "high"
        raise ModelFileError(f"{directory} does not describe a valid {name} model: {error}") from None
    return estimator
