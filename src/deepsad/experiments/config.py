"""Experiment configurations: the paper's experiments as TOML data, loaded and validated.

A config names the datasets, the scenario, the swept parameter, the seeds, the methods
with every hyperparameter, and profiles (``quick`` for smoke runs and CI). Loading
checks everything that can be checked without data, so that a typo fails in a second
with a message naming the bad key and listing the valid ones, not hours into a run.

File format
-----------
Top-level keys (all but ``experiment``, ``datasets`` and ``methods`` optional)::

    experiment = "table6"              # name stored with every result row
    description = "..."
    datasets = ["cardio", "thyroid"]   # registry names (deepsad data list)
    seeds = [0, 1, 2]                  # drive the scenario draw and the methods' random_state
    enabled_methods = ["deepsad"]      # run only these of [methods] (default: all, in order)

    [sweep]                            # the parameter a table/figure varies (absent: none)
    parameter = "gamma_l"              # gamma_l | gamma_p | k_l | eta | rep_dim
    values = [0.0, 0.01, 0.05]

    [scenario]                         # DESIGN §4; defaults in SCENARIO_DEFAULTS
    gamma_l = 0.05                     # share of labeled anomalies in the training set
    gamma_p = 0.1                      # share of anomalies in the unlabeled part
    k_l = 1                            # number of known anomaly classes (images)
    known_classes = "each"             # images: "each" = one setup per other class (k_l = 1),
                                       # "random" = k_l classes drawn per (normal class, seed)
    normal_classes = "all"             # images: "all" or a list of class labels
    max_known_classes = 2              # images, "each": at most this many known classes per
                                       # normal class (the next ones cyclically; quick runs)
    ratio_labeled_normal = 0.0         # images: share of normals labeled +1
    test_fraction = 0.4                # tabular: test share of the stratified split
    max_samples = 1000                 # tabular: stratified random subset of the dataset
                                       # before the split (quick runs); absent = all
    max_per_class = 500                # images: at most this many images per class and split
    keep_all_anomalies = false         # tabular: true keeps every training sample (the
                                       # "polluted" draw); needs gamma_l = gamma_p = 0 and:
    labeled_anomaly_fraction = 0.1     # share of the training split's anomalies labeled -1
                                       # (round half up, at least one; the rest unlabeled)
    label_available_if_short = false   # tabular, default draw: label every training anomaly
                                       # when gamma_l asks for more than the split holds
                                       # (recorded as labeled_shortfall) instead of refusing

    [preprocessing]
    standardize = true                 # tabular: zero mean, unit variance (training statistics)

    [networks]                         # per dataset: a network spec dict (deepsad.models)
    cardio = { type = "mlp", hidden_sizes = [32, 16], rep_dim = 8 }

    [training]                         # defaults for every method that has these parameters
    epochs = 150                       # (Deep SAD, Deep SVDD, supervised, SS-DGM, ...);
                                       # keys a present table leaves out are the paper's
                                       # (TRAINING_DEFAULTS); without the table each method
                                       # keeps its own defaults
    lr = 1e-4
    lr_milestones = [50]
    weight_decay = 1e-6
    batch_size = 200
    device = "auto"

    [autoencoder]                      # the autoencoder: Deep SAD / Deep SVDD pretraining
    epochs = 150                       # (pretrain_*), the hybrids' encoder, and the CAE
    lr = 1e-4                          # baseline's own training
    lr_milestones = [50]
    weight_decay = 5e-4                # (same rule: AUTOENCODER_DEFAULTS, or none at all)

    [methods.ocsvm]                    # one table per method (deepsad.methods names);
    selection = "paper-test-subset"    # keys are the detector's parameters, plus:
    grid = { gamma = [0.125, 1.0], nu = [0.1] }
    only_at = [0.0]                    # run only at these sweep values
    # skip_at = [0.0]                  # or: not at these sweep values
    max_train_samples = 10000          # fit on at most this many training samples
    seeds = [0, 1, 2]                  # run only at these of the config's seeds

    [methods.deepsad-paper]            # a second setting of one detector: the table's name
    method = "deepsad"                 # labels its rows, `method` names the detector
    network = "paper"

    [profiles.quick]                   # overlay, merged into the above for --profile quick
    seeds = [0]
    training = { epochs = 5 }

Reserved method keys: ``selection`` (``"fixed"``, ``"paper-test-subset"`` or
``"train-validation"``, see :mod:`deepsad.baselines.selection`), ``grid`` (candidates;
for ``hybrid-*`` methods they are parameters of the shallow method), ``selection_fraction``
(0.1), ``exclude_from_evaluation`` (false), ``validation_fraction`` (0.2), ``fallback``
(parameters used when the selection set lacks a class), ``only_at``, ``skip_at``,
``method``, ``max_train_samples``, ``seeds``. The runner sets ``random_state`` (from the
seed), ``verbose`` and a hybrid's ``autoencoder``.

* ``method``: the detector (a :func:`deepsad.methods.method_names` name) when the table's
  name is a label of its own, so that one config runs several settings of one detector
  (``[methods.deepsad-paper] method = "deepsad"``). The label names the rows in the
  results and reports; the parameters are checked against the detector's.
* ``max_train_samples``: fit the method on a random subset of at most this many training
  samples (for the slow kernel methods and large datasets), stratified by semi-label in
  proportion (round half up, at least one of each label present), except that labeled
  anomalies are kept whole while they fit. Drawn from the task's seed, so every method
  with the same cap sees the same subset; the test set stays whole. Stored with every
  row (``max_train_samples``, ``n_train``) and part of the task's hash only when set.
* ``seeds``: run the method only at these of the config's seeds (the others are skipped;
  an empty overlap is an error). Not part of the hash: a task's result does not depend
  on which other seeds run.

Precedence of a method's parameters, lowest first: the detector's defaults, ``[training]``
(each key for the methods that have that parameter; ``cae`` takes ``[autoencoder]``
instead, being the autoencoder), ``[autoencoder]`` as ``pretrain_*`` for Deep SAD and Deep
SVDD, ``[networks]`` (for the methods whose network is Deep SAD's phi: ``deepsad``,
``deepsvdd``, ``cae``, ``supervised``; hybrids encode with the autoencoder these settings
pretrain; SS-DGM keeps its own MLPs), the method's own table, the swept ``eta`` /
``rep_dim``. Every resolved parameter is stored with each result row.

Profiles: ``full`` is the file itself (plus ``[profiles.full]`` if present); any other
profile is a table under ``[profiles]`` deep-merged into it (tables merge key by key;
values and arrays replace).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepsad.errors import DataFileError, InvalidInputError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

logger = logging.getLogger(__name__)

#: The parameters a config may sweep.
SWEEP_PARAMETERS: tuple[str, ...] = ("gamma_l", "gamma_p", "k_l", "eta", "rep_dim")

#: Selection protocols of a method: fixed parameters, or those of deepsad.baselines.selection.
SELECTION_PROTOCOLS: tuple[str, ...] = ("fixed", "paper-test-subset", "train-validation")

#: Profile that is the config file itself.
FULL_PROFILE = "full"

TOP_LEVEL_KEYS: tuple[str, ...] = (
    "experiment", "description", "datasets", "seeds", "enabled_methods", "sweep", "scenario",
    "preprocessing", "networks", "training", "autoencoder", "methods", "profiles",
)
SWEEP_KEYS: tuple[str, ...] = ("parameter", "values")
SCENARIO_DEFAULTS: dict[str, Any] = {
    "gamma_l": 0.0,
    "gamma_p": 0.0,
    "k_l": 1,
    "known_classes": "each",
    "normal_classes": "all",
    "max_known_classes": None,
    "ratio_labeled_normal": 0.0,
    "test_fraction": 0.4,
    "max_samples": None,
    "max_per_class": None,
    "keep_all_anomalies": False,
    "labeled_anomaly_fraction": None,
    "label_available_if_short": False,
}
#: Scenario keys left out of the resolved config while they have their default, so that
#: configs that do not use them keep their hash.
_OPTIONAL_SCENARIO_KEYS: tuple[str, ...] = ("keep_all_anomalies", "labeled_anomaly_fraction", "label_available_if_short")
PREPROCESSING_DEFAULTS: dict[str, Any] = {"standardize": True}
#: The paper's schedule (Appendix E), used where a config leaves a key out.
TRAINING_DEFAULTS: dict[str, Any] = {
    "epochs": 150, "lr": 1e-4, "lr_milestones": [50], "weight_decay": 1e-6, "batch_size": 200, "device": "auto",
}
#: The autoencoder's schedule; weight decay 5e-4 as in the reference implementation.
AUTOENCODER_DEFAULTS: dict[str, Any] = {"epochs": 150, "lr": 1e-4, "lr_milestones": [50], "weight_decay": 5e-4}
METHOD_RESERVED_KEYS: tuple[str, ...] = (
    "selection", "grid", "selection_fraction", "exclude_from_evaluation", "validation_fraction",
    "fallback", "only_at", "skip_at", "method", "max_train_samples", "seeds",
)
#: Detector parameters the runner owns.
RUNNER_PARAMETERS: tuple[str, ...] = ("random_state", "verbose", "autoencoder")

#: The paper's experiments, one shipped config each.
PAPER_EXPERIMENTS: tuple[str, ...] = ("table3", "table4", "table5", "table6", "eta", "rep_dim")
#: Every shipped config: the paper's, then the tabular benchmarks of deepsad's defaults (docs/quality.md).
SHIPPED_EXPERIMENTS: tuple[str, ...] = (*PAPER_EXPERIMENTS, "table6_defaults", "tabular")

#: Where the shipped configs live: ``configs/`` at the repository root.
CONFIG_DIR = Path(__file__).resolve().parents[3] / "configs"


@dataclass(frozen=True)
class SelectionSpec:
    """How a method's hyperparameters are chosen.

    Attributes
    ----------
    protocol : {"fixed", "paper-test-subset", "train-validation"}
    grid : dict of str to tuple
        Candidate values per parameter (empty for ``fixed``).
    fraction : float
        Size of the paper's test subset.
    exclude_from_evaluation : bool
        Paper protocol only: report AUC on the test samples not used for selection.
    validation_fraction : float
        Share of the training set held out by ``train-validation``.
    fallback : dict or None
        Parameters used when the selection set lacks a class (AUC undefined).
    """

    protocol: str = "fixed"
    grid: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    fraction: float = 0.1
    exclude_from_evaluation: bool = False
    validation_fraction: float = 0.2
    fallback: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (stored with every result row)."""
        return {
            "protocol": self.protocol,
            "grid": {k: list(v) for k, v in self.grid.items()},
            "fraction": self.fraction,
            "exclude_from_evaluation": self.exclude_from_evaluation,
            "validation_fraction": self.validation_fraction,
            "fallback": self.fallback,
        }


