"""deepsad's detectors as PyOD detectors (optional: needs ``pip install pyod``).

PyOD, the most used anomaly-detection toolkit in Python, speaks a different dialect
from scikit-learn and from deepsad itself:

=====================  ===============================  ===================================
                       deepsad (the paper's)            PyOD (this module)
=====================  ===============================  ===================================
``fit`` labels ``y``   -1 labeled anomaly, +1 labeled   1 labeled anomaly, 0 unlabeled
                       normal, 0 unlabeled
``decision_function``  higher = more normal (sklearn)   higher = more anomalous
``predict``            +1 normal / -1 anomaly           0 normal / 1 anomaly
``contamination``      default ``"auto"``               default 0.1
=====================  ===============================  ===================================

Each class here subclasses :class:`pyod.models.base.BaseDetector`, translates the labels
and wraps the deepsad estimator of the same name (``detector_``): its parameters are the
wrapped estimator's, passed through unchanged, plus PyOD's ``contamination``, so
``get_params`` / ``set_params`` / :func:`sklearn.base.clone` and every PyOD utility
(``predict_proba``, ``predict_confidence``, score combination, ...) work as with PyOD's
own detectors. Labeled normals (deepsad's +1) have no place in PyOD's convention; use
the deepsad estimators directly for them.

The methods wrapped: :class:`DeepSAD` and :class:`DeepSVDD` (the package's subject),
and the two semi-supervised baselines PyOD lacks, :class:`SSAD` (Görnitz et al., 2013)
and :class:`DevNet` (Pang et al., 2019). The unsupervised shallow baselines (OC-SVM,
Isolation Forest, KDE) are not: PyOD has its own.

Examples
--------
>>> from pyod.utils.data import generate_data
>>> from deepsad.pyod import DeepSAD
>>> X_train, X_test, y_train, y_test = generate_data(
...     n_train=200, n_test=100, n_features=4, contamination=0.1, random_state=0)
>>> clf = DeepSAD(epochs=5, random_state=0).fit(X_train, y_train)  # 1 = anomaly
>>> clf.decision_function(X_test).shape, sorted(set(clf.predict(X_test).tolist()))
((100,), [0, 1])
"""

from __future__ import annotations

import inspect
import textwrap
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
from sklearn.utils.validation import check_is_fitted

try:
    from pyod.models.base import BaseDetector
except ModuleNotFoundError as error:
    if error.name is None or error.name.split(".")[0] != "pyod":
        raise  # pyod is there but one of its own dependencies is missing: show that
    raise ImportError(
        "deepsad.pyod needs PyOD, an optional dependency: pip install pyod "
        "(or pip install 'deepsad[pyod]')"
    ) from error

from deepsad.baselines.devnet import DevNet as _DeepsadDevNet
from deepsad.baselines.ssad import SSAD as _DeepsadSSAD
from deepsad.detectors.deep_sad import DeepSAD as _DeepsadDeepSAD
from deepsad.detectors.deep_svdd import DeepSVDD as _DeepsadDeepSVDD
from deepsad.errors import InvalidInputError
from deepsad.validation import as_numpy

__all__ = ["DeepSAD", "DeepSVDD", "DevNet", "SSAD"]

#: PyOD's default contamination (deepsad's own estimators default to "auto").
DEFAULT_CONTAMINATION = 0.1


def _passthrough_init(estimator_class: type) -> Callable[..., None]:
    """An ``__init__`` taking PyOD's ``contamination`` plus every parameter of ``estimator_class``.

    scikit-learn and PyOD find an estimator's parameters by reading its ``__init__``
    signature. Writing the wrapped estimator's twenty-odd parameters out again would
    let the two lists drift apart; instead the signature is built from the wrapped
    class and set as ``__signature__``, which ``inspect.signature`` (and with it
    ``get_params``, ``clone`` and ``help``) reports. The wrapped estimator's own
    ``contamination`` is replaced by PyOD's, whose default is 0.1.
    """
    inner = inspect.signature(estimator_class.__init__).parameters
    parameters = [
        inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        inspect.Parameter("contamination", inspect.Parameter.KEYWORD_ONLY, default=DEFAULT_CONTAMINATION),
    ]
    parameters += [
        parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY)
        for name, parameter in inner.items()
        if name not in ("self", "contamination")
    ]
    signature = inspect.Signature(parameters)

    def __init__(self: BaseDetector, **params: Any) -> None:
        # binding raises the TypeError Python gives for an unknown keyword
        bound = signature.bind(self, **params)
        bound.apply_defaults()
        values = dict(bound.arguments)
        del values["self"]
        # PyOD checks contamination here (a number in (0, 0.5], or a PyThresh object)
        BaseDetector.__init__(self, contamination=values.pop("contamination"))
        for name, value in values.items():
            setattr(self, name, value)

    __init__.__signature__ = signature  # type: ignore[attr-defined]
    __init__.__doc__ = f"See the class documentation; the parameters are those of {estimator_class.__name__}."
    return __init__


