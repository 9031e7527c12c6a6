"""Expand a config into tasks: one (dataset, setup, seed, sweep value, method) each.

A *setup* is one draw of training and test data: for image datasets a normal class, the
known anomaly classes and a seed; for tabular benchmarks a seed. Every method of a cell
(dataset, sweep value) runs on the same setups, and ``setup_key`` pairs them for the
Wilcoxon test of the reports.

Keys
----
``task_key`` identifies a task within a results file and is stable across runs and
machines: ``<experiment>/<dataset>/<parameter>=<value>/<setup_key>/<method>`` (no
``<parameter>=<value>`` part without a sweep), e.g.
``table3/mnist/gamma_l=0.05/normal=0|known=1|seed=0/deepsad``. ``config_hash`` hashes
everything the task's result depends on (scenario, preprocessing, network, every
parameter), so a rerun can tell a finished task from one whose settings changed.
``group_key`` hashes what decides the training data and the autoencoder: tasks that
share it are run one after another by one worker, which draws the data once and
pretrains the autoencoder once.

Image setups
------------
``known_classes = "each"``: for every normal class, one setup per other class (scenario
i/ii: 9 per normal class, 90 per dataset); ``max_known_classes`` keeps the first N other
classes in cyclic order after the normal class. ``"random"`` (scenario iii): the known
classes are the first ``k_l`` of a permutation of the other classes drawn from
``(seed, normal class)``, so a larger ``k_l`` extends the smaller one's set. When no
labeled anomaly can be drawn (``gamma_l = 0`` or ``k_l = 0``) the known classes do not
change the data, and the setups of a normal class collapse to one per seed
(``known=-`` in the key) instead of repeating the same experiment nine times.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from deepsad.errors import InvalidInputError
from deepsad.experiments.config import ExperimentConfig, MethodSpec, stable_hash


@dataclass(frozen=True)
class Task:
    """Everything needed to run one method on one setup, in picklable plain data.

    Attributes
    ----------
    experiment, profile, dataset : str
    dataset_kind : {"images", "odds", "benchmark", "tabular"}
    parameter : str
        The swept parameter (``""`` for none).
    value : float
        Its value in this cell (without a sweep: the scenario's ``gamma_l``).
    method : str
        The method's label (its ``[methods.<label>]`` table).
    seed : int
    normal_class : int or None
        Images only.
    known_classes : tuple of int
        Images only; empty when no labeled anomaly is drawn.
    gamma_l, gamma_p : float
    k_l : int
        Number of known anomaly classes (images; tabular data have one anomaly class).
    ratio_labeled_normal, test_fraction : float
    max_samples, max_per_class : int or None
        Subsampling of quick profiles (see :mod:`deepsad.experiments.config`).
    standardize : bool
        Tabular data: standardize with training statistics.
    params : dict
        The detector's parameters (without ``random_state``/``verbose``); shared by
        the tasks of a cell, so treat it as read-only.
    selection : dict
        :meth:`SelectionSpec.to_dict` of the method.
    autoencoder : dict
        Settings of the pretraining autoencoder as DeepSVDD parameters (``network``,
        ``pretrain_*``, ``batch_size``, ``output_activation``, ``device``), used for the
        hybrids' encoder.
    available : bool
        False when the method's class is missing from this build.
    task_key, setup_key, config_hash, group_key : str
    detector : str
        The :func:`deepsad.methods.method_names` name of the detector (``method`` unless
        the label names another one).
    max_train_samples : int or None
        Cap on the training samples the method is fitted on (see
        :func:`deepsad.experiments.preparation.cap_training_set`).
    keep_all_anomalies : bool
    labeled_anomaly_fraction : float or None
        Tabular benchmarks: the keep-all ("polluted") draw and its labeled share (see
        :func:`deepsad.data.scenarios.sample_odds_scenario`).
    label_available_if_short : bool
        Tabular benchmarks, default draw: label every training anomaly when ``gamma_l``
        asks for more than the split holds.
    """

    experiment: str
    profile: str
    dataset: str
    dataset_kind: str
    parameter: str
    value: float
    method: str
    seed: int
    normal_class: int | None
    known_classes: tuple[int, ...]
    gamma_l: float
    gamma_p: float
    k_l: int
    ratio_labeled_normal: float
    test_fraction: float
    max_samples: int | None
    max_per_class: int | None
    standardize: bool
    params: dict[str, Any] = field(repr=False)
    selection: dict[str, Any] = field(repr=False)
    autoencoder: dict[str, Any] = field(repr=False)
    available: bool = True
    task_key: str = ""
    setup_key: str = ""
    config_hash: str = ""
    group_key: str = ""
    detector: str = ""
    max_train_samples: int | None = None
    keep_all_anomalies: bool = False
    labeled_anomaly_fraction: float | None = None
    label_available_if_short: bool = False

    def __post_init__(self) -> None:
        if not self.detector:
            object.__setattr__(self, "detector", self.method)

    def data_spec(self) -> dict[str, Any]:
        """What decides the training and test data (equal for all tasks of a group)."""
        spec = {
            "dataset": self.dataset,
            "kind": self.dataset_kind,
            "seed": self.seed,
            "normal_class": self.normal_class,
            "known_classes": list(self.known_classes),
            "gamma_l": self.gamma_l,
            "gamma_p": self.gamma_p,
            "ratio_labeled_normal": self.ratio_labeled_normal,
            "test_fraction": self.test_fraction,
            "max_samples": self.max_samples,
            "max_per_class": self.max_per_class,
            "standardize": self.standardize,
        }
        if self.keep_all_anomalies:  # named only when used, so other data keep their hash
            spec["keep_all_anomalies"] = True
            spec["labeled_anomaly_fraction"] = self.labeled_anomaly_fraction
        if self.label_available_if_short:
            spec["label_available_if_short"] = True
        return spec

    @property
    def rep_dim(self) -> int | None:
        """The representation size of the task's network, when it names one."""
        network = self.params.get("network", self.autoencoder.get("network"))
        if isinstance(network, dict):
            if network.get("rep_dim") is not None:
                return int(network["rep_dim"])
            if network.get("type") == "lenet":
                from deepsad.models.specs import LENET_DEFAULT_REP_DIM

                return LENET_DEFAULT_REP_DIM.get(network.get("variant", ""))
        return None


def format_value(parameter: str, value: float) -> str:
    """How a sweep value appears in keys: integers for ``k_l``/``rep_dim``, else ``repr``."""
    if parameter in ("k_l", "rep_dim"):
        return str(int(value))
    return repr(float(value))


def setup_key(normal_class: int | None, known_classes: Sequence[int], seed: int) -> str:
    """``normal=0|known=1,4|seed=3`` for images (``known=-`` for none), ``seed=3`` for tabular data."""
    if normal_class is None:
        return f"seed={seed}"
    known = ",".join(str(k) for k in known_classes) or "-"
    return f"normal={normal_class}|known={known}|seed={seed}"


def _image_classes(dataset: str, data_root: Any) -> list[int]:
    from deepsad.data.registry import get_dataset

    info = get_dataset(dataset, data_root)
    if info.classes:
        return list(range(len(info.classes)))
    # a user image dataset without class names: read the labels
    from deepsad.data.loaders import load_labels

    return sorted(int(c) for c in np.unique(load_labels(dataset, "train", data_root)))


def _cyclic_after(normal: int, classes: Sequence[int]) -> list[int]:
    """The other classes in cyclic order starting after ``normal``."""
    others = [c for c in classes if c != normal]
    return sorted(others, key=lambda c: (c - normal) % (max(classes) + 1))


def _image_setups(
    config: ExperimentConfig, dataset: str, gamma_l: float, k_l: int, data_root: Any
) -> list[tuple[int, tuple[int, ...], int]]:
    """(normal class, known classes, seed) of every setup of one image cell."""
    classes = _image_classes(dataset, data_root)
    scenario = config.scenario
    normals = classes if scenario.normal_classes == "all" else list(scenario.normal_classes)
    for c in normals:
        if c not in classes:
            raise InvalidInputError(f"{config.source}: normal class {c} is not a class of {dataset!r} (classes: {classes})")
    no_labels = gamma_l == 0 or k_l == 0
    setups: list[tuple[int, tuple[int, ...], int]] = []
    for normal in normals:
        others = _cyclic_after(normal, classes)
        if k_l > len(others):
            raise InvalidInputError(f"{config.source}: k_l = {k_l} but {dataset!r} has only {len(others)} anomaly classes")
        for seed in config.seeds:
            if no_labels:
                setups.append((normal, (), seed))
            elif scenario.known_classes == "each":
                chosen = others[: scenario.max_known_classes] if scenario.max_known_classes else others
                setups.extend((normal, (known,), seed) for known in chosen)
            else:
                permutation = np.random.default_rng([seed, normal]).permutation(np.asarray(sorted(others)))
                setups.append((normal, tuple(sorted(int(c) for c in permutation[:k_l])), seed))
    # "each" iterates seeds inside known classes in the paper's wording; keep a stable order
    return sorted(setups, key=lambda s: (normals.index(s[0]), s[1], config.seeds.index(s[2])))


def network_for(config: ExperimentConfig, dataset: str, parameter: str, value: float | None) -> dict[str, Any] | None:
    """The network spec dict of a dataset, with the swept ``rep_dim`` applied."""
    network = copy.deepcopy(config.networks.get(dataset))
    if network is not None and parameter == "rep_dim" and value is not None:
        network["rep_dim"] = int(value)
    return network


def _shared_training(config: ExperimentConfig) -> dict[str, Any]:
    """``batch_size`` and ``device`` of [training], which the autoencoder shares (none
    without a [training] table: the detectors' defaults)."""
    return {key: config.training[key] for key in ("batch_size", "device") if key in config.training}


def autoencoder_settings(config: ExperimentConfig, dataset: str, parameter: str, value: float | None) -> dict[str, Any]:
    """The pretraining autoencoder's settings as DeepSVDD parameters.

    Keys a config without [autoencoder] / [training] tables leaves out keep DeepSVDD's
    defaults.
    """
    ae = config.autoencoder
    settings: dict[str, Any] = {"network": network_for(config, dataset, parameter, value) or "auto"}
    for key in ("epochs", "lr", "lr_milestones", "weight_decay"):
        if key in ae:
            settings[f"pretrain_{key}"] = list(ae[key]) if key == "lr_milestones" else ae[key]
    settings["output_activation"] = "auto"
    settings.update(_shared_training(config))
    return settings


#: Methods whose network is Deep SAD's phi, so that [networks] applies to them (SS-DGM
#: has its own MLPs, following Kingma et al.).
NETWORK_METHODS: tuple[str, ...] = ("deepsad", "deepsvdd", "cae", "supervised")


def method_params(
    config: ExperimentConfig, method: MethodSpec, dataset: str, parameter: str, value: float | None
) -> dict[str, Any]:
    """A method's detector parameters in one cell (precedence: see :mod:`deepsad.experiments.config`)."""
    from deepsad.methods import parameter_names

    names = set(parameter_names(method.detector)) if method.available else set()
    params: dict[str, Any] = {}
    if method.detector == "cae":
        # the CAE baseline is the autoencoder, trained on its schedule
        source = {**config.autoencoder, **_shared_training(config)}
    else:
        source = dict(config.training)
    params.update({k: copy.deepcopy(v) for k, v in source.items() if k in names})
    for key, v in config.autoencoder.items():
        if f"pretrain_{key}" in names:
            params[f"pretrain_{key}"] = copy.deepcopy(v)
    network = network_for(config, dataset, parameter, value)
    if network is not None and "network" in names and method.detector in NETWORK_METHODS:
        params["network"] = network
    params.update(copy.deepcopy(method.params))
    if parameter == "eta" and "eta" in names and value is not None:
        params["eta"] = float(value)
    if parameter == "rep_dim" and value is not None and isinstance(params.get("network"), dict):
        params["network"]["rep_dim"] = int(value)
    return params


#: Settings that the paper configs state explicitly since deepsad's user defaults departed
#: from the paper (:mod:`deepsad.detectors.recipe`), at the values those configs always
#: ran with. Left out of the method hash at exactly these values, so that results stored
#: before the settings existed keep their task hashes; any other value is hashed.
PAPER_VALUES_OUTSIDE_HASH: dict[str, Any] = {"pretrain": True, "n_networks": 1}


def hashed_params(params: dict[str, Any]) -> dict[str, Any]:
    """The part of a method's parameters that its method hash covers (see :data:`PAPER_VALUES_OUTSIDE_HASH`)."""

    def at_paper_value(key: str, value: Any) -> bool:
        expected = PAPER_VALUES_OUTSIDE_HASH.get(key, _MISSING)
        return type(value) is type(expected) and value == expected

    return {key: value for key, value in params.items() if not at_paper_value(key, value)}


_MISSING = object()


def expand(config: ExperimentConfig, *, data_root: Any = None) -> list[Task]:
    """All tasks of a config, in a stable order (dataset, sweep value, setup, method).

    Parameters
    ----------
    config : ExperimentConfig
    data_root : str or os.PathLike, optional
        Only needed for user image datasets without class names.

    Returns
    -------
    list of Task

    Raises
    ------
    InvalidInputError
        For a normal class that the dataset does not have, or ``k_l`` above the number
        of anomaly classes.
    """
    tasks: list[Task] = []
    scenario = config.scenario
    cells: Iterable[float | None] = config.values if config.parameter else (None,)
    for dataset in config.datasets:
        kind = config.dataset_kinds[dataset]
        for value in cells:
            gamma_l = value if config.parameter == "gamma_l" else scenario.gamma_l
            gamma_p = value if config.parameter == "gamma_p" else scenario.gamma_p
            k_l = int(value) if config.parameter == "k_l" else scenario.k_l
            assert gamma_l is not None and gamma_p is not None
            if kind == "images":
                setups = _image_setups(config, dataset, gamma_l, k_l, data_root)
            else:
                setups = [(None, (), seed) for seed in config.seeds]
                k_l = 1  # the benchmarks' single anomaly class (paper, Appendix B)
            ae = autoencoder_settings(config, dataset, config.parameter, value)
            ae_hash = stable_hash(ae)
            for method in config.methods:
                if not method.runs_at(value):
                    continue
                method_setups = setups if method.seeds is None else [s for s in setups if s[2] in method.seeds]
                # shared, read-only, by the cell's tasks (copying them per task costs seconds
                # for the 17550 tasks of Table 4)
                params = method_params(config, method, dataset, config.parameter, value)
                method_hash = stable_hash({
                    "method": method.name, "params": hashed_params(params), "selection": method.selection.to_dict(),
                    "parameter": config.parameter, "value": value,
                    "autoencoder": ae if method.detector.startswith("hybrid-") else None,
                })
                if method.run_spec():  # a variant's detector, a training cap: hashed only when set
                    method_hash = stable_hash({"method": method_hash, **method.run_spec()})
                for normal, known, seed in method_setups:
                    tasks.append(_make_task(
                        config, dataset, kind, value, method, params, ae, normal, known, seed, gamma_l, gamma_p, k_l,
                        method_hash, ae_hash,
                    ))
    keys = [t.task_key for t in tasks]
    if len(set(keys)) != len(keys):  # pragma: no cover - a bug, not a user error
        raise AssertionError("task keys are not unique")
    return sorted(tasks, key=_order(config))


def _order(config: ExperimentConfig):
    methods = [m.name for m in config.methods]
    datasets = list(config.datasets)

    def key(task: Task) -> tuple:
        return (datasets.index(task.dataset), task.value, task.normal_class or 0, task.known_classes,
                task.seed, methods.index(task.method))

    return key


def _make_task(
    config: ExperimentConfig, dataset: str, kind: str, value: float | None, method: MethodSpec,
    params: dict[str, Any], ae: dict[str, Any], normal: int | None, known: tuple[int, ...], seed: int,
    gamma_l: float, gamma_p: float, k_l: int, method_hash: str, ae_hash: str,
) -> Task:
    scenario = config.scenario
    cell_value = float(value) if value is not None else float(gamma_l)
    task = Task(
        experiment=config.experiment,
        profile=config.profile,
        dataset=dataset,
        dataset_kind=kind,
        parameter=config.parameter,
        value=cell_value,
        method=method.name,
        seed=seed,
        normal_class=normal,
        known_classes=known,
        gamma_l=float(gamma_l),
        gamma_p=float(gamma_p),
        k_l=int(k_l) if kind == "images" else 1,
        ratio_labeled_normal=scenario.ratio_labeled_normal if kind == "images" else 0.0,
        test_fraction=scenario.test_fraction if kind != "images" else 0.0,
        max_samples=scenario.max_samples if kind != "images" else None,
        max_per_class=scenario.max_per_class if kind == "images" else None,
        standardize=config.standardize and kind != "images",
        params=params,
        selection=method.selection.to_dict(),
        autoencoder=ae,
        available=method.available,
        detector=method.detector,
        max_train_samples=method.max_train_samples,
        keep_all_anomalies=scenario.keep_all_anomalies and kind != "images",
        labeled_anomaly_fraction=scenario.labeled_anomaly_fraction if kind != "images" else None,
        label_available_if_short=scenario.label_available_if_short and kind != "images",
    )
    s_key = setup_key(normal, known, seed)
    cell = f"{config.parameter}={format_value(config.parameter, cell_value)}/" if config.parameter else ""
    data_hash = stable_hash(task.data_spec())
    object.__setattr__(task, "setup_key", s_key)
    object.__setattr__(task, "task_key", f"{config.experiment}/{dataset}/{cell}{s_key}/{method.name}")
    object.__setattr__(task, "config_hash", stable_hash({"data": data_hash, "method": method_hash}))
    object.__setattr__(task, "group_key", stable_hash({"data": data_hash, "autoencoder": ae_hash}))
    return task


def group_tasks(tasks: Sequence[Task]) -> list[list[Task]]:
    """Tasks grouped by ``group_key`` (same data and autoencoder), groups in first-task order."""
    groups: dict[str, list[Task]] = {}
    for task in tasks:
        groups.setdefault(task.group_key, []).append(task)
    return list(groups.values())


def count_by_cell(tasks: Sequence[Task]) -> dict[tuple[str, str, float, str], int]:
    """Number of tasks per (dataset, parameter, value, method), for ``--dry-run``."""
    counts: dict[tuple[str, str, float, str], int] = {}
    for task in tasks:
        key = (task.dataset, task.parameter, task.value, task.method)
        counts[key] = counts.get(key, 0) + 1
    return counts