@dataclass(frozen=True)
class MethodSpec:
    """One method of a config.

    Attributes
    ----------
    name : str
        The method's label: the ``[methods.<name>]`` table, stored as the rows' method.
    params : dict
        Detector parameters given in the method's table (not yet merged with defaults).
    selection : SelectionSpec
    only_at, skip_at : tuple of float or None
        Sweep values at which the method runs / does not run.
    available : bool
        False when the method's class is not part of this build; its tasks then fail
        with that error rather than the whole config being refused.
    detector : str
        The :func:`deepsad.methods.method_names` name of the detector (``name`` unless the
        table sets ``method``).
    max_train_samples : int or None
        Cap on the training samples the method is fitted on.
    seeds : tuple of int or None
        The config's seeds the method runs at (``None``: all).
    """

    name: str
    params: dict[str, Any]
    selection: SelectionSpec
    only_at: tuple[float, ...] | None = None
    skip_at: tuple[float, ...] = ()
    available: bool = True
    detector: str = ""
    max_train_samples: int | None = None
    seeds: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if not self.detector:
            object.__setattr__(self, "detector", self.name)

    def run_spec(self) -> dict[str, Any]:
        """What a task's result depends on besides the detector's parameters: the detector
        when it is not the label, and the training cap when set (empty otherwise, so that
        hashes of configs without them stay as they were)."""
        spec: dict[str, Any] = {}
        if self.detector != self.name:
            spec["detector"] = self.detector
        if self.max_train_samples is not None:
            spec["max_train_samples"] = self.max_train_samples
        return spec

    def runs_at(self, value: float | None) -> bool:
        """Whether the method runs at sweep value ``value`` (``None``: no sweep)."""
        if value is None:
            return True
        if self.only_at is not None and not any(math.isclose(value, v, rel_tol=1e-9, abs_tol=1e-12) for v in self.only_at):
            return False
        return not any(math.isclose(value, v, rel_tol=1e-9, abs_tol=1e-12) for v in self.skip_at)


