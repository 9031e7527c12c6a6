"""A task's data: load the dataset, subsample (quick profiles), draw the scenario, preprocess.

Every method of a setup gets the same data: the scenario is drawn from
``numpy.random.default_rng(task.seed)``, and subsampling and training caps draw from
streams of their own, so neither shifts the scenario draw.

Loaded datasets are kept by a :class:`DatasetCache` that its caller owns (a worker keeps
one for the groups it runs), never in module state.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np

from deepsad.errors import InvalidInputError
from deepsad.experiments.grid import Task

#: Raw image datasets (one split each) and tables a :class:`DatasetCache` keeps.
IMAGE_ENTRIES = 4
TABLE_ENTRIES = 8

#: Methods that take feature vectors: images are flattened for them (the paper runs the
#: shallow baselines on raw pixels).
FLAT_INPUT_METHODS = ("ocsvm", "iforest", "kde", "ssad")


@dataclass
class PreparedData:
    """One setup's data: preprocessed training and test arrays and the draw's summary.

    Attributes
    ----------
    X_train, X_test : numpy.ndarray
        float32 samples (images in [0, 1], tables standardized when the config says so).
    y_train : numpy.ndarray
        int8 semi-labels: 0 unlabeled, +1 labeled normal, -1 labeled anomaly.
    y_test : numpy.ndarray
        int8 ground truth: 1 anomaly, 0 normal.
    summary : dict
        The scenario draw's summary, plus ``dataset``, ``standardized`` and, where
        samples were left out, ``subsample`` / ``train_cap``.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    summary: dict[str, Any]


class _LRU:
    """At most ``size`` values by key, the least recently used dropped first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._values: OrderedDict[Hashable, Any] = OrderedDict()

    def get(self, key: Hashable, load: Callable[[], Any]) -> Any:
        if key in self._values:
            self._values.move_to_end(key)
            return self._values[key]
        value = load()
        self._values[key] = value
        while len(self._values) > self.size:
            self._values.popitem(last=False)
        return value


class DatasetCache:
    """Loaded datasets, read-only, so that the groups of one worker load each once.

    Raw images stay uint8 (CIFAR-10: 150 MB); only the drawn samples become float32.

    Parameters
    ----------
    image_entries : int
        Raw image splits kept.
    table_entries : int
        Tables (features and ground truth) kept.
    """

    def __init__(self, image_entries: int = IMAGE_ENTRIES, table_entries: int = TABLE_ENTRIES) -> None:
        self._images = _LRU(image_entries)
        self._tables = _LRU(table_entries)

    def raw_images(self, name: str, split: str, data_root: str | None) -> tuple[np.ndarray, np.ndarray]:
        """``(images, labels)`` of an image dataset's split, as stored (uint8)."""
        return self._images.get((name, split, data_root), lambda: _load_raw_images(name, split, data_root))

    def table(self, name: str, data_root: str | None) -> tuple[np.ndarray, np.ndarray]:
        """``(X, y)`` of a tabular dataset: float64 features and int64 ground truth."""
        return self._tables.get((name, data_root), lambda: _load_table(name, data_root))


def _load_raw_images(name: str, split: str, data_root: str | None) -> tuple[np.ndarray, np.ndarray]:
    from deepsad.data.loaders import load_raw_images

    images, labels = load_raw_images(name, split, data_root)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def _load_table(name: str, data_root: str | None) -> tuple[np.ndarray, np.ndarray]:
    from deepsad.data.loaders import load_odds, load_table
    from deepsad.data.registry import get_dataset

    if get_dataset(name, data_root).kind == "odds":
        X, y = load_odds(name, data_root)
    else:
        table = load_table(name, data_root)
        if table.ground_truth is None:
            raise InvalidInputError(f"dataset {name!r} has no ground-truth column, so no test set can be scored")
        X, y = table.X, table.ground_truth
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y).astype(np.int64)
    X.setflags(write=False)
    y.setflags(write=False)
    return X, y


