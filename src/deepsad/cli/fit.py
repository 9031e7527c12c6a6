"""``deepsad fit``: train any detector of the package on a data file and save it.

Every method of :mod:`deepsad.methods` is reachable with ``--method``. Options that set
a hyperparameter default to "not given", so that an option the chosen method does not
have is refused by name instead of being silently dropped, and the method's own
defaults (the paper's) apply otherwise. ``--param KEY=VALUE`` reaches any other
constructor parameter.
"""

from __future__ import annotations

import argparse
import inspect
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from deepsad.cli.arguments import add_command
from deepsad.errors import DeepSADError, InvalidInputError
from deepsad.validation import check_writable_directory

logger = logging.getLogger(__name__)

#: the semi-label column read when --label-column is not given (optional in the file)
DEFAULT_LABEL_COLUMN = "label"

#: option dest -> constructor parameter, for options that set one hyperparameter
_HYPERPARAMETER_OPTIONS: dict[str, str] = {
    "eta": "eta",
    "eps": "eps",
    "objective": "objective",
    "nu": "nu",
    "epochs": "epochs",
    "lr": "lr",
    "lr_milestones": "lr_milestones",
    "weight_decay": "weight_decay",
    "batch_size": "batch_size",
    "n_networks": "n_networks",
    "pretrain_epochs": "pretrain_epochs",
    "pretrain_lr": "pretrain_lr",
    "pretrain_lr_milestones": "pretrain_lr_milestones",
    "pretrain_weight_decay": "pretrain_weight_decay",
    "gamma": "gamma",
    "kappa": "kappa",
    "cp": "Cp",
    "cu": "Cu",
    "cn": "Cn",
    "n_estimators": "n_estimators",
    "max_samples": "max_samples",
    "bandwidth": "bandwidth",
}


def _milestones(text: str) -> tuple[int, ...]:
    """Parse ``50`` or ``50,100`` (or an empty string for none) into epochs."""
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated epochs like 50 or 50,100, got {text!r}") from None


def _number_or_word(*words: str) -> Any:
    def parse(text: str) -> float | str:
        if text in words:
            return text
        try:
            return float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number or one of {', '.join(words)}, got {text!r}") from None

    return parse