@dataclass(frozen=True)
class ScenarioSpec:
    """The semi-supervised scenario (see :mod:`deepsad.data.scenarios`)."""

    gamma_l: float = 0.0
    gamma_p: float = 0.0
    k_l: int = 1
    known_classes: str = "each"
    normal_classes: str | tuple[int, ...] = "all"
    max_known_classes: int | None = None
    ratio_labeled_normal: float = 0.0
    test_fraction: float = 0.4
    max_samples: int | None = None
    max_per_class: int | None = None
    keep_all_anomalies: bool = False
    labeled_anomaly_fraction: float | None = None
    label_available_if_short: bool = False


@dataclass(frozen=True)
class ExperimentConfig:
    """A validated experiment config for one profile.

    Attributes
    ----------
    experiment, description, profile : str
    source : str
        The file it was read from (or ``"<dict>"``).
    datasets : tuple of str
    dataset_kinds : dict of str to str
        ``"images"``, ``"odds"`` or ``"tabular"`` per dataset.
    seeds : tuple of int
    parameter : str
        The swept parameter, ``""`` for none.
    values : tuple of float
        The swept values (empty for none).
    scenario : ScenarioSpec
    standardize : bool
    networks : dict of str to dict
        Network spec dicts per dataset (datasets absent use ``"auto"``).
    training, autoencoder : dict
        The schedules: with the table in the config, every key (those it leaves out
        from :data:`TRAINING_DEFAULTS` / :data:`AUTOENCODER_DEFAULTS`, the paper's); without
        it empty, so each method keeps its own defaults.
    methods : tuple of MethodSpec
        The enabled methods, in config order.
    resolved : dict
        The merged, defaults-filled config (what :attr:`config_hash` hashes).
    """

    experiment: str
    description: str
    profile: str
    source: str
    datasets: tuple[str, ...]
    dataset_kinds: dict[str, str]
    seeds: tuple[int, ...]
    parameter: str
    values: tuple[float, ...]
    scenario: ScenarioSpec
    standardize: bool
    networks: dict[str, dict[str, Any]]
    training: dict[str, Any]
    autoencoder: dict[str, Any]
    methods: tuple[MethodSpec, ...]
    resolved: dict[str, Any]

    @property
    def config_hash(self) -> str:
        """sha256 of the resolved config's canonical JSON (first 16 hex digits)."""
        return stable_hash(self.resolved)


# --------------------------------------------------------------------------- helpers


def canonical_json(value: Any) -> str:
    """Deterministic JSON (sorted keys, no spaces) used for hashes and stored columns."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=_json_default, allow_nan=True)


def _json_default(value: Any) -> Any:
    if isinstance(value, (tuple, set, frozenset)):
        return list(value)
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"not JSON serialisable: {value!r}")


def stable_hash(value: Any, length: int = 16) -> str:
    """First ``length`` hex digits of the sha256 of ``canonical_json(value)``."""
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()[:length]


def deep_merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``overlay`` merged in: tables merge recursively, everything else replaces."""
    merged = copy.deepcopy(dict(base))
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


