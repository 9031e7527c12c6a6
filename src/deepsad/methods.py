"""Every detector of the package by a stable name: the one table the CLI and the experiments use.

Names: ``deepsad``, ``deepsvdd``, the shallow baselines ``ocsvm``, ``iforest``, ``kde``,
``ssad``, the deep baselines ``cae``, ``supervised``, ``ssdgm``, the hybrids
``hybrid-<shallow>`` (a shallow method on autoencoder codes), and ``devnet`` (DevNet,
Pang et al. 2019; not in the paper, a baseline of ours). Classes are imported on
first use, so that importing this module does not import torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deepsad.detector_registry import detector_class_by_name
from deepsad.errors import InvalidInputError

#: name -> class name of the detector behind it (where the class lives: deepsad.detector_registry)
_CLASSES: dict[str, str] = {
    "deepsad": "DeepSAD",
    "deepsvdd": "DeepSVDD",
    "ocsvm": "OCSVM",
    "iforest": "IsolationForestDetector",
    "kde": "KDEDetector",
    "ssad": "SSAD",
    "cae": "CAE",
    "supervised": "SupervisedClassifier",
    "ssdgm": "SSDGM",
    "devnet": "DevNet",
}

#: shallow methods that have a hybrid form
HYBRID_SHALLOW = ("ocsvm", "iforest", "kde", "ssad")


def method_names() -> tuple[str, ...]:
    """All method names, in the paper's order of presentation; methods not in the paper follow."""
    return (
        "ocsvm",
        "hybrid-ocsvm",
        "iforest",
        "hybrid-iforest",
        "kde",
        "hybrid-kde",
        "cae",
        "deepsvdd",
        "ssad",
        "hybrid-ssad",
        "ssdgm",
        "deepsad",
        "supervised",
        "devnet",
    )


def check_method(name: Any) -> str:
    """Return ``name`` if it is a known method, else raise an error listing the known ones."""
    if not isinstance(name, str) or name not in method_names():
        raise InvalidInputError(f"unknown method {name!r}; known methods: {', '.join(method_names())}")
    return name


def uses_labels(name: str) -> bool:
    """Whether the method's ``fit`` uses labeled samples (``False``: they count as unlabeled).

    The detector class says so in its ``uses_semi_labels`` attribute; a ``hybrid-<shallow>``
    method uses labels where its shallow method does. Imports the class (and torch).
    """
    name = check_method(name)
    if name.startswith("hybrid-"):
        return uses_labels(name.removeprefix("hybrid-"))
    return bool(detector_class(name).uses_semi_labels)


def detector_class(name: str) -> type:
    """The estimator class behind a method name (``Hybrid`` for the ``hybrid-*`` names)."""
    name = check_method(name)
    class_name = "Hybrid" if name.startswith("hybrid-") else _CLASSES[name]
    try:
        return detector_class_by_name(class_name)
    except (KeyError, AttributeError):  # a method whose class is not part of this build
        raise InvalidInputError(f"method {name!r} is not available in this version of deepsad") from None


def parameter_names(name: str) -> tuple[str, ...]:
    """The parameters :func:`make_detector` accepts for ``name``."""
    params = detector_class(name)().get_params(deep=False)
    if name.startswith("hybrid-"):
        params.pop("shallow")  # fixed by the name
    return tuple(sorted(params))


def make_detector(name: str, params: Mapping[str, Any] | None = None) -> Any:
    """Build an unfitted detector by method name.

    Parameters
    ----------
    name : str
        One of :func:`method_names`.
    params : mapping, optional
        Constructor parameters; lists are passed as tuples (configs and JSON have no
        tuples). For ``hybrid-<shallow>``, ``shallow_params`` configure the shallow
        method and ``cae_params`` the autoencoder trained when none is given.

    Returns
    -------
    estimator
        A scikit-learn style detector with ``fit(X, y)`` and ``anomaly_score(X)``.

    Raises
    ------
    InvalidInputError
        Unknown method, or a parameter the method does not have (the message lists
        the valid ones).
    """
    cls = detector_class(name)
    params = dict(params or {})
    valid = parameter_names(name)
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise InvalidInputError(
            f"unknown parameter(s) {', '.join(unknown)} for method {name!r}; valid: {', '.join(valid)}"
        )
    params = {key: tuple(value) if isinstance(value, list) else value for key, value in params.items()}
    if name.startswith("hybrid-"):
        params["shallow"] = name.removeprefix("hybrid-")
    return cls(**params)