def _subsample_rng(seed: int) -> np.random.Generator:
    # a stream of its own, so that subsampling does not shift the scenario draw's
    return np.random.default_rng([seed, 0x5EED])


def _stratified_subset(groups: np.ndarray, limit: int, rng: np.random.Generator, *, per_group: bool) -> np.ndarray:
    """Sorted positions: ``per_group`` keeps at most ``limit`` of each group, else ``limit`` in all,
    each group in proportion (round half up, at least one of a non-empty group)."""
    keep = []
    total = groups.size
    for value in np.unique(groups):
        members = np.flatnonzero(groups == value)
        if per_group:
            k = min(limit, members.size)
        else:
            k = min(members.size, max(1, int(np.floor(limit * members.size / total + 0.5))))
        keep.append(rng.choice(members, size=k, replace=False) if k < members.size else members)
    return np.sort(np.concatenate(keep)).astype(np.int64)


def prepare_data(task: Task, data_root: str | None, datasets: DatasetCache | None = None) -> PreparedData:
    """Load the dataset, subsample (quick profiles), draw the scenario and preprocess.

    The scenario draw uses ``numpy.random.default_rng(task.seed)``, so every method of a
    setup gets the same data.

    Parameters
    ----------
    task : Task
    data_root : str or None
        The data root (``None``: ``$DEEPSAD_DATA``, else the user cache folder).
    datasets : DatasetCache, optional
        Where loaded datasets are kept between calls; without one the dataset is
        loaded for this call only.

    Returns
    -------
    PreparedData
    """
    from deepsad.data.scenarios import sample_image_scenario, sample_odds_scenario

    if datasets is None:
        datasets = DatasetCache()
    rng = np.random.default_rng(task.seed)
    subsample: dict[str, Any] | None = None
    if task.dataset_kind == "images":
        from deepsad.data.preprocessing import images_to_unit_float

        train_images, train_labels = datasets.raw_images(task.dataset, "train", data_root)
        test_images, test_labels = datasets.raw_images(task.dataset, "test", data_root)
        train_pos = np.arange(train_labels.size)
        test_pos = np.arange(test_labels.size)
        if task.max_per_class is not None:
            sub_rng = _subsample_rng(task.seed)
            train_pos = _stratified_subset(train_labels, task.max_per_class, sub_rng, per_group=True)
            test_pos = _stratified_subset(test_labels, task.max_per_class, sub_rng, per_group=True)
            subsample = {"max_per_class": task.max_per_class, "train_kept": int(train_pos.size),
                         "train_of": int(train_labels.size), "test_kept": int(test_pos.size), "test_of": int(test_labels.size)}
        draw = sample_image_scenario(
            train_labels[train_pos], test_labels[test_pos],
            normal_classes=task.normal_class, known_anomaly_classes=task.known_classes,
            gamma_l=task.gamma_l, gamma_p=task.gamma_p, ratio_labeled_normal=task.ratio_labeled_normal,
            rng=rng, seed=task.seed,
        )
        X_train = images_to_unit_float(train_images[train_pos[draw.train_indices]])
        X_test = images_to_unit_float(test_images[test_pos[draw.test_indices]])
    else:
        X_all, y_all = datasets.table(task.dataset, data_root)
        pos = np.arange(y_all.size)
        if task.max_samples is not None and y_all.size > task.max_samples:
            pos = _stratified_subset(y_all, task.max_samples, _subsample_rng(task.seed), per_group=False)
            subsample = {"max_samples": task.max_samples, "kept": int(pos.size), "of": int(y_all.size)}
        draw = sample_odds_scenario(
            y_all[pos], gamma_l=task.gamma_l, gamma_p=task.gamma_p, test_fraction=task.test_fraction,
            keep_all_anomalies=task.keep_all_anomalies, labeled_anomaly_fraction=task.labeled_anomaly_fraction,
            label_available_if_short=task.label_available_if_short, rng=rng, seed=task.seed,
        )
        X_train = X_all[pos[draw.train_indices]]
        X_test = X_all[pos[draw.test_indices]]
        if task.standardize:
            from deepsad.data.preprocessing import Standardizer

            scaler = Standardizer().fit(X_train)
            X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
        X_train = np.ascontiguousarray(X_train, dtype=np.float32)
        X_test = np.ascontiguousarray(X_test, dtype=np.float32)
    summary = dict(draw.summary)
    summary["dataset"] = task.dataset
    summary["standardized"] = bool(task.standardize)
    if subsample is not None:
        summary["subsample"] = subsample
    return PreparedData(
        X_train=X_train,
        y_train=draw.train_semi_labels.astype(np.int8),
        X_test=X_test,
        y_test=draw.test_ground_truth.astype(np.int8),
        summary=summary,
    )