class _Context:
    """Prefixes messages with the config's source so the user knows which file is wrong."""

    def __init__(self, source: str) -> None:
        self.source = source

    def error(self, message: str) -> InvalidInputError:
        return InvalidInputError(f"{self.source}: {message}")

    def check_keys(self, table: Mapping[str, Any], valid: Sequence[str], where: str) -> None:
        unknown = [key for key in table if key not in valid]
        if unknown:
            raise self.error(f"unknown key {unknown[0]!r} in {where}; valid keys: {', '.join(valid)}")

    def table(self, data: Mapping[str, Any], key: str) -> dict[str, Any]:
        value = data.get(key, {})
        if not isinstance(value, Mapping):
            raise self.error(f"{key!r} must be a table, got {type(value).__name__}")
        return dict(value)

    def number(self, value: Any, where: str, *, low: float | None = None, high: float | None = None,
               high_inclusive: bool = False) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.error(f"{where} must be a finite number, got {value!r}")
        value = float(value)
        if low is not None and value < low:
            raise self.error(f"{where} must be >= {low:g}, got {value!r}")
        if high is not None and (value > high or (value == high and not high_inclusive)):
            raise self.error(f"{where} must be {'<=' if high_inclusive else '<'} {high:g}, got {value!r}")
        return value

    def integer(self, value: Any, where: str, *, low: int = 0) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(f"{where} must be an integer, got {value!r}")
        if value < low:
            raise self.error(f"{where} must be >= {low}, got {value!r}")
        return int(value)

    def optional_integer(self, value: Any, where: str, *, low: int = 1) -> int | None:
        return None if value is None else self.integer(value, where, low=low)

    def int_list(self, value: Any, where: str, *, low: int = 0, nonempty: bool = True) -> tuple[int, ...]:
        if not isinstance(value, list) or (nonempty and not value):
            raise self.error(f"{where} must be a {'non-empty ' if nonempty else ''}list of integers, got {value!r}")
        items = tuple(self.integer(v, f"{where} entries", low=low) for v in value)
        if len(set(items)) != len(items):
            raise self.error(f"{where} lists a value twice: {list(items)}")
        return items


# --------------------------------------------------------------------------- loading


def find_config(name_or_path: str | os.PathLike) -> Path:
    """The config file for a path, or for the name of a shipped config (``table6``).

    Raises
    ------
    DataFileError
        If neither a file of that path nor a shipped config of that name exists; the
        message lists the shipped configs.
    """
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    if len(path.parts) == 1:  # a bare name: look in ./configs, then the shipped folders
        file_name = path.name if path.suffix == ".toml" else f"{path.name}.toml"
        for folder in (Path.cwd() / "configs", *_config_dirs()):
            if (folder / file_name).is_file():
                return folder / file_name
    shipped = ", ".join(shipped_configs()) or "none found"
    raise DataFileError(f"config file not found: {name_or_path} (shipped configs: {shipped})")


def _config_dirs() -> list[Path]:
    """Folders of shipped configs: the source checkout's ``configs/``, or a copy packaged
    next to this module (``deepsad/experiments/configs``) in an installed wheel."""
    return [folder for folder in (CONFIG_DIR, Path(__file__).resolve().parent / "configs") if folder.is_dir()]


def shipped_configs() -> list[str]:
    """Names of the shipped configs (``table3`` ... ``rep_dim``)."""
    return sorted({p.stem for folder in _config_dirs() for p in folder.glob("*.toml")})


