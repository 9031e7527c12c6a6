"""Fit several Deep SAD / Deep SVDD estimators at once (seeds or data draws of one grid cell).

:func:`fit_stacked` runs each estimator's own fit pipeline step by step — validation,
standardization, seeds, network construction, centre — and replaces only the two
training loops (autoencoder pretraining and phi's training) by one stacked loop over all
estimators (:func:`deepsad.training.stacked.train_stacked`). Each estimator therefore
ends as if ``est.fit(X, y)`` had been called on it, up to floating-point reassociation.

Where it pays: on small networks, whose steps are dominated by per-step overhead
(the ODDS MLPs), on the MNIST LeNet, whose 1 -> 8 -> 4 channel convolutions are too
narrow for the CPU's vector units until K models run side by side as grouped layers,
and on a GPU, which one tiny model cannot fill (numbers in docs/performance.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from deepsad.detectors.deep_base import BaseDeepDetector, autoencoder_output_loss, mean_history, precision_of
from deepsad.errors import InvalidInputError
from deepsad.training import threads_for_fit
from deepsad.training.stacked import check_strategy, train_stacked

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
    if any(not estimator._supports_stacking() for estimator in estimators):
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
    if autoencoders is not None and len(autoencoders) != len(estimators):
        raise InvalidInputError(
            f"got {len(estimators)} estimators and {len(autoencoders)} autoencoders; give one per estimator or none"
        )
    for estimator in estimators:
        estimator._check_method_params()
    states = [est._begin_fit(X_k, y_k) for est, X_k, y_k in zip(estimators, datasets, labels)]
    shapes = {tuple(state.X.shape) for state in states}
    if len(shapes) > 1:
        raise InvalidInputError(
            f"fit_stacked needs training sets of one shape (their mini-batches run in step); got {sorted(shapes)}"
        )
    if autoencoders is not None and any(len(state.members or [state]) > 1 for state in states):
        raise InvalidInputError(
            "autoencoders= gives one autoencoder per estimator; ensembles (n_networks > 1) pretrain their own"
        )
    first = estimators[0]
    device = first._device
    n_samples = states[0].X.shape[0]

    # under tuned_threads() the plain fit's thread rule holds for the stack too
    with threads_for_fit(first.spec_, first.input_shape_, device):
        centers, histories = _train_both_phases(estimators, states, autoencoders, device, n_samples, strategy)
    for est, state, est_centers, est_histories in zip(estimators, states, centers, histories):
        est.loss_history_ = mean_history(est_histories)
        est._finish_fit(state, est_centers if len(est_centers) > 1 else est_centers[0])
    return estimators


def _train_both_phases(estimators: list[BaseDeepDetector], states: list[Any], autoencoders: Sequence[nn.Module] | None,
                       device: Any, n_samples: int, strategy: str) -> tuple[list[list[Any]], list[list[list[float]]]]:
    """Pretrain (or adopt) the autoencoders, then train every network of every estimator.

    An ensemble estimator contributes each of its networks (``state.members``); returns,
    per estimator, its networks' centres and loss histories.
    """
    first = estimators[0]
    owners = [(index, member) for index, state in enumerate(states) for member in (state.members or [state])]
    if autoencoders is not None:
        for est, state, autoencoder in zip(estimators, states, autoencoders):
            est._adopt_autoencoder(state, autoencoder, reused=True)
    elif first._wants_pretraining():
        built = [estimators[index]._new_autoencoder(member) for index, member in owners]
        histories = train_stacked(
            [autoencoder for autoencoder, _, _ in built],
            autoencoder_output_loss,
            [(X_pre,) for _, X_pre, _ in built],
            n_samples,
            first._pretrain_config(),
            generators=[generator for _, _, generator in built],
            device=device,
            description="stacked autoencoder pretraining",
            strategy=strategy,
        )
        for k, (est, state) in enumerate(zip(estimators, states)):
            mine = [i for i, (index, _) in enumerate(owners) if index == k]
            for i in mine:
                est._transfer_encoder(built[i][0], owners[i][1].phi)
            est.autoencoders_ = [built[i][0].eval() for i in mine]
            est.autoencoder_ = est.autoencoders_[0]
            est.autoencoder_reused_ = False
            est.pretrain_loss_history_ = mean_history([histories[i] for i in mine])

    centers = [estimators[index]._init_center(m.phi, m.X, m.semi_labels) for index, m in owners]
    histories = train_stacked(
        [member.phi for _, member in owners],
        first._output_loss,  # reads only settings that are equal for every estimator
        [(m.X, m.semi_labels, center) for (_, m), center in zip(owners, centers)],
        n_samples,
        first._train_config(),
        generators=[member.generator for _, member in owners],
        device=device,
        description=f"stacked training of {len(owners)} {type(first).__name__} networks",
        strategy=strategy,
    )
    per_centers: list[list[Any]] = [[] for _ in estimators]
    per_histories: list[list[list[float]]] = [[] for _ in estimators]
    for (index, _), center, history in zip(owners, centers, histories):
        per_centers[index].append(center)
        per_histories[index].append(history)
    return per_centers, per_histories