def _semi_labels_from_pyod(y: Any) -> np.ndarray | None:
    """PyOD's labels (1 labeled anomaly, 0 unlabeled) as deepsad's semi-labels (-1, 0).

    Anything else is refused: a -1 most likely means deepsad's convention was meant,
    which this module would otherwise read wrongly.
    """
    if y is None:
        return None
    y = np.asarray(as_numpy(y))
    if y.ndim == 2 and y.shape[1] == 1:
        y = y.ravel()
    if y.ndim != 1:
        raise InvalidInputError(f"y must be one-dimensional, got shape {y.shape}")
    if y.dtype.kind not in "biuf":
        raise InvalidInputError(
            f"y must hold the numbers 1 (labeled anomaly) or 0 (unlabeled), got values of type {y.dtype}"
        )
    bad = np.setdiff1d(np.unique(y), (0, 1))  # NaN is never equal to 0 or 1, so it lands here too
    if bad.size:
        shown = ", ".join(str(v) for v in bad[:10].tolist())
        raise InvalidInputError(
            "y must hold 1 (labeled anomaly) or 0 (unlabeled), PyOD's convention; got "
            f"{shown}. For deepsad's semi-labels (-1 labeled anomaly, +1 labeled normal, 0 unlabeled) "
            "use the estimators of deepsad itself (deepsad.DeepSAD, ...) instead of deepsad.pyod"
        )
    return np.where(y == 1, -1, 0).astype(np.int8)


class _PyODAdapter(BaseDetector):
    """Fit / score plumbing shared by the adapters (not for direct use).

    Subclasses set ``_estimator_class`` and ``__init__ = _passthrough_init(...)``.
    """

    #: The wrapped deepsad estimator; its ``uses_semi_labels`` says whether ``y`` reaches it.
    _estimator_class: ClassVar[type]
    #: whether it cannot train without at least one labeled anomaly
    _needs_labeled_anomalies: ClassVar[bool] = False

    def _estimator_params(self) -> dict[str, Any]:
        names = inspect.signature(type(self).__init__).parameters
        params = {name: getattr(self, name) for name in names if name not in ("self", "contamination")}
        # the wrapped estimator's own threshold then agrees with ours; a PyThresh object
        # means "no fixed fraction", which deepsad calls "auto"
        contamination = self.contamination
        numeric = isinstance(contamination, (int, float, np.number)) and not isinstance(contamination, bool)
        params["contamination"] = float(contamination) if numeric else "auto"
        return params

    def fit(self, X: Any, y: Any = None) -> _PyODAdapter:
        """Fit the detector.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training samples (images ``(n_samples, c, h, w)`` too, for the deep methods).
        y : array-like of shape (n_samples,) or None, default=None
            PyOD's convention: 1 labeled anomaly, 0 unlabeled (``None``: all unlabeled).
            Ground truth for all samples may be passed: the anomalies then all count as
            labeled. Unsupervised methods validate and then ignore it, as PyOD's do.

        Returns
        -------
        self
            The fitted detector.

        Raises
        ------
        deepsad.errors.InvalidInputError
            A ``ValueError``: for ``y`` holding anything but 0 and 1 (a -1 suggests
            deepsad's own convention), and for every input the wrapped estimator refuses.
        """
        semi_labels = _semi_labels_from_pyod(y)
        if not self._estimator_class.uses_semi_labels:
            semi_labels = None
        elif self._needs_labeled_anomalies and (semi_labels is None or not np.any(semi_labels == -1)):
            raise InvalidInputError(
                f"{type(self).__name__} needs labeled anomalies: pass y with 1 for at least one known anomaly "
                "(0 for the other samples)"
            )
        detector = self._estimator_class(**self._estimator_params())
        detector.fit(X, semi_labels)
        self.detector_ = detector
        self.n_features_in_ = detector.n_features_in_
        self.decision_scores_ = np.asarray(detector.anomaly_score(X), dtype=np.float64)
        self._set_n_classes(None)  # predict_proba's two columns; None: no "y in unsupervised" warning
        self._process_decision_scores()  # PyOD's threshold_ and labels_ from contamination
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """Anomaly score of each sample: higher = more anomalous (PyOD's convention).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples shaped like the training data.

        Returns
        -------
        numpy.ndarray of shape (n_samples,)
            The wrapped estimator's ``anomaly_score(X)``.
        """
        check_is_fitted(self, ["detector_"])
        return np.asarray(self.detector_.anomaly_score(X), dtype=np.float64)