def read_toml(path: str | os.PathLike) -> dict[str, Any]:
    """Parse a TOML file; a syntax error becomes one line naming the file and position."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise DataFileError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as error:
        raise InvalidInputError(f"{path}: not valid TOML: {error}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise DataFileError(f"cannot read config {path}: {error}") from None


def profiles_of(data: Mapping[str, Any]) -> list[str]:
    """The profiles a raw config offers: ``full`` and the tables under ``[profiles]``."""
    profiles = data.get("profiles", {})
    if not isinstance(profiles, Mapping):
        return [FULL_PROFILE]
    return [FULL_PROFILE] + [name for name in profiles if name != FULL_PROFILE]


def load_config(
    name_or_path: str | os.PathLike, profile: str = FULL_PROFILE, *, data_root: str | os.PathLike | None = None
) -> ExperimentConfig:
    """Read and validate a config file for one profile.

    Parameters
    ----------
    name_or_path : str or os.PathLike
        A TOML file, or the name of a shipped config (``table3`` ... ``rep_dim``).
    profile : str, default "full"
        ``full`` (the paper) or a profile defined under ``[profiles]`` (``quick``).
    data_root : str or os.PathLike, optional
        Only used to resolve user-registered datasets.

    Returns
    -------
    ExperimentConfig

    Raises
    ------
    InvalidInputError
        For any invalid content; the message names the file and the bad key or value
        and lists the valid choices.
    DataFileError
        If the file is missing or unreadable.
    """
    path = find_config(name_or_path)
    return config_from_dict(read_toml(path), profile, source=str(path), data_root=data_root)


def config_from_dict(
    data: Mapping[str, Any],
    profile: str = FULL_PROFILE,
    *,
    source: str = "<dict>",
    data_root: str | os.PathLike | None = None,
) -> ExperimentConfig:
    """Validate a parsed config (see the module docstring) for one profile.

    Parameters
    ----------
    data : mapping
        The parsed TOML.
    profile : str, default "full"
    source : str
        Used in error messages.
    data_root : str or os.PathLike, optional

    Returns
    -------
    ExperimentConfig
    """
    ctx = _Context(source)
    if not isinstance(data, Mapping):
        raise ctx.error("a config must be a table")
    ctx.check_keys(data, TOP_LEVEL_KEYS, "the config")
    available = profiles_of(data)
    if profile not in available:
        raise ctx.error(f"unknown profile {profile!r}; this config offers: {', '.join(available)}")
    profiles = ctx.table(data, "profiles")
    for name, overlay in profiles.items():
        if not isinstance(overlay, Mapping):
            raise ctx.error(f"profile {name!r} must be a table")
        unknown = [k for k in overlay if k not in TOP_LEVEL_KEYS or k in ("profiles", "experiment")]
        if unknown:
            valid = [k for k in TOP_LEVEL_KEYS if k not in ("profiles", "experiment")]
            raise ctx.error(f"unknown key {unknown[0]!r} in profile {name!r}; valid keys: {', '.join(valid)}")
    base = {k: v for k, v in data.items() if k != "profiles"}
    merged = deep_merge(base, profiles[profile]) if profile in profiles else base
    return _validate(merged, profile, ctx, data_root)


def _validate(data: dict[str, Any], profile: str, ctx: _Context, data_root: Any) -> ExperimentConfig:
    from deepsad.data.registry import get_dataset

    experiment = data.get("experiment")
    if not isinstance(experiment, str) or not experiment.strip():
        raise ctx.error("'experiment' must name the experiment, e.g. experiment = \"table6\"")
    if any(c in experiment for c in "/|= "):
        raise ctx.error(f"'experiment' may not contain '/', '|', '=' or spaces, got {experiment!r}")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise ctx.error("'description' must be a string")

    datasets = data.get("datasets")
    if not isinstance(datasets, list) or not datasets or not all(isinstance(d, str) for d in datasets):
        raise ctx.error("'datasets' must be a non-empty list of dataset names")
    if len(set(datasets)) != len(datasets):
        raise ctx.error(f"'datasets' lists a dataset twice: {datasets}")
    kinds: dict[str, str] = {}
    for name in datasets:
        try:
            info = get_dataset(name, data_root)
        except InvalidInputError as error:
            raise ctx.error(str(error)) from None
        if info.kind == "tabular" and info.ground_truth_column is None:
            raise ctx.error(f"dataset {name!r} has no ground-truth column, so no test set can be scored")
        kinds[name] = info.kind

    seeds = ctx.int_list(data.get("seeds", [0]), "'seeds'")

    sweep = ctx.table(data, "sweep")
    ctx.check_keys(sweep, SWEEP_KEYS, "[sweep]")
    parameter = sweep.get("parameter", "")
    if parameter and parameter not in SWEEP_PARAMETERS:
        raise ctx.error(f"unknown sweep parameter {parameter!r}; valid: {', '.join(SWEEP_PARAMETERS)}")
    raw_values = sweep.get("values", [])
    if parameter and (not isinstance(raw_values, list) or not raw_values):
        raise ctx.error(f"[sweep] needs a non-empty list 'values' for {parameter!r}")
    if not parameter and raw_values:
        raise ctx.error("[sweep] 'values' given without 'parameter'")
    values = tuple(_sweep_value(ctx, parameter, v) for v in raw_values)
    if len(set(values)) != len(values):
        raise ctx.error(f"[sweep] 'values' lists a value twice: {list(values)}")

    scenario = _scenario(ctx, ctx.table(data, "scenario"), parameter, kinds)

    preprocessing = {**PREPROCESSING_DEFAULTS, **ctx.table(data, "preprocessing")}
    ctx.check_keys(preprocessing, tuple(PREPROCESSING_DEFAULTS), "[preprocessing]")
    if not isinstance(preprocessing["standardize"], bool):
        raise ctx.error("[preprocessing] 'standardize' must be true or false")

    networks = _networks(ctx, ctx.table(data, "networks"), datasets, parameter)

    # a table fills what it leaves out with the paper's schedule (as the paper configs
    # expect); no table at all leaves every method at its own defaults
    training = {**TRAINING_DEFAULTS, **ctx.table(data, "training")} if "training" in data else {}
    ctx.check_keys(training, tuple(TRAINING_DEFAULTS), "[training]")
    autoencoder = {**AUTOENCODER_DEFAULTS, **ctx.table(data, "autoencoder")} if "autoencoder" in data else {}
    ctx.check_keys(autoencoder, tuple(AUTOENCODER_DEFAULTS), "[autoencoder]")
    for where, table in (("[training]", training), ("[autoencoder]", autoencoder)):
        if table:
            _schedule(ctx, table, where)

    methods_table = ctx.table(data, "methods")
    if not methods_table:
        raise ctx.error("the config defines no [methods.<name>] table")
    enabled = data.get("enabled_methods", list(methods_table))
    if not isinstance(enabled, list) or not enabled or not all(isinstance(m, str) for m in enabled):
        raise ctx.error("'enabled_methods' must be a non-empty list of method names")
    for name in enabled:
        if name not in methods_table:
            raise ctx.error(
                f"enabled_methods names {name!r}, which has no [methods.{name}] table; defined: {', '.join(methods_table)}"
            )
    methods = tuple(
        _method(ctx, name, methods_table[name], parameter, values, seeds)
        for name in methods_table
        if name in enabled
    )

    resolved = {
        "experiment": experiment,
        "datasets": list(datasets),
        "seeds": list(seeds),
        "sweep": {"parameter": parameter, "values": list(values)},
        "scenario": {
            k: list(v) if isinstance(v, tuple) else v for k, v in scenario.__dict__.items()
            if not (k in _OPTIONAL_SCENARIO_KEYS and v == SCENARIO_DEFAULTS[k])
        },
        "preprocessing": preprocessing,
        "networks": networks,
        "training": training,
        "autoencoder": autoencoder,
        "methods": {
            m.name: {"params": m.params, "selection": m.selection.to_dict(),
                     "only_at": None if m.only_at is None else list(m.only_at), "skip_at": list(m.skip_at),
                     # named only when set, so that configs without them keep their hash
                     **m.run_spec(), **({"seeds": list(m.seeds)} if m.seeds is not None else {})}
            for m in methods
        },
    }
    return ExperimentConfig(
        experiment=experiment,
        description=description,
        profile=profile,
        source=ctx.source,
        datasets=tuple(datasets),
        dataset_kinds=kinds,
        seeds=seeds,
        parameter=parameter,
        values=values,
        scenario=scenario,
        standardize=preprocessing["standardize"],
        networks=networks,
        training=training,
        autoencoder=autoencoder,
        methods=methods,
        resolved=resolved,
    )


def _sweep_value(ctx: _Context, parameter: str, value: Any) -> float:
    where = f"[sweep] value of {parameter}"
    if parameter in ("k_l", "rep_dim"):
        return float(ctx.integer(value, where, low=0 if parameter == "k_l" else 1))
    if parameter in ("gamma_l", "gamma_p"):
        return ctx.number(value, where, low=0.0, high=1.0)
    number = ctx.number(value, where, low=0.0)
    if number <= 0:
        raise ctx.error(f"{where} must be > 0, got {value!r}")
    return number


def _scenario(ctx: _Context, table: dict[str, Any], parameter: str, kinds: Mapping[str, str]) -> ScenarioSpec:
    ctx.check_keys(table, tuple(SCENARIO_DEFAULTS), "[scenario]")
    s = {**SCENARIO_DEFAULTS, **table}
    if s["known_classes"] not in ("each", "random"):
        raise ctx.error(f"[scenario] known_classes must be 'each' or 'random', got {s['known_classes']!r}")
    normal = s["normal_classes"]
    if normal != "all":
        normal = ctx.int_list(normal, "[scenario] normal_classes")
    k_l = ctx.integer(s["k_l"], "[scenario] k_l")
    has_images = any(kind == "images" for kind in kinds.values())
    if not has_images and parameter == "k_l":
        raise ctx.error("sweeping k_l needs image datasets (tabular benchmarks have one anomaly class)")
    if has_images and s["known_classes"] == "each" and (k_l > 1 or parameter == "k_l"):
        raise ctx.error("[scenario] known_classes = 'each' needs k_l = 1 (one setup per known class); "
                        "use known_classes = 'random' to draw several (or to sweep k_l)")
    if s["max_known_classes"] is not None and s["known_classes"] != "each":
        raise ctx.error("[scenario] max_known_classes applies to known_classes = 'each' only")
    keep_all, fraction = _keep_all(ctx, s, parameter, has_images)
    return ScenarioSpec(
        gamma_l=ctx.number(s["gamma_l"], "[scenario] gamma_l", low=0.0, high=1.0),
        gamma_p=ctx.number(s["gamma_p"], "[scenario] gamma_p", low=0.0, high=1.0),
        k_l=k_l,
        known_classes=s["known_classes"],
        normal_classes=normal,
        max_known_classes=ctx.optional_integer(s["max_known_classes"], "[scenario] max_known_classes"),
        ratio_labeled_normal=ctx.number(s["ratio_labeled_normal"], "[scenario] ratio_labeled_normal", low=0.0, high=1.0),
        test_fraction=ctx.number(s["test_fraction"], "[scenario] test_fraction", low=0.0, high=1.0),
        max_samples=ctx.optional_integer(s["max_samples"], "[scenario] max_samples", low=10),
        max_per_class=ctx.optional_integer(s["max_per_class"], "[scenario] max_per_class", low=2),
        keep_all_anomalies=keep_all,
        labeled_anomaly_fraction=fraction,
        label_available_if_short=_label_available_if_short(ctx, s, has_images),
    )


def _label_available_if_short(ctx: _Context, s: Mapping[str, Any], has_images: bool) -> bool:
    value = s["label_available_if_short"]
    if not isinstance(value, bool):
        raise ctx.error(f"[scenario] label_available_if_short must be true or false, got {value!r}")
    if value and has_images:
        raise ctx.error("[scenario] label_available_if_short applies to tabular benchmarks only")
    return value


def _keep_all(ctx: _Context, s: Mapping[str, Any], parameter: str, has_images: bool) -> tuple[bool, float | None]:
    """Validate the keep-all ("polluted") draw's keys: ``(keep_all_anomalies, labeled_anomaly_fraction)``."""
    keep_all, fraction = s["keep_all_anomalies"], s["labeled_anomaly_fraction"]
    if not isinstance(keep_all, bool):
        raise ctx.error(f"[scenario] keep_all_anomalies must be true or false, got {keep_all!r}")
    if not keep_all:
        if fraction is not None:
            raise ctx.error("[scenario] labeled_anomaly_fraction applies only with keep_all_anomalies = true "
                            "(the default draw labels gamma_l of the training set)")
        return False, None
    if fraction is None:
        raise ctx.error("[scenario] keep_all_anomalies = true needs labeled_anomaly_fraction "
                        "(the share of the training anomalies labeled -1, e.g. 0.1)")
    fraction = ctx.number(fraction, "[scenario] labeled_anomaly_fraction", low=0.0, high=1.0, high_inclusive=True)
    if has_images:
        raise ctx.error("[scenario] keep_all_anomalies applies to tabular benchmarks only; "
                        "image scenarios set gamma_l and gamma_p")
    if parameter in ("gamma_l", "gamma_p"):
        raise ctx.error(f"[scenario] keep_all_anomalies keeps every training sample, so {parameter} cannot be swept")
    if s["gamma_l"] or s["gamma_p"]:
        raise ctx.error(f"[scenario] keep_all_anomalies keeps every training sample, so gamma_l and gamma_p must be 0 "
                        f"(got gamma_l = {s['gamma_l']}, gamma_p = {s['gamma_p']}); labeled_anomaly_fraction sets the labels")
    return True, fraction