def _cap_rng(seed: int) -> np.random.Generator:
    # a stream of its own (not the scenario's or the quick profiles' subsampling)
    return np.random.default_rng([seed, 0xCA9])


def cap_training_set(data: PreparedData, limit: int, seed: int) -> PreparedData:
    """At most ``limit`` training samples of ``data`` (a method's ``max_train_samples``).

    Labeled anomalies are kept whole while they fit (they are the scarce signal; at most
    half the cap goes to them); the rest of the cap is shared among the semi-label groups
    in proportion to their sizes (round half up, at least one of a non-empty group).
    Drawn from ``seed`` alone, so every method with the same cap fits on the same
    subset of a setup. The test set is untouched.

    Parameters
    ----------
    data : PreparedData
    limit : int
        At least 2.
    seed : int
        The task's seed.

    Returns
    -------
    PreparedData
        ``data`` itself when it holds at most ``limit`` training samples; otherwise a
        copy whose summary gains ``train_cap`` (``max_train_samples``, ``kept``, ``of``,
        and the kept count per semi-label).
    """
    n = int(data.y_train.size)
    if n <= limit:
        return data
    rng = _cap_rng(seed)
    labels = data.y_train
    anomalies = np.flatnonzero(labels == -1)
    others = np.flatnonzero(labels != -1)
    n_anomaly = min(anomalies.size, limit // 2)
    chosen = anomalies if n_anomaly == anomalies.size else rng.choice(anomalies, size=n_anomaly, replace=False)
    room = limit - n_anomaly
    if others.size > room:
        others = others[_stratified_subset(labels[others], room, rng, per_group=False)]
        if others.size > room:  # rounding small groups up can overshoot by one per group
            others = np.sort(rng.choice(others, size=room, replace=False))
    positions = np.sort(np.concatenate([chosen, others])).astype(np.int64)
    values, counts = np.unique(labels[positions], return_counts=True)
    summary = dict(data.summary)
    summary["train_cap"] = {
        "max_train_samples": int(limit), "kept": int(positions.size), "of": n,
        "per_label": {str(int(v)): int(c) for v, c in zip(values, counts)},
    }
    return PreparedData(
        X_train=np.ascontiguousarray(data.X_train[positions]), y_train=labels[positions],
        X_test=data.X_test, y_test=data.y_test, summary=summary,
    )


def input_view(method: str, data: PreparedData) -> PreparedData:
    """The data as ``method`` takes it: images flattened (views, no copy) for shallow methods.

    Parameters
    ----------
    method : str
        A detector name (see :data:`FLAT_INPUT_METHODS`).
    data : PreparedData

    Returns
    -------
    PreparedData
        ``data`` itself, or a flattened view of it.
    """
    if method not in FLAT_INPUT_METHODS or data.X_train.ndim == 2:
        return data
    return PreparedData(
        X_train=data.X_train.reshape(data.X_train.shape[0], -1),
        y_train=data.y_train,
        X_test=data.X_test.reshape(data.X_test.shape[0], -1),
        y_test=data.y_test,
        summary=data.summary,
    )