def _key_value(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with VALUE read as JSON when it parses (numbers, lists, true/false), else a string."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key.strip(), json.loads(value)
    except json.JSONDecodeError:
        return key.strip(), value


def add_fit_command(commands: Any) -> None:
    """Add ``deepsad fit`` to the ``deepsad`` parser."""
    from deepsad.methods import method_names

    fit = add_command(
        commands, "fit", run_fit, help="train a detector on a data file and save it",
        description="Train a detector on DATA (CSV, NPY/NPZ, Parquet or ODDS .mat) and save it to MODEL_DIR. "
        "The label column holds +1 (labeled normal), -1 (labeled anomaly) or 0 (unlabeled); without it every "
        "sample is unlabeled. Methods that ignore labels say so. Hyperparameters not given keep the method's "
        "defaults, the same as in the Python API (deepsad: 5 networks trained from scratch for tables, the "
        "paper's pretrained LeNet for images; --param network=\"paper\" etc. for the paper's settings).",
    )
    fit.add_argument("data", metavar="DATA", help="training data file")
    fit.add_argument(
        "--out", required=True, metavar="MODEL_DIR",
        help="directory to save the model to: new, empty, or (with --force) holding a model to replace",
    )
    fit.add_argument("--force", action="store_true", help="replace the model already saved in MODEL_DIR")
    # default None, not "label": a column the user names must exist, the default one need not
    fit.add_argument(
        "--label-column", default=None, metavar="NAME",
        help=f"semi-label column, which must exist when named (default: {DEFAULT_LABEL_COLUMN}, used if present)",
    )
    fit.add_argument(
        "--method", choices=method_names(), default="deepsad", metavar="NAME",
        help=f"detector (default: deepsad): {', '.join(method_names())}",
    )
    net = fit.add_argument_group("network (deep methods and the autoencoder of hybrid-*)")
    net.add_argument(
        "--network",
        choices=("auto", "paper", "mlp", "mnist", "fmnist", "cifar10"),
        default="auto",
        help="auto: deepsad's default for the input shape; paper: the paper's network for it; "
        "mlp: --hidden-sizes/--rep-dim; others: the paper's LeNets",
    )
    net.add_argument("--hidden-sizes", type=int, nargs="+", metavar="N", help="MLP hidden layer sizes (default 32 16)")
    net.add_argument("--rep-dim", type=int, metavar="N", help="representation size")
    deep = fit.add_argument_group("training (deep methods)")
    deep.add_argument("--eta", type=float, help="weight of the labeled terms (deepsad; default 1)")
    deep.add_argument("--eps", type=float, help="Deep SAD epsilon (default 1e-6)")
    deep.add_argument("--objective", choices=("one-class", "soft-boundary"), help="Deep SVDD objective")
    deep.add_argument("--epochs", type=int, help="training epochs (default 150)")
    deep.add_argument("--lr", type=float, help="learning rate (default 1e-4)")
    deep.add_argument("--lr-milestones", type=_milestones, metavar="E[,E]", help="epochs where lr drops 10x (default: 50 for images, none for tables)")
    deep.add_argument("--weight-decay", type=float, help="weight decay (default 1e-6; cae 5e-4)")
    deep.add_argument("--batch-size", type=int, help="mini-batch size (default 200)")
    pretraining = deep.add_mutually_exclusive_group()
    pretraining.add_argument("--pretrain", action="store_true",
                             help="pretrain an autoencoder first (deepsad, deepsvdd; default: images only)")
    pretraining.add_argument("--no-pretrain", action="store_true", help="skip autoencoder pretraining (deepsad, deepsvdd)")
    deep.add_argument("--n-networks", type=int, metavar="K",
                      help="networks in the ensemble (deepsad, deepsvdd; default: 5 for tables, 1 for images)")
    deep.add_argument("--paper", action="store_true",
                      help="the paper's settings (deepsad, deepsvdd): its network, pretraining, one network, lr drop "
                      "after 50 epochs; options given beside it win")
    deep.add_argument("--pretrain-epochs", type=int, help="autoencoder epochs (default 150)")
    deep.add_argument("--pretrain-lr", type=float, help="autoencoder learning rate (default 1e-4)")
    deep.add_argument("--pretrain-lr-milestones", type=_milestones, metavar="E[,E]", help="(default 50)")
    deep.add_argument("--pretrain-weight-decay", type=float, help="autoencoder weight decay (default 5e-4)")
    shallow = fit.add_argument_group("shallow methods (also the shallow part of hybrid-*)")
    shallow.add_argument("--nu", type=float, help="OC-SVM nu, or soft-boundary Deep SVDD nu (default 0.1)")
    shallow.add_argument("--gamma", type=_number_or_word("scale"), help="RBF gamma for ocsvm/ssad (default scale)")
    shallow.add_argument("--kappa", type=float, help="SSAD kappa (default 1)")
    shallow.add_argument("--cp", type=float, help="SSAD C for labeled normals (default 1)")
    shallow.add_argument("--cu", type=float, help="SSAD C for unlabeled samples (default 1)")
    shallow.add_argument("--cn", type=float, help="SSAD C for labeled anomalies (default 1)")
    shallow.add_argument("--n-estimators", type=int, help="Isolation Forest trees (default 100)")
    shallow.add_argument("--max-samples", type=int, help="Isolation Forest subsample size (default 256)")
    shallow.add_argument("--bandwidth", type=_number_or_word("cv"), help="KDE bandwidth or cv (default cv)")
    common = fit.add_argument_group("all methods")
    common.add_argument(
        "--param", type=_key_value, action="append", default=[], metavar="KEY=VALUE",
        help="any other constructor parameter of the method, VALUE as JSON (repeatable)",
    )
    common.add_argument(
        "--no-standardize",
        action="store_true",
        help="do not standardize tabular features with the training statistics (default: standardize)",
    )
    common.add_argument(
        "--contamination", type=_number_or_word("auto"), default="auto",
        help="fraction of training samples above the threshold, or auto (default)",
    )
    common.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (deep methods)")
    common.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    common.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _network_param(args: argparse.Namespace) -> Any:
    from deepsad.models import LeNetSpec, MLPSpec

    if args.network in ("auto", "paper"):
        if args.hidden_sizes or args.rep_dim:
            raise InvalidInputError("--hidden-sizes/--rep-dim need --network mlp (or a LeNet name for --rep-dim)")
        return args.network
    if args.network == "mlp":
        kwargs: dict[str, Any] = {}
        if args.hidden_sizes:
            kwargs["hidden_sizes"] = tuple(args.hidden_sizes)
        if args.rep_dim:
            kwargs["rep_dim"] = args.rep_dim
        return MLPSpec(**kwargs)
    if args.hidden_sizes:
        raise InvalidInputError("--hidden-sizes applies to --network mlp only")
    return LeNetSpec(variant=args.network, rep_dim=args.rep_dim)


def _given_options(args: argparse.Namespace) -> dict[str, tuple[str, Any]]:
    """parameter -> (option as typed, value) for every hyperparameter the user gave."""
    given = {
        param: (f"--{dest.replace('_', '-')}", getattr(args, dest))
        for dest, param in _HYPERPARAMETER_OPTIONS.items()
        if getattr(args, dest) is not None
    }
    if args.paper:
        from deepsad.detectors.recipe import PAPER_SETTINGS

        given = {**{key: ("--paper", value) for key, value in PAPER_SETTINGS.items()}, **given}
    if args.no_pretrain:
        given["pretrain"] = ("--no-pretrain", False)
    if args.pretrain:
        given["pretrain"] = ("--pretrain", True)
    if args.network != "auto" or args.hidden_sizes or args.rep_dim:
        given["network"] = ("--network", _network_param(args))
    for key, value in args.param:
        given[key] = (f"--param {key}", value)
    return given


def detector_params(method: str, args: argparse.Namespace, *, tabular: bool) -> dict[str, Any]:
    """Constructor parameters of ``method`` from the parsed options.

    An option the method does not have is an error naming it; for ``hybrid-*`` the
    options go to the shallow method when it has them and to the autoencoder (a
    :class:`~deepsad.baselines.CAE`) otherwise.
    """
    from deepsad.methods import parameter_names

    given = _given_options(args)
    run_settings = {"random_state": args.seed, "device": args.device, "verbose": not args.no_progress}
    if not method.startswith("hybrid-"):
        valid = set(parameter_names(method))
        _refuse_inapplicable(method, given, valid)
        params = {param: value for param, (_, value) in given.items()}
        if "standardize" in valid and "standardize" not in params:
            if args.no_standardize:
                params["standardize"] = False
            elif _default_of(method, "standardize") != "auto":  # "auto" already standardizes tables only
                params["standardize"] = tabular
        params.update({k: v for k, v in run_settings.items() if k in valid and k not in params})
        params["contamination"] = args.contamination
        return params

    shallow = method.removeprefix("hybrid-")
    shallow_valid, cae_valid = set(parameter_names(shallow)), set(parameter_names("cae"))
    hybrid_own = {"contamination", "random_state", "device", "verbose", "autoencoder"}
    _refuse_inapplicable(method, given, shallow_valid | cae_valid | hybrid_own)
    shallow_params = {p: v for p, (_, v) in given.items() if p in shallow_valid and p not in hybrid_own}
    cae_params = {p: v for p, (_, v) in given.items() if p in cae_valid - shallow_valid and p not in hybrid_own}
    cae_params.setdefault("standardize", tabular and not args.no_standardize)
    if "random_state" in shallow_valid:
        shallow_params.setdefault("random_state", args.seed)
    own = {p: v for p, (_, v) in given.items() if p in hybrid_own}
    return {
        **run_settings,
        **own,
        "shallow_params": shallow_params,
        "cae_params": cae_params,
        "contamination": args.contamination,
    }


def _default_of(method: str, parameter: str) -> Any:
    from deepsad.methods import detector_class

    return inspect.signature(detector_class(method)).parameters[parameter].default


def _refuse_inapplicable(method: str, given: dict[str, tuple[str, Any]], valid: set[str]) -> None:
    wrong = list(dict.fromkeys(option for param, (option, _) in given.items() if param not in valid))
    if wrong:
        raise InvalidInputError(
            f"{', '.join(wrong)} does not apply to --method {method} (its parameters: {', '.join(sorted(valid))})"
        )


def _nearest_existing_directory(path: Path) -> Path:
    """The closest existing ancestor of the not-yet-existing ``path`` (``save`` creates the rest)."""
    ancestor = path.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise InvalidInputError(f"cannot create the model directory {path}: {ancestor} is a file, not a directory")
    return ancestor


def check_model_destination(out: Path, *, force: bool) -> None:
    """Refuse, before any training, a ``--out`` the model cannot or must not be saved to.

    Allowed: a new directory in a writable place, an empty directory, or (``force``) a
    directory holding a deepsad model, which is then replaced. Refused: an existing
    file, a directory with other content (``force`` never mixes a model into foreign
    files), a model without ``force``, and any place where no file can be created.

    Raises
    ------
    InvalidInputError
        Naming the path and what to do instead.
    """
    from deepsad.persistence import CONFIG_FILE

    try:
        if not out.exists():
            check_writable_directory(_nearest_existing_directory(out), f"the model to {out}")
            return
        if not out.is_dir():
            raise InvalidInputError(f"--out {out} is an existing file, not a model directory; choose another path")
        if (out / CONFIG_FILE).is_file():
            if not force:
                raise InvalidInputError(f"{out} already holds a deepsad model; pass --force to replace it")
        elif any(out.iterdir()):
            raise InvalidInputError(
                f"{out} is a non-empty directory without a deepsad model ({CONFIG_FILE}); "
                "choose a new or empty directory"
            )
        check_writable_directory(out, "the model")
    except DeepSADError:
        raise
    except OSError as error:  # e.g. a directory that cannot be listed
        raise InvalidInputError(f"cannot use --out {out}: {error.strerror or error}") from None


def read_training_table(path: str, label_column: str | None) -> Any:
    """Read the training file; ``label_column`` is the one the user named, or None for the default.

    The default column ``label`` is optional (without it every sample is unlabeled), but
    a column the user names must be there: otherwise a misspelt name would train on the
    real label column as a feature, with no labels, and say nothing.

    Raises
    ------
    InvalidInputError
        If the named label column is absent (files without named columns, ``.npy`` and
        ``.mat``, never have one).
    """
    from deepsad.data.tabular import read_table

    table = read_table(path, label_column=DEFAULT_LABEL_COLUMN if label_column is None else label_column)
    if label_column is not None and table.labels is None:
        raise InvalidInputError(_absent_label_column_message(path, label_column, table.feature_names))
    return table


def _absent_label_column_message(path: str, column: str, columns: list[str]) -> str:
    suffix = Path(path).suffix.lower()
    if suffix in (".csv", ".parquet", ".pq"):
        shown = ", ".join(columns[:20]) + (f" and {len(columns) - 20} more" if len(columns) > 20 else "")
        return f"{path} has no label column {column!r} (its columns: {shown})"
    if suffix == ".npz":
        return f"{path} has no label array {column!r}"
    return f"{path} has no named columns, so no label column {column!r}; give labels in a CSV, Parquet or NPZ file"


def _is_zero(value: Any) -> bool:
    # bool is an int: epochs=False is a type error for the estimator to report, not zero epochs
    return not isinstance(value, bool) and isinstance(value, (int, float)) and value == 0


def _pretrains(estimator: Any, input_shape: tuple[int, ...]) -> bool:
    """Whether Deep SAD / Deep SVDD will run any autoencoder pretraining epochs on data of ``input_shape``."""
    from deepsad.detectors.recipe import resolve_pretrain

    pretrain = resolve_pretrain(estimator.pretrain, input_shape, type(estimator).tabular_recipe)
    return pretrain and not _is_zero(estimator.pretrain_epochs)


def refuse_untrained(method: str, estimator: Any, input_shape: tuple[int, ...]) -> None:
    """Refuse a fit that would save a network at its random initial weights.

    Untrained means no gradient step reaches the network that scores: 0 training epochs
    for every deep method, except that Deep SAD / Deep SVDD with 0 epochs after
    pretraining keep the pretrained encoder (trained, but not on their objective: a loud
    warning); for ``hybrid-*`` the autoencoder whose codes the shallow method sees.
    Shallow methods have no epochs.

    Raises
    ------
    InvalidInputError
        Naming the method and the settings that leave it untrained.
    """
    params = estimator.get_params(deep=False)
    if method.startswith("hybrid-"):
        cae_epochs = (params.get("cae_params") or {}).get("epochs", _default_of("cae", "epochs"))
        if params.get("autoencoder") is None and _is_zero(cae_epochs):
            raise InvalidInputError(
                f"refusing to save an untrained {method} model: 0 epochs leave its autoencoder at random "
                "weights, so the shallow method would see random codes; give --epochs > 0"
            )
        return
    if not _is_zero(params.get("epochs")):
        return
    if "pretrain" not in params:
        raise InvalidInputError(
            f"refusing to save an untrained {method} model: 0 training epochs leave its network at random "
            "weights; give --epochs > 0"
        )
    if not _pretrains(estimator, input_shape):
        raise InvalidInputError(
            f"refusing to save an untrained {method} model: 0 training epochs and no autoencoder pretraining "
            "(off for tabular data unless --pretrain; --pretrain-epochs 0 skips it) leave its network at "
            "random weights; give --epochs > 0"
        )
    logger.warning(
        "%s with 0 training epochs: its objective is never trained; the network is the pretrained "
        "autoencoder's encoder as is",
        method,
    )


def run_fit(args: argparse.Namespace) -> int:
    """Train the chosen detector on the data file and save it.

    Everything that can be refused (the destination, the label column, parameters, an
    untrained model) is refused before training, so a mistake never costs a training run.
    """
    from deepsad.data.tabular import named_features
    from deepsad.methods import make_detector, uses_labels

    out = Path(args.out)
    check_model_destination(out, force=args.force)
    table = read_training_table(args.data, args.label_column)
    X, labels = table.X, table.labels
    estimator = make_detector(args.method, detector_params(args.method, args, tabular=X.ndim == 2))
    refuse_untrained(args.method, estimator, tuple(X.shape[1:]))
    if labels is not None and (labels != 0).any() and not uses_labels(args.method):
        logger.warning("%s does not use labels: the labels in %s count as unlabeled", args.method, args.data)
    started = time.perf_counter()
    # with the file's column names, saved with the model: score / evaluate match columns by name
    estimator.fit(named_features(table), labels)
    elapsed = time.perf_counter() - started
    try:
        estimator.save(out)
    except DeepSADError:
        raise
    except OSError as error:  # the place changed during training (checked writable before it)
        raise InvalidInputError(f"cannot save the model to {out}: {error.strerror or error}") from None
    n_flagged = int(np.sum(estimator.anomaly_score(named_features(table)) > estimator.threshold_))
    print(
        f"trained {type(estimator).__name__} ({args.method}) on {X.shape[0]} samples in {elapsed:.1f} s; "
        f"{n_flagged} training samples above the threshold {estimator.threshold_:.4g}; saved to {args.out}"
    )
    return 0