def _networks(ctx: _Context, table: dict[str, Any], datasets: list[str], parameter: str) -> dict[str, dict[str, Any]]:
    from deepsad.models import spec_from_dict, spec_to_dict

    networks: dict[str, dict[str, Any]] = {}
    for name, spec in table.items():
        if name not in datasets:
            raise ctx.error(f"[networks] names {name!r}, which is not in 'datasets' ({', '.join(datasets)})")
        try:
            networks[name] = spec_to_dict(spec_from_dict(spec))
        except InvalidInputError as error:
            raise ctx.error(f"[networks] {name}: {error}") from None
    if parameter == "rep_dim":
        missing = [d for d in datasets if d not in networks]
        if missing:
            raise ctx.error(f"sweeping rep_dim needs a [networks] entry for every dataset; missing: {', '.join(missing)}")
    return networks


def _schedule(ctx: _Context, table: dict[str, Any], where: str) -> None:
    ctx.integer(table["epochs"], f"{where} epochs")
    lr = ctx.number(table["lr"], f"{where} lr", low=0.0)
    if lr <= 0:
        raise ctx.error(f"{where} lr must be > 0")
    ctx.number(table["weight_decay"], f"{where} weight_decay", low=0.0)
    milestones = table["lr_milestones"]
    if not isinstance(milestones, list):
        raise ctx.error(f"{where} lr_milestones must be a list of epochs, got {milestones!r}")
    ctx.int_list(milestones, f"{where} lr_milestones", low=1, nonempty=False)
    if "batch_size" in table:
        ctx.integer(table["batch_size"], f"{where} batch_size", low=1)
    if "device" in table and not isinstance(table["device"], str):
        raise ctx.error(f"{where} device must be a string such as 'auto', 'cpu' or 'cuda'")


