r"""The paper's semi-supervised scenarios as pure functions of labels and a generator.

A draw returns indices and semi-labels, never data, so it is cheap, testable and can be
stored next to results. Unlike the reference code, labeled and unlabeled anomalies are
disjoint samples, ODDS train and test sets are disjoint, and a pool that is too small
is an error rather than a silent shortfall.

Counts
------
Notation for the training set: ``n`` unlabeled samples (normals plus pollution), ``m``
labeled anomalies, ``n_ln`` labeled normals.

* ``gamma_l`` is the share of labeled anomalies in the training set (the paper's
  ``gamma_l = m / (n + m)`` when there are no labeled normals)::

      m = R(gamma_l * (n + n_ln) / (1 - gamma_l))

* ``gamma_p`` is the share of anomalies in the unlabeled part. With ``n_un`` unlabeled
  normals::

      n_pollution = R(gamma_p * n_un / (1 - gamma_p)),   n = n_un + n_pollution

* ``labeled_anomaly_fraction`` (tabular benchmarks, with ``keep_all_anomalies``) is the
  share of the training split's ``a_tr`` anomalies that get label -1; every other
  training sample stays, unlabeled: ``m = max(1, R(labeled_anomaly_fraction * a_tr))``
  (0 for a zero fraction or no anomaly), ``n_pollution = a_tr - m``.

* ``ratio_labeled_normal`` (images only) is the share of the normal pool that gets
  label +1: ``n_ln = R(ratio_labeled_normal * n_normal)``, ``n_un = n_normal - n_ln``.

Rounding rule ``R``: round half up, ``R(x) = floor(x + 1/2)``, evaluated exactly in
rational arithmetic with each ratio read as the decimal it prints as (``0.05`` is
exactly 1/20), so the counts do not depend on binary floating-point error. Hence
``|m - gamma_l (n + n_ln) / (1 - gamma_l)| <= 1/2`` and likewise for the pollution.

The order of computation is labeled normals, then pollution, then labeled anomalies
(which depend on ``n``). The reference code instead truncates and computes both
anomaly counts from the normal count only; e.g. for MNIST class 0 with
``gamma_l = .05, gamma_p = .1`` it takes 311 labeled anomalies, here 346.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from deepsad.errors import InvalidInputError
from deepsad.validation import check_fraction

SEMI_NORMAL, SEMI_UNLABELED, SEMI_ANOMALY = 1, 0, -1


@dataclass(frozen=True)
class ScenarioDraw:
    """Indices and labels of one draw of a scenario.

    Attributes
    ----------
    train_indices : numpy.ndarray of int64
        Indices into the training pool (for ODDS: into the single dataset), ascending.
    train_semi_labels : numpy.ndarray of int8
        Aligned with ``train_indices``: +1 labeled normal, -1 labeled anomaly, 0 unlabeled.
    test_indices : numpy.ndarray of int64
        Indices into the test pool (ODDS: into the single dataset), ascending.
    test_ground_truth : numpy.ndarray of int8
        Aligned with ``test_indices``: 1 anomaly, 0 normal.
    summary : dict
        JSON-serialisable counts per class and label kind, the parameters and the seed.
    """

    train_indices: np.ndarray
    train_semi_labels: np.ndarray
    test_indices: np.ndarray
    test_ground_truth: np.ndarray
    summary: dict


def _exact(value: float) -> Fraction:
    # repr gives the shortest decimal that round-trips, i.e. what the user typed
    return Fraction(repr(float(value)))


def round_half_up(x: Fraction | float) -> int:
    """The rounding rule of all counts: ``floor(x + 1/2)``."""
    return math.floor(Fraction(x) + Fraction(1, 2))


def count_from_share(share: float, base: int) -> int:
    """Number ``k`` of added samples so that ``k / (base + k)`` is ``share``: ``R(share * base / (1 - share))``."""
    s = _exact(share)
    return round_half_up(s * base / (1 - s))


def _check_ratio(name: str, value: Any) -> float:
    return check_fraction(name, value, low=0.0, high=1.0, low_inclusive=True, high_inclusive=False)


def _as_class_array(values: Any, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise InvalidInputError(f"{name} must be one-dimensional, got shape {array.shape}")
    if array.size and array.dtype.kind not in "iub":
        if array.dtype.kind == "f" and np.all(np.isfinite(array)) and np.all(array == np.round(array)):
            return array.astype(np.int64)
        raise InvalidInputError(f"{name} must hold integer class labels, got dtype {array.dtype}")
    return array.astype(np.int64)


def _class_tuple(values: Any, name: str) -> tuple[int, ...]:
    if values is None:
        return ()
    if isinstance(values, (int, np.integer)) and not isinstance(values, bool):
        values = (values,)
    try:
        items = tuple(values)
    except TypeError:
        raise InvalidInputError(f"{name} must be a class label or a sequence of them, got {values!r}") from None
    result = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (int, np.integer)):
            raise InvalidInputError(f"{name} must hold integer class labels, got {item!r}")
        result.append(int(item))
    if len(set(result)) != len(result):
        raise InvalidInputError(f"{name} lists a class twice: {result}")
    return tuple(result)


def _pool_error(what: str, requested: int, available: int, detail: str) -> InvalidInputError:
    return InvalidInputError(
        f"not enough {what}: requested {requested}, available {available} ({detail})"
    )


def _per_class(classes: np.ndarray, indices: np.ndarray) -> dict[str, int]:
    values, counts = np.unique(classes[indices], return_counts=True)
    return {str(int(v)): int(c) for v, c in zip(values, counts)}


def _assemble(parts: Sequence[tuple[np.ndarray, int]]) -> tuple[np.ndarray, np.ndarray]:
    indices = np.concatenate([p[0] for p in parts]).astype(np.int64)
    labels = np.concatenate([np.full(p[0].size, p[1], dtype=np.int8) for p in parts])
    order = np.argsort(indices, kind="stable")
    return indices[order], labels[order]


def _realized(part: int, whole: int) -> float:
    return float(part / whole) if whole else 0.0


def sample_image_scenario(
    train_classes: Any,
    test_classes: Any,
    *,
    normal_classes: int | Iterable[int],
    known_anomaly_classes: Iterable[int],
    gamma_l: float,
    gamma_p: float,
    ratio_labeled_normal: float = 0.0,
    rng: np.random.Generator,
    seed: int | None = None,
) -> ScenarioDraw:
    r"""Draw the training set of an image scenario (paper Section 4.2).

    The normal class(es) form the normal pool; every other class is an anomaly class.

    * Labeled normals: ``n_ln = R(ratio_labeled_normal * n_normal)`` drawn from the normal
      pool; the remaining ``n_un = n_normal - n_ln`` normals are unlabeled.
    * Pollution (unlabeled anomalies): ``n_pollution = R(gamma_p * n_un / (1 - gamma_p))``
      drawn uniformly from all anomaly classes, so that ``gamma_p`` is the share of
      anomalies in the unlabeled part of size ``n = n_un + n_pollution``.
    * Labeled anomalies: ``m = R(gamma_l * (n + n_ln) / (1 - gamma_l))`` drawn uniformly
      from the known anomaly classes only, so that ``gamma_l = m / (n + n_ln + m)`` (the
      paper's ``m / (n + m)``). With no known classes (``k_l = 0``) ``m = 0`` whatever
      ``gamma_l``.

    ``R(x) = floor(x + 1/2)`` computed exactly (see the module docstring). Labeled
    anomalies are drawn first, pollution then from the anomaly pool without them, so the
    two are disjoint even when known classes are also pollution sources. The test set is
    the whole test split, ground truth 1 for every class that is not normal.

    Parameters
    ----------
    train_classes, test_classes : array-like of int, shape (n_train,), (n_test,)
        Class labels of the training and test splits.
    normal_classes : int or iterable of int
        Class(es) that are normal; each must occur in ``train_classes``.
    known_anomaly_classes : iterable of int
        Classes labeled anomalies are drawn from (``k_l`` of them); each must occur in
        ``train_classes`` and not be normal. May be empty.
    gamma_l, gamma_p, ratio_labeled_normal : float in [0, 1)
    rng : numpy.random.Generator
        Source of all randomness; the function is otherwise pure.
    seed : int, optional
        Only recorded in the summary.

    Returns
    -------
    ScenarioDraw

    Raises
    ------
    InvalidInputError
        Ratios outside [0, 1); a normal or known class absent from the data; a known
        class that is normal; a pool smaller than requested (message: requested vs
        available).
    """
    gamma_l = _check_ratio("gamma_l", gamma_l)
    gamma_p = _check_ratio("gamma_p", gamma_p)
    ratio_labeled_normal = _check_ratio("ratio_labeled_normal", ratio_labeled_normal)
    if not isinstance(rng, np.random.Generator):
        raise InvalidInputError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    train = _as_class_array(train_classes, "train_classes")
    test = _as_class_array(test_classes, "test_classes")
    normal = _class_tuple(normal_classes, "normal_classes")
    known = _class_tuple(known_anomaly_classes, "known_anomaly_classes")
    present = sorted(int(c) for c in np.unique(train))
    if not normal:
        raise InvalidInputError("normal_classes must name at least one class")
    for c in normal:
        if c not in present:
            raise InvalidInputError(f"normal class {c} is not in the data; classes present: {present}")
    for c in known:
        if c in normal:
            raise InvalidInputError(f"known anomaly class {c} is also a normal class")
        if c not in present:
            raise InvalidInputError(f"known anomaly class {c} is not in the data; classes present: {present}")

    is_normal = np.isin(train, normal)
    normal_pool = np.flatnonzero(is_normal)
    anomaly_pool = np.flatnonzero(~is_normal)
    known_pool = np.flatnonzero(np.isin(train, known)) if known else np.empty(0, dtype=np.int64)

    n_normal = normal_pool.size
    n_ln = round_half_up(_exact(ratio_labeled_normal) * n_normal)
    n_un = n_normal - n_ln
    n_pollution = count_from_share(gamma_p, n_un)
    n_unlabeled = n_un + n_pollution
    m = count_from_share(gamma_l, n_unlabeled + n_ln) if known else 0

    # check every pool before drawing anything
    if m > known_pool.size:
        raise _pool_error(
            "labeled anomalies", m, known_pool.size,
            f"training samples of known classes {list(known)}; gamma_l={gamma_l}",
        )
    if n_pollution > anomaly_pool.size - m:
        raise _pool_error(
            "polluting anomalies", n_pollution, anomaly_pool.size - m,
            f"anomaly pool of {anomaly_pool.size} training samples minus {m} labeled anomalies; gamma_p={gamma_p}",
        )

    shuffled_normals = rng.permutation(normal_pool)
    labeled_normals, unlabeled_normals = shuffled_normals[:n_ln], shuffled_normals[n_ln:]
    labeled_anomalies = rng.choice(known_pool, size=m, replace=False) if m else np.empty(0, dtype=np.int64)
    remaining = np.setdiff1d(anomaly_pool, labeled_anomalies, assume_unique=True)
    pollution = rng.choice(remaining, size=n_pollution, replace=False) if n_pollution else np.empty(0, dtype=np.int64)

    train_indices, semi = _assemble([
        (unlabeled_normals, SEMI_UNLABELED), (pollution, SEMI_UNLABELED),
        (labeled_normals, SEMI_NORMAL), (labeled_anomalies, SEMI_ANOMALY),
    ])
    test_indices = np.arange(test.size, dtype=np.int64)
    ground_truth = (~np.isin(test, normal)).astype(np.int8)

    per_class: dict[str, dict[str, int]] = {}
    for kind, idx in (("unlabeled_normal", unlabeled_normals), ("pollution", pollution),
                      ("labeled_normal", labeled_normals), ("labeled_anomaly", labeled_anomalies)):
        for cls, count in _per_class(train, idx).items():
            per_class.setdefault(cls, {}).setdefault(kind, 0)
            per_class[cls][kind] += count
    total = train_indices.size
    summary = {
        "scenario": "images",
        "seed": seed,
        "parameters": {
            "normal_classes": list(normal),
            "known_anomaly_classes": list(known),
            "k_l": len(known),
            "gamma_l": gamma_l,
            "gamma_p": gamma_p,
            "ratio_labeled_normal": ratio_labeled_normal,
        },
        "pools": {"normal": int(n_normal), "anomaly": int(anomaly_pool.size), "known_anomaly": int(known_pool.size)},
        "train": {
            "total": int(total),
            "unlabeled": int(n_unlabeled),
            "unlabeled_normal": int(n_un),
            "pollution": int(n_pollution),
            "labeled_normal": int(n_ln),
            "labeled_anomaly": int(m),
            "realized_gamma_l": _realized(m, total),
            "realized_gamma_p": _realized(n_pollution, n_unlabeled),
        },
        "train_per_class": dict(sorted(per_class.items(), key=lambda kv: int(kv[0]))),
        "test": {"total": int(test.size), "normal": int(test.size - ground_truth.sum()), "anomaly": int(ground_truth.sum())},
        "test_per_class": _per_class(test, test_indices),
    }
    return ScenarioDraw(train_indices, semi, test_indices, ground_truth, summary)


def sample_odds_scenario(
    ground_truth: Any,
    *,
    gamma_l: float,
    gamma_p: float = 0.0,
    test_fraction: float = 0.4,
    keep_all_anomalies: bool = False,
    labeled_anomaly_fraction: float | None = None,
    label_available_if_short: bool = False,
    rng: np.random.Generator,
    seed: int | None = None,
) -> ScenarioDraw:
    r"""Split a benchmark 60:40, stratified and disjoint, and draw the training labels.

    Split: the normals and the anomalies are each shuffled and split separately;
    ``R(test_fraction * N_c)`` of class ``c`` go to the test set, the rest to training
    (``R`` = round half up, exact). Train and test are disjoint.

    The paper's ("clean") training set, from the training split's ``n_tr`` normals and
    anomalies:

    * all ``n_tr`` normals, unlabeled;
    * pollution ``R(gamma_p * n_tr / (1 - gamma_p))`` unlabeled anomalies, so that
      ``gamma_p`` is the anomaly share of the unlabeled part of size ``n``;
    * ``m = R(gamma_l * n / (1 - gamma_l))`` labeled anomalies (``gamma_l = m / (n + m)``:
      the paper's "1% of the training set are labeled anomalies");
    * the other training anomalies are dropped (``gamma_p = 0``: "unlabeled training
      data is unpolluted"); their count is in the summary.

    Labeled anomalies and pollution are disjoint draws from the training anomalies.

    With ``keep_all_anomalies`` (the "polluted" draw, a benchmark of data as it comes)
    every training sample is kept: ``k`` of the training split's ``a_tr`` anomalies get
    label -1 and every other training sample (all normals and the other ``a_tr - k``
    anomalies) is unlabeled, so the unlabeled part keeps the dataset's own anomaly rate.
    ``k = R(labeled_anomaly_fraction * a_tr)``, but at least one when the fraction is
    positive and the split holds any anomaly (a tiny set with 2 training anomalies and
    a fraction of 0.1 still gets one label). ``gamma_l`` and ``gamma_p`` must be 0 then:
    the labeled share follows from the data, not from a ratio.

    The split (and the order in which training anomalies are picked) does not depend on
    the mode, so a seed gives the same test set in both draws, and the clean draw's
    labeled anomalies are the first ``m`` of the polluted draw's order.

    Parameters
    ----------
    ground_truth : array-like of 0/1, shape (n_samples,)
        1 = anomaly.
    gamma_l, gamma_p : float in [0, 1)
    test_fraction : float in (0, 1), default 0.4
    keep_all_anomalies : bool, default False
        Keep every training sample (see above) instead of the clean draw.
    labeled_anomaly_fraction : float in [0, 1], optional
        Share of the training split's anomalies labeled -1; required with, and only
        allowed with, ``keep_all_anomalies``.
    label_available_if_short : bool, default False
        Clean draw only: when the training split holds fewer anomalies than ``gamma_l``
        (plus the pollution) asks for, label every training anomaly left after the
        pollution instead of refusing. The shortfall is recorded in the summary
        (``train.labeled_shortfall``, ``realized_gamma_l``). For benchmarks over many
        datasets (a few ADBench sets hold fewer anomalies than 1% of their size).
    rng : numpy.random.Generator
    seed : int, optional
        Only recorded in the summary.

    Returns
    -------
    ScenarioDraw
        Indices into the single dataset.

    Raises
    ------
    InvalidInputError
        Bad ratios, ground truth other than 0/1, more training anomalies requested
        (labeled plus pollution) than the training split holds, or a combination of
        the keep-all parameters with ``gamma_l`` / ``gamma_p`` that contradicts itself.
    """
    gamma_l = _check_ratio("gamma_l", gamma_l)
    gamma_p = _check_ratio("gamma_p", gamma_p)
    test_fraction = check_fraction("test_fraction", test_fraction, low=0.0, high=1.0,
                                   low_inclusive=False, high_inclusive=False)
    if not isinstance(label_available_if_short, (bool, np.bool_)):
        raise InvalidInputError(f"label_available_if_short must be True or False, got {label_available_if_short!r}")
    if not isinstance(keep_all_anomalies, (bool, np.bool_)):
        raise InvalidInputError(f"keep_all_anomalies must be True or False, got {keep_all_anomalies!r}")
    if keep_all_anomalies:
        if labeled_anomaly_fraction is None:
            raise InvalidInputError("keep_all_anomalies needs labeled_anomaly_fraction (share of the training anomalies labeled -1)")
        labeled_anomaly_fraction = check_fraction("labeled_anomaly_fraction", labeled_anomaly_fraction, low=0.0, high=1.0,
                                                  low_inclusive=True, high_inclusive=True)
        if gamma_l or gamma_p:
            raise InvalidInputError(
                f"keep_all_anomalies keeps every training sample, so gamma_l and gamma_p must be 0 "
                f"(got gamma_l={gamma_l}, gamma_p={gamma_p}); labeled_anomaly_fraction sets the labels"
            )
    elif labeled_anomaly_fraction is not None:
        raise InvalidInputError("labeled_anomaly_fraction applies only with keep_all_anomalies=True "
                                "(the clean draw labels gamma_l of the training set)")
    if not isinstance(rng, np.random.Generator):
        raise InvalidInputError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    y = _as_class_array(ground_truth, "ground_truth")
    bad = np.setdiff1d(np.unique(y), [0, 1])
    if bad.size:
        raise InvalidInputError(f"ground_truth must hold 0 (normal) and 1 (anomaly) only, found {bad[:5].tolist()}")
    if y.size == 0:
        raise InvalidInputError("ground_truth is empty")

    normals, anomalies = np.flatnonzero(y == 0), np.flatnonzero(y == 1)
    n_test_normal = round_half_up(_exact(test_fraction) * normals.size)
    n_test_anomaly = round_half_up(_exact(test_fraction) * anomalies.size)
    n_train_normal = normals.size - n_test_normal
    n_train_anomaly = anomalies.size - n_test_anomaly
    if keep_all_anomalies:
        assert labeled_anomaly_fraction is not None
        m = round_half_up(_exact(labeled_anomaly_fraction) * n_train_anomaly)
        if labeled_anomaly_fraction > 0 and n_train_anomaly > 0:
            m = max(m, 1)
        n_pollution = n_train_anomaly - m
    else:
        n_pollution = count_from_share(gamma_p, n_train_normal)
        m = count_from_share(gamma_l, n_train_normal + n_pollution)
    n_unlabeled = n_train_normal + n_pollution
    requested = m
    if label_available_if_short and not keep_all_anomalies and n_pollution <= n_train_anomaly:
        m = min(m, n_train_anomaly - n_pollution)
    if m + n_pollution > n_train_anomaly:
        raise _pool_error(
            "training anomalies", m + n_pollution, n_train_anomaly,
            f"{m} labeled (gamma_l={gamma_l}) + {n_pollution} polluting (gamma_p={gamma_p}) "
            f"from the training split's {n_train_anomaly} anomalies",
        )

    shuffled_normals = rng.permutation(normals)
    shuffled_anomalies = rng.permutation(anomalies)
    test_idx = np.concatenate([shuffled_normals[:n_test_normal], shuffled_anomalies[:n_test_anomaly]])
    train_normals = shuffled_normals[n_test_normal:]
    train_anomalies = shuffled_anomalies[n_test_anomaly:]
    labeled, pollution = train_anomalies[:m], train_anomalies[m:m + n_pollution]

    train_indices, semi = _assemble([
        (train_normals, SEMI_UNLABELED), (pollution, SEMI_UNLABELED), (labeled, SEMI_ANOMALY),
    ])
    test_indices = np.sort(test_idx).astype(np.int64)
    test_truth = y[test_indices].astype(np.int8)
    total = train_indices.size
    summary = {
        "scenario": "odds",
        "seed": seed,
        "parameters": {
            "gamma_l": gamma_l, "gamma_p": gamma_p, "test_fraction": test_fraction,
            # named only in the keep-all draw, so clean summaries stay as they were
            **({"keep_all_anomalies": True, "labeled_anomaly_fraction": labeled_anomaly_fraction}
               if keep_all_anomalies else {}),
            **({"label_available_if_short": True} if label_available_if_short else {}),
        },
        "pools": {"normal": int(normals.size), "anomaly": int(anomalies.size)},
        "split": {
            "train_normal": int(n_train_normal), "train_anomaly": int(n_train_anomaly),
            "test_normal": int(n_test_normal), "test_anomaly": int(n_test_anomaly),
        },
        "train": {
            "total": int(total),
            "unlabeled": int(n_unlabeled),
            "unlabeled_normal": int(n_train_normal),
            "pollution": int(n_pollution),
            "labeled_normal": 0,
            "labeled_anomaly": int(m),
            "dropped_anomaly": int(n_train_anomaly - m - n_pollution),
            "realized_gamma_l": _realized(m, total),
            "realized_gamma_p": _realized(n_pollution, n_unlabeled),
            **({"labeled_shortfall": int(requested - m)} if requested > m else {}),
        },
        "train_per_class": {
            "0": {"unlabeled_normal": int(n_train_normal)},
            "1": {"pollution": int(n_pollution), "labeled_anomaly": int(m)},
        },
        "test": {"total": int(test_indices.size), "normal": int(n_test_normal), "anomaly": int(n_test_anomaly)},
        "test_per_class": {"0": int(n_test_normal), "1": int(n_test_anomaly)},
    }
    return ScenarioDraw(train_indices, semi, test_indices, test_truth, summary)


def draw_known_classes(anomaly_classes: Iterable[int], k_l: int, rng: np.random.Generator) -> tuple[int, ...]:
    """Draw ``k_l`` distinct known anomaly classes uniformly at random (scenario iii).

    Parameters
    ----------
    anomaly_classes : iterable of int
        The candidate classes (the nine non-normal classes of an image setup).
    k_l : int
        How many to draw, ``0 <= k_l <= len(anomaly_classes)``.
    rng : numpy.random.Generator

    Returns
    -------
    tuple of int
        Sorted ascending.
    """
    from deepsad.validation import check_positive_int

    classes = _class_tuple(tuple(anomaly_classes), "anomaly_classes")
    k_l = check_positive_int("k_l", k_l, allow_zero=True)
    if k_l > len(classes):
        raise _pool_error("anomaly classes", k_l, len(classes), f"candidates {list(classes)}")
    if k_l == 0:
        return ()
    chosen = rng.choice(np.asarray(classes, dtype=np.int64), size=k_l, replace=False)
    return tuple(sorted(int(c) for c in chosen))
