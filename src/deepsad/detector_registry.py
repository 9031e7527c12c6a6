"""The detector classes of the package by class name: the one table of where each lives.

A saved model names its estimator by class name (``"class"`` in ``model.json``);
:func:`deepsad.load` turns that name back into a class here, and so does
:mod:`deepsad.methods` for its method names. The table names each class's module
instead of importing it: the estimator modules import :mod:`deepsad.persistence` (their
``save`` method), so persistence must reach them without importing them itself, or each
would import the other. A module is imported on the first lookup of one of its classes.
"""

from __future__ import annotations

from importlib import import_module

#: Class name -> the module that defines the class. The names are written into saved
#: model files: renaming one would make every model saved under the old name unloadable.
DETECTOR_CLASSES: dict[str, str] = {
    "DeepSAD": "deepsad.detectors.deep_sad",
    "DeepSVDD": "deepsad.detectors.deep_svdd",
    "OCSVM": "deepsad.baselines.ocsvm",
    "IsolationForestDetector": "deepsad.baselines.iforest",
    "KDEDetector": "deepsad.baselines.kde",
    "SSAD": "deepsad.baselines.ssad",
    "CAE": "deepsad.baselines.cae",
    "SupervisedClassifier": "deepsad.baselines.supervised",
    "Hybrid": "deepsad.baselines.hybrid",
    "SSDGM": "deepsad.baselines.ssdgm",
    "DevNet": "deepsad.baselines.devnet",
}


def detector_class_names() -> tuple[str, ...]:
    """The class names of every detector that can be saved and loaded, sorted."""
    return tuple(sorted(DETECTOR_CLASSES))


def detector_class_by_name(name: str) -> type:
    """The detector class called ``name``, its module imported if it was not yet.

    Parameters
    ----------
    name : str
        A class name as :func:`detector_class_names` lists it.

    Returns
    -------
    type
        The class.

    Raises
    ------
    KeyError
        If no detector class is called ``name``.
    """
    return getattr(import_module(DETECTOR_CLASSES[name]), name)