def _method(
    ctx: _Context, name: str, table: Any, parameter: str, values: tuple[float, ...], seeds: tuple[int, ...]
) -> MethodSpec:
    from deepsad.methods import check_method, parameter_names

    if not isinstance(table, Mapping):
        raise ctx.error(f"[methods.{name}] must be a table")
    table = dict(table)
    detector = table.get("method", name)
    if "method" in table:
        if not isinstance(detector, str):
            raise ctx.error(f"[methods.{name}] method must name a detector, got {detector!r}")
        if any(c in name for c in "/|= "):  # the label is part of every task key
            raise ctx.error(f"method label {name!r} may not contain '/', '|', '=' or spaces")
    try:
        check_method(detector)
    except InvalidInputError as error:
        hint = "" if "method" in table else f" (or set method = \"<detector>\" to make {name!r} a label)"
        raise ctx.error(f"[methods.{name}]: {error}{hint}") from None
    params = {k: v for k, v in table.items() if k not in METHOD_RESERVED_KEYS}
    owned = [k for k in params if k in RUNNER_PARAMETERS]
    if owned:
        raise ctx.error(f"[methods.{name}] sets {owned[0]!r}, which the runner sets (random_state comes from 'seeds')")
    try:
        valid = parameter_names(detector)
        available = True
    except InvalidInputError as error:
        # e.g. a method whose module is not in this build: its tasks fail with this
        # message, the rest of the experiment still runs
        logger.warning("%s: method %s cannot be checked: %s", ctx.source, detector, error)
        valid, available = (), False
    if available:
        unknown = [k for k in params if k not in valid]
        if unknown:
            allowed = [k for k in valid if k not in RUNNER_PARAMETERS] + list(METHOD_RESERVED_KEYS)
            raise ctx.error(f"unknown key {unknown[0]!r} in [methods.{name}]; valid keys: {', '.join(allowed)}")
        if parameter == "eta" and "eta" not in valid:
            logger.warning("%s: method %s has no parameter eta; it runs unchanged at every eta", ctx.source, name)

    selection = _selection(ctx, name, detector, table, valid if available else None)
    only_at = table.get("only_at")
    skip_at = table.get("skip_at", [])
    if (only_at is not None or skip_at) and not parameter:
        raise ctx.error(f"[methods.{name}] only_at/skip_at need a [sweep]")
    only = None if only_at is None else tuple(_sweep_value(ctx, parameter, v) for v in _list(ctx, only_at, name, "only_at"))
    skip = tuple(_sweep_value(ctx, parameter, v) for v in _list(ctx, skip_at, name, "skip_at"))
    for v in (only or ()) + skip:
        if not any(math.isclose(v, w, rel_tol=1e-9, abs_tol=1e-12) for w in values):
            raise ctx.error(f"[methods.{name}] only_at/skip_at value {v!r} is not a sweep value ({list(values)})")
    max_train = ctx.optional_integer(table.get("max_train_samples"), f"[methods.{name}] max_train_samples", low=2)
    method_seeds = None
    if "seeds" in table:
        method_seeds = tuple(s for s in ctx.int_list(table["seeds"], f"[methods.{name}] seeds") if s in seeds)
        if not method_seeds:
            raise ctx.error(f"[methods.{name}] seeds {table['seeds']} name none of the config's seeds {list(seeds)}")
        # the config's order, so that tasks sort the same way with and without the key
        method_seeds = tuple(s for s in seeds if s in method_seeds)
    spec = MethodSpec(name=name, params=params, selection=selection, only_at=only, skip_at=skip, available=available,
                      detector=detector, max_train_samples=max_train, seeds=method_seeds)
    if available:
        _check_constructible(ctx, spec)
    return spec