def _adapter_docstring(summary: str, *, wrapped: str, params_shown: str, examples: str = "") -> str:
    """The numpydoc docstring of one adapter: its own summary, the shared sections.

    Every adapter has the same parameters (PyOD's ``contamination`` plus the wrapped
    estimator's) and the same fitted attributes; only the summary, the wrapped class and
    the parameters named as examples differ, so the sections are written once here.

    Parameters
    ----------
    summary : str
        The first lines of the docstring (the one-line summary and a paragraph), dedented.
    wrapped : str
        The dotted name of the wrapped deepsad estimator, e.g. ``"deepsad.DeepSAD"``.
    params_shown : str
        A few of its parameter names, shown as examples (``"``epochs``, ..."``).
    examples : str, default=""
        An ``Examples`` section, dedented, or nothing.

    Returns
    -------
    str
        The docstring, indented like one written in the class body.
    """
    sections = f"""{summary.strip()}

Parameters
----------
contamination : float in (0, 0.5] or PyThresh object, default=0.1
    Expected fraction of anomalies; sets ``threshold_`` and ``labels_``.
**params
    Every parameter of :class:`{wrapped}` but its ``contamination``
    ({params_shown}, ...), with its defaults.

Attributes
----------
detector_ : {wrapped}
    The fitted deepsad estimator (its own ``decision_function`` and ``predict``
    follow scikit-learn's conventions, not PyOD's).
decision_scores_ : numpy.ndarray of shape (n_samples,)
    Anomaly scores of the training data (higher = more anomalous).
threshold_ : float
    The ``(1 - contamination)`` percentile of ``decision_scores_``, as PyOD computes it.
labels_ : numpy.ndarray of shape (n_samples,)
    1 for training samples scoring above ``threshold_``, else 0.
n_features_in_ : int
    Number of features (the size of one sample).
"""
    if examples:
        sections += "\n" + examples.strip() + "\n"
    # the first line unindented and the rest by four, as Python keeps a class docstring
    first, _, rest = sections.partition("\n")
    return first + "\n" + textwrap.indent(rest, "    ", lambda line: bool(line.strip())) + "    "


class DeepSAD(_PyODAdapter):
    __doc__ = _adapter_docstring(
        """Deep SAD (Ruff et al., ICLR 2020) as a PyOD detector.

``fit(X, y)`` takes PyOD's labels: 1 labeled anomaly, 0 unlabeled; the labeled
anomalies are pushed away from the hypersphere centre (deepsad's -1). Without labels
Deep SAD is the one-class Deep SVDD.""",
        wrapped="deepsad.DeepSAD",
        params_shown="``epochs``, ``network``, ``eta``, ``random_state``",
        examples="""Examples
--------
>>> from pyod.utils.data import generate_data
>>> from deepsad.pyod import DeepSAD
>>> X_train, X_test, y_train, y_test = generate_data(
...     n_train=200, n_test=100, n_features=4, random_state=0)
>>> clf = DeepSAD(epochs=5, random_state=0).fit(X_train, y_train)
>>> clf.predict_proba(X_test).shape
(100, 2)""",
    )

    _estimator_class = _DeepsadDeepSAD
    __init__ = _passthrough_init(_DeepsadDeepSAD)


class DeepSVDD(_PyODAdapter):
    __doc__ = _adapter_docstring(
        """deepsad's Deep SVDD (Ruff et al., ICML 2018; one-class or soft-boundary) as a PyOD detector.

Unsupervised: ``y`` is validated (1 / 0) and ignored, as by PyOD's own unsupervised
detectors. PyOD ships a Deep SVDD of its own; this one is the paper's (bias-free
network, fixed centre, the soft-boundary objective, deepsad's tabular defaults).""",
        wrapped="deepsad.DeepSVDD",
        params_shown="``objective``, ``nu``, ``epochs``, ``random_state``",
    )

    _estimator_class = _DeepsadDeepSVDD
    __init__ = _passthrough_init(_DeepsadDeepSVDD)


class SSAD(_PyODAdapter):
    __doc__ = _adapter_docstring(
        """Semi-supervised anomaly detection (Görnitz et al., 2013) as a PyOD detector.

A kernel method (needs ``pip install cvxopt``); ``fit(X, y)`` takes 1 for labeled
anomalies, 0 for unlabeled samples. Without labels it is the OC-SVM / SVDD.""",
        wrapped="deepsad.baselines.SSAD",
        params_shown="``gamma``, ``kappa``, ``Cu``, ``Cn``",
    )

    _estimator_class = _DeepsadSSAD
    __init__ = _passthrough_init(_DeepsadSSAD)


class DevNet(_PyODAdapter):
    __doc__ = _adapter_docstring(
        """The deviation network (Pang, Shen & van den Hengel, KDD 2019) as a PyOD detector.

Needs labeled anomalies: ``fit(X, y)`` with 1 for at least one known anomaly, 0
for the other samples (which it treats as normal, tolerating contamination).""",
        wrapped="deepsad.baselines.DevNet",
        params_shown="``hidden_sizes``, ``margin``, ``epochs``",
    )

    _estimator_class = _DeepsadDevNet
    _needs_labeled_anomalies = True
    __init__ = _passthrough_init(_DeepsadDevNet)
