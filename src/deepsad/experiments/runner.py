"""Run tasks: draw the data, fit the method, score the test set, and return a result row.

:func:`run_group` is what a worker executes: tasks sharing a ``group_key`` (same training
data, same autoencoder settings) in order, with the data drawn once. :func:`run_experiment`
is the driver: it expands a config, skips what the results file already holds, hands
groups to an executor and writes each returned row -- the driver is the only writer.

Autoencoder cache
-----------------
Deep SAD and Deep SVDD pretrain an autoencoder, and the hybrids need one; within a setup
they all see the same training data, so one autoencoder serves them all (and the
``eta`` sweep's five Deep SAD fits, and identical training sets of other experiments).
The runner pretrains it explicitly -- a Deep SVDD with the method's pretraining settings,
its seed and ``epochs = 0`` -- and passes it to ``fit(..., autoencoder=...)``. The result
equals a fit that pretrained by itself, because the detectors draw pretraining and
training randomness from separate streams of the seed; and the time goes to the row's
``pretrain_seconds`` (in the task that pretrained; ``fit_seconds`` excludes it), so
methods' fit times stay comparable whichever task happened to pretrain.

The cache key is the sha256 of the exact training array fed to pretraining (after
preprocessing: bytes, shape and dtype) together with the network spec, every pretraining
hyperparameter (epochs, learning rate, milestones, weight decay, batch size, output
activation, standardization), the resolved device type, the seed, and the torch and
deepsad versions. Two levels: an in-memory LRU per worker process (a few entries:
groups run their tasks back to back), and an on-disk folder (default
``<results folder>/ae-cache``) shared by all workers of a machine and by later runs. A
disk entry is one safetensors file named by its key (state dict + JSON metadata: spec,
input shape, output activation), written to a temporary name and renamed, so a reader
never sees half a file and concurrent writers of one key are harmless. A file that
cannot be read is treated as a miss. Nothing is pickled. ``use_ae_cache=False``
(``--no-ae-cache``) turns both levels off: every task pretrains its own autoencoder.
The row's ``ae_cache`` says what happened: ``miss`` (pretrained and cached), ``off``
(pretrained, cache off), ``hit-memory``, ``hit-disk``, or ``n/a`` (no autoencoder).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import platform
import socket
import sys
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deepsad.errors import DeepSADError, InvalidInputError
from deepsad.experiments.config import ExperimentConfig, canonical_json
from deepsad.experiments.grid import Task, expand
from deepsad.experiments.store import ResultStore, utc_now

logger = logging.getLogger(__name__)

#: Methods that pretrain an autoencoder themselves (``fit(..., autoencoder=...)``).
PRETRAINING_METHODS = ("deepsad", "deepsvdd")

#: Entries of the in-memory autoencoder cache per process.
MEMORY_CACHE_ENTRIES = 4

#: Longest error text stored for a failed task, and the traceback's tail.
MAX_ERROR_CHARS = 2000
MAX_TRACEBACK_CHARS = 8000


# --------------------------------------------------------------------------- context


@dataclass(frozen=True)
class RunContext:
    """What every worker needs besides its tasks (plain data: it is pickled to workers).

    Attributes
    ----------
    data_root : str or None
        Absolute data root (the workers' view of it).
    use_ae_cache : bool
        Reuse pretrained autoencoders (memory and disk).
    ae_cache_dir : str or None
        Folder of the on-disk cache; ``None`` keeps the cache in memory only.
    threads : int or None
        torch/BLAS threads per worker; ``None`` leaves the defaults.
    """

    data_root: str | None = None
    use_ae_cache: bool = True
    ae_cache_dir: str | None = None
    threads: int | None = None


def available_cores() -> int:
    """CPU cores this process may use (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def configure_threads(threads: int | None) -> Callable[[], None]:
    """Limit torch's intra-op threads and the BLAS/OpenMP pools to ``threads``.

    Small networks gain nothing from many threads while several workers share the
    machine (DESIGN §6: two one-thread workers beat one two-thread process), so each
    worker gets ``cores // workers``.

    Returns
    -------
    callable
        Restores the previous settings (the serial executor runs in the caller's process).
    """
    if threads is None:
        return lambda: None
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    limits = None
    try:
        from threadpoolctl import threadpool_limits

        limits = threadpool_limits(limits=int(threads))
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        pass

    def restore() -> None:
        torch.set_num_threads(previous)
        if limits is not None:
            limits.restore_original_limits()

    return restore


@functools.lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    """Versions of the packages a result depends on (stored with every row)."""
    import scipy
    import sklearn
    import torch

    from deepsad import __version__

    return {
        "deepsad": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "scikit-learn": sklearn.__version__,
        "torch": torch.__version__,
    }


# --------------------------------------------------------------------------- data


@dataclass
class PreparedData:
    """One setup's data: preprocessed training and test arrays and the draw's summary."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    summary: dict[str, Any]


@functools.lru_cache(maxsize=4)
def _raw_images(name: str, split: str, data_root: str | None) -> tuple[np.ndarray, np.ndarray]:
    # raw uint8 (CIFAR-10: 150 MB) is cached; only the drawn samples become float32
    from deepsad.data.loaders import load_raw_images

    images, labels = load_raw_images(name, split, data_root)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


@functools.lru_cache(maxsize=8)
def _table(name: str, data_root: str | None) -> tuple[np.ndarray, np.ndarray]:
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


def prepare_data(task: Task, data_root: str | None) -> PreparedData:
    """Load the dataset, subsample (quick profiles), draw the scenario and preprocess.

    The scenario draw uses ``numpy.random.default_rng(task.seed)``, so every method of a
    setup gets the same data.
    """
    from deepsad.data.scenarios import sample_image_scenario, sample_odds_scenario

    rng = np.random.default_rng(task.seed)
    subsample: dict[str, Any] | None = None
    if task.dataset_kind == "images":
        from deepsad.data.preprocessing import images_to_unit_float

        train_images, train_labels = _raw_images(task.dataset, "train", data_root)
        test_images, test_labels = _raw_images(task.dataset, "test", data_root)
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
        X_all, y_all = _table(task.dataset, data_root)
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


# --------------------------------------------------------------------------- autoencoder cache


def autoencoder_settings(
    estimator: Any, input_shape: Sequence[int], semi_labels: np.ndarray | None = None
) -> dict[str, Any] | None:
    """The pretraining settings of a Deep SAD / Deep SVDD on samples of ``input_shape``, normalised for hashing.

    ``semi_labels`` are those of the training set: Deep SAD's ``"auto"`` network depends
    on whether any sample is a labeled anomaly (``recipe_for_labels``).

    Returns ``None`` when the estimator does not pretrain on such data, trains an
    ensemble (each network pretrains its own autoencoder), or uses a custom module
    (which cannot be identified by value).
    """
    from deepsad.detectors.recipe import TABULAR_RECIPE, recipe_for, resolve_n_networks, resolve_pretrain, resolve_standardize
    from deepsad.models import LeNetSpec, MLPSpec, auto_spec, spec_from_dict, spec_to_dict
    from deepsad.training import resolve_device
    from deepsad.validation import check_milestones

    p = estimator.get_params(deep=False)
    recipe_for_labels = getattr(estimator, "recipe_for_labels", None)
    tabular = recipe_for_labels(semi_labels) if recipe_for_labels is not None else TABULAR_RECIPE
    if (
        not resolve_pretrain(p.get("pretrain", True), input_shape, tabular)
        or resolve_n_networks(p.get("n_networks", 1), input_shape, tabular) > 1
        or int(p["pretrain_epochs"]) == 0
        or p.get("decoder") is not None
    ):
        return None
    network = p["network"]
    if isinstance(network, dict):
        network = spec_from_dict(network)
    if network == "auto":
        network = auto_spec(tuple(input_shape), batch_norm=recipe_for(input_shape, tabular)["batch_norm"])
    if isinstance(network, (MLPSpec, LeNetSpec)):
        network = spec_to_dict(network)
    elif network != "paper":
        return None
    return {
        "network": network,
        "pretrain_epochs": int(p["pretrain_epochs"]),
        "pretrain_lr": float(p["pretrain_lr"]),
        "pretrain_lr_milestones": list(check_milestones("pretrain_lr_milestones", p["pretrain_lr_milestones"])),
        "pretrain_weight_decay": float(p["pretrain_weight_decay"]),
        "batch_size": int(p["batch_size"]),
        "output_activation": str(p["output_activation"]),
        "standardize": resolve_standardize(p.get("standardize", False), input_shape),
        "device": resolve_device(p["device"]).type,
        # named only when not the default, so the keys of float32 autoencoders stay as they were
        **({"precision": p["precision"]} if p.get("precision", "float32") != "float32" else {}),
    }


def autoencoder_key(X: np.ndarray, settings: Mapping[str, Any], seed: int) -> str:
    """sha256 (hex) of the training bytes, their shape and dtype, the settings, the seed and versions."""
    versions = package_versions()
    header = canonical_json({
        "shape": list(X.shape), "dtype": str(X.dtype), "settings": dict(settings), "seed": int(seed),
        "torch": versions["torch"], "deepsad": versions["deepsad"],
    })
    digest = hashlib.sha256(header.encode("utf-8"))
    digest.update(memoryview(np.ascontiguousarray(X)).cast("B"))
    return digest.hexdigest()


class AutoencoderCache:
    """Pretrained autoencoders by content key: an in-memory LRU and an optional folder.

    Parameters
    ----------
    directory : str or os.PathLike or None
        Folder of the on-disk level (created on first write); ``None``: memory only.
    max_entries : int
        Size of the in-memory level.
    """

    FORMAT = "deepsad-autoencoder-cache/1"

    def __init__(self, directory: str | os.PathLike | None = None, max_entries: int = MEMORY_CACHE_ENTRIES) -> None:
        self.directory = Path(directory) if directory is not None else None
        self.max_entries = max_entries
        self._memory: OrderedDict[str, Any] = OrderedDict()

    def get(self, key: str) -> tuple[Any, str] | tuple[None, str]:
        """``(autoencoder, "memory" | "disk")`` for a hit, ``(None, "miss")`` otherwise."""
        if key in self._memory:
            self._memory.move_to_end(key)
            return self._memory[key], "memory"
        if self.directory is not None:
            path = self.directory / f"{key}.safetensors"
            if path.is_file():
                try:
                    autoencoder = self._read(path, key)
                except Exception as error:  # a damaged entry is only a miss
                    logger.warning("ignoring unreadable autoencoder cache entry %s: %s", path, error)
                else:
                    self._remember(key, autoencoder)
                    return autoencoder, "disk"
        return None, "miss"

    def put(self, key: str, autoencoder: Any, *, spec: Any, input_shape: Sequence[int], output_activation: str) -> None:
        """Store a trained autoencoder (its spec and input shape say how to rebuild it)."""
        self._remember(key, autoencoder)
        if self.directory is None or spec is None:
            return
        try:
            self._write(key, autoencoder, spec, input_shape, output_activation)
        except OSError as error:  # a full or read-only disk costs reuse, not the result
            logger.warning("could not write autoencoder cache entry to %s: %s", self.directory, error)

    def _remember(self, key: str, autoencoder: Any) -> None:
        self._memory[key] = autoencoder
        self._memory.move_to_end(key)
        while len(self._memory) > self.max_entries:
            self._memory.popitem(last=False)

    def _write(self, key: str, autoencoder: Any, spec: Any, input_shape: Sequence[int], output_activation: str) -> None:
        from safetensors.torch import save_file

        from deepsad.models import spec_to_dict

        assert self.directory is not None
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{key}.safetensors"
        if path.is_file():
            return
        tensors = {name: t.detach().to("cpu").contiguous().clone() for name, t in autoencoder.state_dict().items()}
        metadata = {
            "format": self.FORMAT,
            "key": key,
            "spec": json.dumps(spec_to_dict(spec)),
            "input_shape": json.dumps([int(s) for s in input_shape]),
            "output_activation": output_activation,
        }
        tmp = path.with_name(f".{key}.{os.getpid()}.tmp")
        try:
            save_file(tensors, str(tmp), metadata=metadata)
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()

    def _read(self, path: Path, key: str) -> Any:
        from safetensors import safe_open

        from deepsad.models import Autoencoder, build_decoder, build_encoder, spec_from_dict

        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
        if metadata.get("format") != self.FORMAT or metadata.get("key") != key:
            raise ValueError("not an autoencoder cache entry for this key")
        spec = spec_from_dict(json.loads(metadata["spec"]))
        shape = tuple(json.loads(metadata["input_shape"]))
        autoencoder = Autoencoder(build_encoder(spec, shape), build_decoder(spec, shape, metadata["output_activation"]))
        autoencoder.load_state_dict(tensors, strict=True)
        return autoencoder.eval()


#: The per-process cache, so consecutive groups in one worker share it.
_PROCESS_CACHES: dict[str | None, AutoencoderCache] = {}


def process_cache(context: RunContext) -> AutoencoderCache | None:
    """This process's cache for ``context`` (``None`` when caching is off)."""
    if not context.use_ae_cache:
        return None
    if context.ae_cache_dir not in _PROCESS_CACHES:
        _PROCESS_CACHES[context.ae_cache_dir] = AutoencoderCache(context.ae_cache_dir)
    return _PROCESS_CACHES[context.ae_cache_dir]


# --------------------------------------------------------------------------- one task


def _with_runner_params(name: str, params: Mapping[str, Any], seed: int) -> dict[str, Any]:
    from deepsad.methods import parameter_names

    names = parameter_names(name)
    merged = dict(params)
    if "random_state" in names:
        merged["random_state"] = seed
    if "standardize" in names and "standardize" not in merged:
        # the runner owns preprocessing (a config's [preprocessing]); a detector that
        # standardizes by default would do it a second time
        merged["standardize"] = False
    if "verbose" in names:
        merged["verbose"] = False
    return merged


@dataclass
class _TaskState:
    """Autoencoder bookkeeping of one task: the cache, what it gave, and pretraining time."""

    cache: AutoencoderCache | None
    ae_status: str = "n/a"
    pretrain_seconds: float = 0.0

    def note(self, status: str) -> None:
        # a task that pretrained reports that, even if later candidates hit the cache
        if self.ae_status == "n/a" or status in ("miss", "off"):
            self.ae_status = status


def _pretrainer_params(settings: Mapping[str, Any], seed: int) -> dict[str, Any]:
    """Deep SVDD parameters that pretrain exactly the autoencoder ``settings`` describe (and no phi)."""
    params = {k: v for k, v in settings.items()}
    params.update({"epochs": 0, "pretrain": True, "n_networks": 1, "random_state": seed, "verbose": False})
    return params


def _pretrained(task: Task, X: np.ndarray, settings: Mapping[str, Any], state: _TaskState) -> tuple[Any, Any]:
    """The autoencoder ``settings`` describe for ``X``: from the cache, or pretrained now.

    Returns ``(autoencoder, pretrainer)``; the pretrainer (a fitted Deep SVDD with
    ``epochs = 0``) is ``None`` on a cache hit.
    """
    from deepsad.methods import make_detector

    key = autoencoder_key(X, settings, task.seed) if state.cache is not None else None
    if key is not None:
        autoencoder, where = state.cache.get(key)
        if autoencoder is not None:
            state.note(f"hit-{where}")
            return autoencoder, None
    started = time.perf_counter()
    # a Deep SVDD with the same pretraining settings and seed pretrains the very
    # autoencoder Deep SAD would (pretraining has its own random stream)
    pretrainer = make_detector("deepsvdd", _pretrainer_params(settings, task.seed)).fit(X)
    state.pretrain_seconds += time.perf_counter() - started
    state.note("miss" if key is not None else "off")
    if key is not None:
        state.cache.put(key, pretrainer.autoencoder_, spec=pretrainer.spec_, input_shape=pretrainer.input_shape_,
                        output_activation=pretrainer.output_activation_)
    return pretrainer.autoencoder_, pretrainer


def _fit_pretraining(task: Task, X: np.ndarray, y: np.ndarray, factory: Callable[..., Any], state: _TaskState,
                     **candidate: Any) -> Any:
    """Fit Deep SAD / Deep SVDD on ``X, y`` with the shared (or freshly pretrained) autoencoder."""
    estimator = factory(**candidate)
    settings = autoencoder_settings(estimator, X.shape[1:], y)
    if settings is None:  # no pretraining, or a custom network
        return estimator.fit(X, y)
    autoencoder, _ = _pretrained(task, X, settings, state)
    return estimator.fit(X, y, autoencoder=autoencoder)


def _hybrid_source(task: Task, data: PreparedData, state: _TaskState) -> Any:
    """A fitted Deep SVDD (``epochs = 0``) lending the hybrid the setup's pretrained autoencoder."""
    from deepsad.methods import make_detector
    from deepsad.models import auto_spec

    params = {
        "standardize": False,  # the runner standardized the data (its [preprocessing])
        **task.autoencoder, "epochs": 0, "pretrain": True, "n_networks": 1, "random_state": task.seed, "verbose": False,
    }
    if params.get("network", "auto") == "auto":
        # the hybrids encode with Deep SAD's autoencoder; Deep SVDD's own "auto" MLP differs
        params["network"] = auto_spec(tuple(data.X_train.shape[1:]))
    source = make_detector("deepsvdd", params)
    settings = autoencoder_settings(source, data.X_train.shape[1:])
    if settings is None:
        raise InvalidInputError("hybrid methods need a pretrained autoencoder: [autoencoder] epochs must be > 0")
    autoencoder, pretrainer = _pretrained(task, data.X_train, settings, state)
    return pretrainer if pretrainer is not None else source.fit(data.X_train, autoencoder=autoencoder)


#: Methods that take feature vectors: images are flattened for them (the paper runs the
#: shallow baselines on raw pixels).
FLAT_INPUT_METHODS = ("ocsvm", "iforest", "kde", "ssad")


def _input_view(method: str, data: PreparedData) -> PreparedData:
    """The data as ``method`` takes it: images flattened (views, no copy) for shallow methods."""
    if method not in FLAT_INPUT_METHODS or data.X_train.ndim == 2:
        return data
    return PreparedData(
        X_train=data.X_train.reshape(data.X_train.shape[0], -1),
        y_train=data.y_train,
        X_test=data.X_test.reshape(data.X_test.shape[0], -1),
        y_test=data.y_test,
        summary=data.summary,
    )


def run_task(task: Task, data: PreparedData, context: RunContext) -> dict[str, Any]:
    """Run one task on prepared data; never raises for a failing method.

    Returns
    -------
    dict
        A result row (see :data:`deepsad.experiments.store.TASK_COLUMNS`): status
        ``done`` with AUC and average precision, or ``failed`` with the error.
    """
    data = _input_view(task.detector, data)
    if task.max_train_samples is not None:
        data = cap_training_set(data, task.max_train_samples, task.seed)
    row = start_row(task, data)
    state = _TaskState(cache=process_cache(context))
    started = time.perf_counter()
    try:
        estimator, selection, evaluation = _fit(task, data, state)
        row["fit_seconds"] = time.perf_counter() - started - state.pretrain_seconds
        row["selection"] = selection
        evaluate_into(row, estimator, data, evaluation)
    except Exception as error:  # a failing task is a result; the run goes on
        _mark_failed(row, error)
        if row.get("fit_seconds") is None:
            row["fit_seconds"] = time.perf_counter() - started - state.pretrain_seconds
    return finish_row(row, state)


def start_row(task: Task, data: PreparedData) -> dict[str, Any]:
    """A task's row before fitting: identity, settings, provenance and data sizes."""
    row = _row_skeleton(task)
    row["sampler_summary"] = data.summary
    row["n_train"] = int(data.X_train.shape[0])
    row["n_test"] = int(data.X_test.shape[0])
    return row


def finish_row(row: dict[str, Any], state: _TaskState) -> dict[str, Any]:
    """Record the autoencoder's provenance and the finishing time."""
    row["ae_cache"] = state.ae_status
    row["pretrain_seconds"] = state.pretrain_seconds if state.ae_status in ("miss", "off") else None
    row["finished_at"] = utc_now()
    return row


def evaluate_into(row: dict[str, Any], estimator: Any, data: PreparedData, evaluation: np.ndarray) -> None:
    """Score the test set and record the metrics; raises if they are undefined."""
    t0 = time.perf_counter()
    scores = np.asarray(estimator.anomaly_score(data.X_test), dtype=np.float64)
    row["score_seconds"] = time.perf_counter() - t0
    if not np.all(np.isfinite(scores)):
        raise DeepSADError(f"{int(np.sum(~np.isfinite(scores)))} test scores are NaN or infinite")
    from sklearn.metrics import average_precision_score, roc_auc_score

    truth = data.y_test[evaluation]
    if truth.min() == truth.max():
        raise InvalidInputError("the test set holds only one class, so AUC is undefined")
    row["auc"] = float(roc_auc_score(truth, scores[evaluation]))
    row["average_precision"] = float(average_precision_score(truth, scores[evaluation]))
    row["n_eval"] = int(evaluation.size)
    row["status"] = "done"


def failed_row(task: Task, error: BaseException) -> dict[str, Any]:
    """The row of a task that failed before it could be fitted (e.g. its data could not be drawn)."""
    row = _row_skeleton(task)
    _mark_failed(row, error)
    row["finished_at"] = utc_now()
    return row


def _mark_failed(row: dict[str, Any], error: BaseException) -> None:
    message = str(error).strip() or type(error).__name__
    row["status"] = "failed"
    row["error"] = f"{type(error).__name__}: {message}"[:MAX_ERROR_CHARS]
    row["traceback"] = "".join(traceback.format_exception(type(error), error, error.__traceback__))[-MAX_TRACEBACK_CHARS:]
    row["auc"] = row["average_precision"] = None
    # INFO, not WARNING: the driver reports failed tasks, and the store keeps the details
    logger.info("task %s failed: %s", row["task_key"], row["error"].splitlines()[0])


def _fit(task: Task, data: PreparedData, state: _TaskState) -> tuple[Any, dict[str, Any], np.ndarray]:
    """Fit the task's method (with its selection step); return the estimator, the
    selection record and the test positions to evaluate on."""
    from deepsad.methods import make_detector

    name = task.detector  # a method label ([methods.deepsad-paper]) names its detector
    base = _with_runner_params(name, task.params, task.seed)
    source = _hybrid_source(task, data, state) if name.startswith("hybrid-") else None

    def factory(**candidate: Any) -> Any:
        params = dict(base)
        if name.startswith("hybrid-"):
            params["shallow_params"] = {**dict(params.get("shallow_params") or {}), **candidate}
            params["autoencoder"] = source
        else:
            params.update(candidate)
        return make_detector(name, params)

    selection = task.selection
    protocol = selection["protocol"]
    everything = np.arange(data.y_test.size)
    if protocol == "fixed":
        if name in PRETRAINING_METHODS:
            estimator = _fit_pretraining(task, data.X_train, data.y_train, factory, state)
        else:
            estimator = factory().fit(data.X_train, data.y_train)
        return estimator, {"protocol": "fixed"}, everything

    from deepsad.baselines.selection import paper_test_subset, select_hyperparameters, validation_split

    if name in PRETRAINING_METHODS:
        # candidates fitted on the same data share one autoencoder
        def make(**candidate: Any) -> Any:
            return _CachedFit(lambda X, y: _fit_pretraining(task, X, y, factory, state, **candidate))
    else:
        make = factory
    grid = {k: list(v) for k, v in selection["grid"].items()}
    if protocol == "paper-test-subset":
        split = paper_test_subset(data.y_test, fraction=selection["fraction"],
                                  exclude_from_evaluation=selection["exclude_from_evaluation"], random_state=task.seed)
        result = select_hyperparameters(
            make, grid, data.X_train, data.y_train, data.X_test[split.select_indices], data.y_test[split.select_indices],
            protocol=protocol, fallback_params=selection["fallback"], on_error="record", keep_best=True,
        )
        estimator = result.best_estimator
        if isinstance(estimator, _CachedFit):
            estimator = estimator.fitted
        evaluation = split.evaluation_indices
    else:
        split = validation_split(data.y_train, validation_fraction=selection["validation_fraction"], random_state=task.seed)
        result = select_hyperparameters(
            make, grid, data.X_train[split.fit_indices], data.y_train[split.fit_indices],
            data.X_train[split.validation_indices], split.validation_truth,
            protocol=protocol, fallback_params=selection["fallback"], on_error="record", keep_best=False,
        )
        # refit the choice on the whole training set
        if name in PRETRAINING_METHODS:
            estimator = _fit_pretraining(task, data.X_train, data.y_train, factory, state, **result.best_params)
        else:
            estimator = factory(**result.best_params).fit(data.X_train, data.y_train)
        evaluation = everything
    return estimator, result.to_dict(), np.asarray(evaluation)


class _CachedFit:
    """Adapter for selecting a pretraining method's parameters: ``fit`` goes through the cache."""

    def __init__(self, fit: Callable[[Any, Any], Any]) -> None:
        self._fit = fit
        self.fitted: Any = None

    def fit(self, X: Any, y: Any = None) -> _CachedFit:
        self.fitted = self._fit(X, y)
        return self

    def anomaly_score(self, X: Any) -> np.ndarray:
        return self.fitted.anomaly_score(X)


def _row_skeleton(task: Task) -> dict[str, Any]:
    """The row of a task before it ran: identity, settings and provenance."""
    return {
        "task_key": task.task_key,
        "experiment": task.experiment,
        "profile": task.profile,
        "dataset": task.dataset,
        "parameter": task.parameter,
        "value": task.value,
        "method": task.method,
        "detector": task.detector,
        "max_train_samples": task.max_train_samples,
        "setup_key": task.setup_key,
        "seed": task.seed,
        "normal_class": task.normal_class,
        "known_classes": ",".join(str(k) for k in task.known_classes),
        "gamma_l": task.gamma_l,
        "gamma_p": task.gamma_p,
        "k_l": task.k_l,
        "eta": task.params.get("eta"),
        "rep_dim": task.rep_dim,
        "status": "failed",
        "config_hash": task.config_hash,
        "selection_protocol": task.selection["protocol"],
        "params": json.loads(canonical_json(task.params)),
        "versions": package_versions(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "threads": _torch_threads(),
        "started_at": utc_now(),
    }


def _torch_threads() -> int | None:
    torch = sys.modules.get("torch")
    return int(torch.get_num_threads()) if torch is not None else None


def iter_group(tasks: Sequence[Task], context: RunContext) -> Iterator[dict[str, Any]]:
    """Run a group's tasks in order, yielding one row per task as it finishes.

    The data are drawn once for the group (its tasks share ``group_key``); if that
    fails, every task of the group is returned as failed with that error. The fits run
    under :func:`deepsad.training.tuned_threads` (the runner opts in to the per-network
    thread rule), entered while a row is computed and left before it is yielded.
    """
    from deepsad.training import tuned_threads

    rows = _iter_group(tasks, context)
    while True:
        with tuned_threads():
            row = next(rows, None)
        if row is None:
            return
        yield row


def _iter_group(tasks: Sequence[Task], context: RunContext) -> Iterator[dict[str, Any]]:
    if not tasks:
        return
    if len({task.group_key for task in tasks}) > 1:  # a unit of stacked fits (see stacking.py)
        from deepsad.experiments.stacking import iter_stack_unit

        yield from iter_stack_unit(tasks, context)
        return
    try:
        data = prepare_data(tasks[0], context.data_root)
    except Exception as error:
        for task in tasks:
            yield failed_row(task, error)
        return
    for task in tasks:
        if task.data_spec() != tasks[0].data_spec():  # pragma: no cover - grouping bug
            raise AssertionError("tasks of a group must share their data")
        yield run_task(task, data, context)


def run_group(tasks: Sequence[Task], context: RunContext) -> list[dict[str, Any]]:
    """Run a group and return all its rows (what local and Ray workers execute).

    A worker process is the runner's own, so it takes the CPU training settings for good:
    ``context.threads`` and :func:`deepsad.training.keep_freed_memory`.
    """
    from deepsad.training import keep_freed_memory

    configure_threads(context.threads)
    keep_freed_memory()
    return list(iter_group(tasks, context))


# --------------------------------------------------------------------------- the driver


@dataclass
class RunSummary:
    """What :func:`run_experiment` did.

    Attributes
    ----------
    n_tasks : int
        Tasks of the config.
    n_skipped : int
        Already in the results file and finished with the same settings.
    n_done, n_failed : int
        Run now, with that outcome.
    n_pending : int
        Neither skipped nor run (only after an interruption).
    interrupted : bool
        The run was stopped with Ctrl-C (or SIGTERM); finished tasks are saved.
    results : pathlib.Path
    run_id : int or None
    seconds : float
    failed_examples : list of str
        ``task_key: error`` of up to five failed tasks.
    """

    n_tasks: int
    n_skipped: int
    n_done: int = 0
    n_failed: int = 0
    n_pending: int = 0
    interrupted: bool = False
    results: Path = Path()
    run_id: int | None = None
    seconds: float = 0.0
    failed_examples: list[str] = field(default_factory=list)


def plan(tasks: Sequence[Task], existing: Mapping[str, tuple[str, str]], *, rerun_changed: bool = False,
         retry_failed: bool = True) -> tuple[list[Task], int, list[Task]]:
    """Split tasks into (to run, number skipped, finished with other settings)."""
    todo: list[Task] = []
    changed: list[Task] = []
    skipped = 0
    for task in tasks:
        previous = existing.get(task.task_key)
        if previous is None:
            todo.append(task)
            continue
        status, config_hash = previous
        if config_hash != task.config_hash:
            if status == "done" and not rerun_changed:
                changed.append(task)
            else:
                todo.append(task)
        elif status == "done" or not retry_failed:
            skipped += 1
        else:
            todo.append(task)
    return todo, skipped, changed


def run_experiment(
    config: ExperimentConfig,
    results: str | os.PathLike,
    executor: Any,
    *,
    data_root: str | os.PathLike | None = None,
    use_ae_cache: bool = True,
    ae_cache_dir: str | os.PathLike | None = None,
    ae_cache_disk: bool = True,
    rerun_changed: bool = False,
    retry_failed: bool = True,
    progress: bool = True,
    argv: Sequence[str] | None = None,
    stack: int = 1,
) -> RunSummary:
    """Run every task of ``config`` that ``results`` does not hold yet.

    Parameters
    ----------
    config : ExperimentConfig
    results : str or os.PathLike
        The SQLite results file (created if missing).
    executor : SerialExecutor, LocalExecutor or RayExecutor
        See :mod:`deepsad.experiments.executors`.
    data_root : str or os.PathLike, optional
        Default: ``$DEEPSAD_DATA``, else the user cache folder.
    use_ae_cache : bool, default True
        Share pretrained autoencoders between tasks (``--no-ae-cache`` turns it off).
    ae_cache_dir : str or os.PathLike, optional
        Default ``<results folder>/ae-cache``. An entry is one autoencoder's weights
        (kilobytes for the ODDS MLPs, about 4 MB for the CIFAR-10 LeNet); delete the
        folder at will.
    ae_cache_disk : bool, default True
        False keeps the cache in each worker's memory only.
    rerun_changed : bool, default False
        Rerun finished tasks whose settings changed (otherwise that is an error).
    retry_failed : bool, default True
        Rerun tasks stored as failed.
    progress : bool, default True
        A progress bar with ETA on stderr.
    argv : sequence of str, optional
        The command line, recorded with the run.
    stack : int, default 1
        Train up to this many Deep SAD / one-class Deep SVDD fits of a cell together
        (:mod:`deepsad.experiments.stacking`); 1 runs every fit on its own.

    Returns
    -------
    RunSummary
        Ctrl-C (KeyboardInterrupt) stops the run cleanly: finished tasks stay saved, the
        run is recorded as interrupted and the summary says so.

    Raises
    ------
    InvalidInputError
        Finished tasks whose settings differ from the config (without ``rerun_changed``).
    ResultsFileError
        A results file that is not a deepsad results database (it is not modified).
    """
    from deepsad.data.registry import resolve_data_root

    started = time.perf_counter()
    results = Path(results)
    # absolute: Ray workers do not share the driver's working directory
    root = str(Path(resolve_data_root(data_root)).expanduser().resolve())
    tasks = expand(config, data_root=root)
    with ResultStore(results) as store:
        todo, skipped, changed = plan(tasks, store.existing(), rerun_changed=rerun_changed, retry_failed=retry_failed)
        if changed:
            raise InvalidInputError(
                f"{len(changed)} finished task(s) in {results} were run with other settings "
                f"(e.g. {changed[0].task_key}); write to another --results file, or pass --rerun-changed to replace them"
            )
        summary = RunSummary(n_tasks=len(tasks), n_skipped=skipped, results=results)
        if not todo:
            summary.seconds = time.perf_counter() - started
            return summary
        cache_dir = None
        if use_ae_cache and ae_cache_disk:
            cache_dir = str((Path(ae_cache_dir) if ae_cache_dir is not None else results.parent / "ae-cache").resolve())
            logger.info("autoencoder cache: %s", cache_dir)
        context = RunContext(data_root=root, use_ae_cache=use_ae_cache, ae_cache_dir=cache_dir,
                             threads=getattr(executor, "threads_per_worker", None))
        run_id = store.begin_run({
            "experiment": config.experiment, "profile": config.profile, "config_path": config.source,
            "config_hash": config.config_hash, "config": config.resolved, "executor": executor.name,
            "workers": executor.workers, "threads_per_worker": getattr(executor, "threads_per_worker", None),
            "host": socket.gethostname(), "versions": package_versions(), "argv": list(argv or []),
            "n_tasks": len(tasks), "n_skipped": skipped,
        })
        summary.run_id = run_id
        from deepsad.experiments.stacking import execution_units

        groups = execution_units(todo, stack)
        logger.info("%s (%s): %d tasks, %d already done, %d to run in %d units (stack %d)",
                    config.experiment, config.profile, len(tasks), skipped, len(todo), len(groups), stack)
        bar = _progress_bar(len(todo), f"{config.experiment} ({config.profile})", progress)

        def on_rows(rows: list[dict[str, Any]]) -> None:
            store.write(rows, run_id=run_id)
            for row in rows:
                if row["status"] == "done":
                    summary.n_done += 1
                else:
                    summary.n_failed += 1
                    if len(summary.failed_examples) < 5:
                        summary.failed_examples.append(f"{row['task_key']}: {row['error']}")
            bar.update(len(rows))
            bar.set_postfix(failed=summary.n_failed, refresh=False)

        status = "error"
        try:
            executor.run(groups, context, on_rows)
            status = "finished"
        except KeyboardInterrupt:
            status = "interrupted"
            summary.interrupted = True
            logger.warning("interrupted: %d of %d tasks of this run saved", summary.n_done + summary.n_failed, len(todo))
        finally:
            bar.close()
            summary.n_pending = len(todo) - summary.n_done - summary.n_failed
            summary.seconds = time.perf_counter() - started
            store.end_run(run_id, status, n_done=summary.n_done, n_failed=summary.n_failed)
    return summary


def _progress_bar(total: int, description: str, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit="task", disable=not enabled, dynamic_ncols=True,
                smoothing=0.1, file=sys.stderr)