def _list(ctx: _Context, value: Any, name: str, key: str) -> list[Any]:
    if not isinstance(value, list):
        raise ctx.error(f"[methods.{name}] {key} must be a list of sweep values, got {value!r}")
    return value


def _selection(
    ctx: _Context, name: str, detector: str, table: Mapping[str, Any], valid: Sequence[str] | None
) -> SelectionSpec:
    protocol = table.get("selection", "fixed")
    if protocol not in SELECTION_PROTOCOLS:
        raise ctx.error(f"[methods.{name}] unknown selection {protocol!r}; valid: {', '.join(SELECTION_PROTOCOLS)}")
    grid = table.get("grid", {})
    if not isinstance(grid, Mapping):
        raise ctx.error(f"[methods.{name}] grid must be a table of lists")
    if protocol == "fixed":
        extra = [k for k in ("grid", "selection_fraction", "exclude_from_evaluation", "validation_fraction", "fallback") if k in table]
        if extra:
            raise ctx.error(f"[methods.{name}] sets {extra[0]!r} but selection is 'fixed'; set selection = "
                            "'paper-test-subset' or 'train-validation'")
        return SelectionSpec()
    if not grid:
        raise ctx.error(f"[methods.{name}] selection {protocol!r} needs a non-empty grid")
    if valid is not None:
        shallow_names = _shallow_parameter_names(detector)
        allowed = shallow_names if shallow_names is not None else tuple(k for k in valid if k not in RUNNER_PARAMETERS)
        for key in grid:
            if key not in allowed:
                what = f"the shallow method {detector.removeprefix('hybrid-')}" if shallow_names is not None else detector
                raise ctx.error(f"unknown grid key {key!r} in [methods.{name}] (a parameter of {what}); valid: {', '.join(allowed)}")
    candidates: dict[str, tuple[Any, ...]] = {}
    for key, options in grid.items():
        if not isinstance(options, list) or not options:
            raise ctx.error(f"[methods.{name}] grid {key!r} must be a non-empty list")
        candidates[key] = tuple(options)
    fallback = table.get("fallback")
    if fallback is not None and not isinstance(fallback, Mapping):
        raise ctx.error(f"[methods.{name}] fallback must be a table of parameters")
    if fallback is None:
        from deepsad.baselines.selection import FALLBACK_PARAMS

        fallback = FALLBACK_PARAMS.get(detector.removeprefix("hybrid-"))
    exclude = table.get("exclude_from_evaluation", False)
    if not isinstance(exclude, bool):
        raise ctx.error(f"[methods.{name}] exclude_from_evaluation must be true or false")
    return SelectionSpec(
        protocol=protocol,
        grid=candidates,
        fraction=ctx.number(table.get("selection_fraction", 0.1), f"[methods.{name}] selection_fraction", low=0.0, high=1.0),
        exclude_from_evaluation=exclude,
        validation_fraction=ctx.number(
            table.get("validation_fraction", 0.2), f"[methods.{name}] validation_fraction", low=0.0, high=1.0
        ),
        fallback=dict(fallback) if fallback is not None else None,
    )


def _shallow_parameter_names(name: str) -> tuple[str, ...] | None:
    """For ``hybrid-<shallow>``: the shallow method's parameter names, else None."""
    if not name.startswith("hybrid-"):
        return None
    from deepsad.methods import parameter_names

    return parameter_names(name.removeprefix("hybrid-"))


def _check_constructible(ctx: _Context, spec: MethodSpec) -> None:
    """Build the detector once with the config's values so bad values fail at load time."""
    from deepsad.methods import make_detector

    params = dict(spec.params)
    if spec.detector.startswith("hybrid-") and spec.selection.grid:
        first = {k: v[0] for k, v in spec.selection.grid.items()}
        params["shallow_params"] = {**dict(params.get("shallow_params") or {}), **first}
    elif spec.selection.grid:
        params.update({k: v[0] for k, v in spec.selection.grid.items()})
    try:
        make_detector(spec.detector, params)
    except InvalidInputError as error:
        raise ctx.error(f"[methods.{spec.name}]: {error}") from None
    except TypeError as error:  # a constructor that rejects a value type
        raise ctx.error(f"[methods.{spec.name}]: {error}") from None
