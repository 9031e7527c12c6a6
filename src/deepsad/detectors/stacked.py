"""Fit several Deep SAD / Deep SVDD estimators at once (seeds or data draws of one grid cell).

:func:`fit_stacked` runs each estimator's own fit through the public fit steps of
:class:`~deepsad.detectors.deep_base.BaseDeepDetector` — ``plan_fit`` (validation,
standardization, seeds, networks), :func:`~deepsad.detectors.deep_base.pretrain_plans`
and :func:`~deepsad.detectors.deep_base.train_plans` — with the plans of all estimators
trained as one stack (:func:`deepsad.training.stacked.train_stacked`). Each estimator
therefore ends as if ``est.fit(X, y)`` had been called on it, up to floating-point
reassociation. :func:`pretrain_stacked` runs the pretraining step only.

Where it pays: on small networks, whose steps are dominated by per-step overhead
(the ODDS MLPs), on the MNIST LeNet, whose 1 -> 8 -> 4 channel convolutions are too
narrow for the CPU's vector units until K models run side by side as grouped layers,
and on a GPU, which one tiny model cannot fill (numbers in docs/performance.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from deepsad.detectors.deep_base import BaseDeepDetector, FitPlan, precision_of, pretrain_plans, train_plans
from deepsad.errors import InvalidInputError
from deepsad.training.stacked import check_strategy

#: Parameters that may differ between stacked estimators; all others must be equal.
PER_ESTIMATOR_PARAMS = frozenset({"random_state", "verbose"})


def _check_compatible(estimators: Sequence[BaseDeepDetector]) -> None:
    if len(estimators) == 0:
        raise InvalidInputError("fit_stacked needs at least one estimator")
    first = estimators[0]
    if not isinstance(first, BaseDeepDetector):
        raise InvalidInputError(f"fit_stacked takes DeepSAD / DeepSVDD estimators, got {type(first).__name__}")
    if len({id(estimator) for estimator in estimators}) < len(estimators):
        raise InvalidInputError("fit_stacked needs distinct estimator objects; the same estimator appears twice")
    reference = {k: v for k, v in first.get_params(deep=False).items() if k not in PER_ESTIMATOR_PARAMS}
    for index, estimator in enumerate(estimators[1:], start=1):
        if type(estimator) is not type(first):
            raise InvalidInputError(
                f"fit_stacked needs estimators of one class; estimator {index} is a "
                f"{type(estimator).__name__}, estimator 0 a {type(first).__name__}"
            )
        params = {k: v for k, v in estimator.get_params(deep=False).items() if k not in PER_ESTIMATOR_PARAMS}
        differing = sorted(k for k in reference if repr(params[k]) != repr(reference[k]))
        if differing:
            raise InvalidInputError(
                f"fit_stacked needs equal settings apart from {sorted(PER_ESTIMATOR_PARAMS)}; "
                f"estimator {index} differs from estimator 0 in {', '.join(differing)}"
            )
    if any(not estimator.has_stackable_objective() for estimator in estimators):
        raise InvalidInputError(
            "this objective cannot be trained stacked (soft-boundary Deep SVDD re-solves its radius "
            "between batches); fit the estimators one by one"
        )
    if precision_of(estimators[0]) != "float32":
        # torch's batching rule for BatchNorm needs input and running statistics of one
        # dtype, which bfloat16 autocast breaks (RuntimeError inside vmap)
        raise InvalidInputError(
            f"fit_stacked trains in float32 only, got precision={precision_of(estimators[0])!r}; "
            "fit bfloat16 estimators one by one"
        )


def fit_stacked(
    estimators: Sequence[BaseDeepDetector],
    X: Sequence[Any],
    y: Sequence[Any] | None = None,
    *,
    autoencoders: Sequence[nn.Module] | None = None,
    strategy: str = "auto",
) -> list[BaseDeepDetector]:
    """Fit K estimators of one class and one configuration together.

    Parameters
    ----------
    estimators : sequence of DeepSAD or sequence of DeepSVDD
        Unfitted or fitted estimators with equal parameters except ``random_state``
        (and ``verbose``). A custom ``network`` module is allowed (all share it).
    X : sequence of array-like
        ``X[k]`` is estimator k's training data. All must have the same shape: the
        models take their mini-batches in step.
    y : sequence of array-like or None, optional
        ``y[k]`` are estimator k's semi-labels (Deep SAD; ignored by Deep SVDD), or
        ``None`` for all unlabeled.
    autoencoders : sequence of deepsad.models.Autoencoder, optional
        One trained autoencoder per estimator, used instead of pretraining (as
        ``fit(..., autoencoder=...)`` uses it; e.g. from the experiment runner's cache).
    strategy : {"auto", "grouped", "vmap"}, default="auto"
        How the K networks run together (:func:`deepsad.training.stacked.train_stacked`):
        ``"grouped"`` as one network of K-fold wider grouped layers (deepsad's own LeNet
        and MLP networks; the fast one on CPU), ``"vmap"`` by mapping one functional
        forward over stacked weights (any network, e.g. a custom ``network`` module);
        ``"auto"`` takes grouped where the networks allow it.

    Returns
    -------
    list
        The estimators, fitted; estimator k equals ``estimators[k].fit(X[k], y[k])`` up to
        floating-point reassociation in the batched kernels.

    Raises
    ------
    InvalidInputError
        If the estimators differ in class or settings, the lengths of ``estimators``,
        ``X`` and ``y`` differ, the datasets differ in shape, or the objective cannot be
        stacked (soft-boundary Deep SVDD), for ``precision="bfloat16"``, for an unknown
        ``strategy`` or ``"grouped"`` with a custom network; and for any input a plain
        ``fit`` would refuse.

    Examples
    --------
    >>> import numpy as np
    >>> from deepsad import DeepSAD
    >>> from deepsad.detectors.stacked import fit_stacked
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 6)).astype(np.float32)
    >>> models = [DeepSAD(epochs=2, pretrain_epochs=2, random_state=s) for s in range(3)]
    >>> models = fit_stacked(models, [X, X, X])
    >>> models[2].anomaly_score(X[:4]).shape
    (4,)
    """
    estimators, datasets, labels = _check_inputs(estimators, X, y, strategy)
    if autoencoders is not None and len(autoencoders) != len(estimators):
        raise InvalidInputError(
            f"got {len(estimators)} estimators and {len(autoencoders)} autoencoders; give one per estimator or none"
        )
    plans = [estimator.plan_fit(X_k, y_k) for estimator, X_k, y_k in zip(estimators, datasets, labels)]
    _check_plans(plans, autoencoders)
    pretrain_plans(plans, autoencoders=autoencoders, strategy=strategy)
    train_plans(plans, strategy=strategy)
    return estimators


def pretrain_stacked(
    estimators: Sequence[BaseDeepDetector],
    X: Sequence[Any],
    y: Sequence[Any] | None = None,
    *,
    strategy: str = "auto",
) -> list[nn.Module]:
    """Pretrain, together, the autoencoders :func:`fit_stacked` would pretrain, and nothing more.

    The stacked counterpart of :meth:`BaseDeepDetector.pretrain_autoencoder`: estimator
    k's autoencoder is the one ``estimators[k].pretrain_autoencoder(X[k], y[k])`` trains,
    up to floating-point reassociation. Each estimator's ``autoencoder_``, ``spec_``,
    ``input_shape_`` and ``output_activation_`` are set; none is fitted.

    Parameters
    ----------
    estimators, X, y, strategy
        As for :func:`fit_stacked`; the estimators must pretrain and have one network each.

    Returns
    -------
    list of deepsad.models.Autoencoder
        One trained autoencoder per estimator, in eval mode.

    Raises
    ------
    InvalidInputError
        As :func:`fit_stacked`, and if the estimators do not pretrain or train ensembles.
    """
    estimators, datasets, labels = _check_inputs(estimators, X, y, strategy)
    plans = [estimator.plan_fit(X_k, y_k) for estimator, X_k, y_k in zip(estimators, datasets, labels)]
    _check_plans(plans, None)
    if any(plan.n_networks > 1 for plan in plans):
        raise InvalidInputError("pretrain_stacked pretrains one autoencoder per estimator; these train ensembles")
    if not all(plan.pretrains for plan in plans):
        raise InvalidInputError("pretrain_stacked needs estimators that pretrain (pretrain and pretrain_epochs > 0)")
    pretrain_plans(plans, strategy=strategy)
    return [estimator.autoencoder_ for estimator in estimators]


def _check_inputs(estimators: Sequence[BaseDeepDetector], X: Sequence[Any], y: Sequence[Any] | None,
                  strategy: str) -> tuple[list[BaseDeepDetector], list[Any], list[Any]]:
    estimators = list(estimators)
    _check_compatible(estimators)
    check_strategy(strategy)  # before any fit work, not only when training starts
    datasets = list(X)
    labels = list(y) if y is not None else [None] * len(estimators)
    if not (len(datasets) == len(labels) == len(estimators)):
        raise InvalidInputError(
            f"got {len(estimators)} estimators, {len(datasets)} datasets and {len(labels)} label arrays; "
            "fit_stacked needs one of each per estimator"
        )
    return estimators, datasets, labels


def _check_plans(plans: Sequence[FitPlan], autoencoders: Sequence[nn.Module] | None) -> None:
    shapes = {plan.training_shape for plan in plans}
    if len(shapes) > 1:
        raise InvalidInputError(
            f"fit_stacked needs training sets of one shape (their mini-batches run in step); got {sorted(shapes)}"
        )
    if autoencoders is not None and any(plan.n_networks > 1 for plan in plans):
        raise InvalidInputError(
            "autoencoders= gives one autoencoder per estimator; ensembles (n_networks > 1) pretrain their own"
        )
