"""Network specs: small frozen dataclasses that say which network to build.

A spec holds architecture choices only; the input shape comes from the data at ``fit``
time (never from a dataset name), and :func:`deepsad.models.build_encoder` checks that
the two fit together. Specs round-trip through plain JSON dicts so that saved models
and experiment configs can name their network.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Union

from deepsad.errors import InvalidInputError
from deepsad.models._shapes import SUPPORTED_SHAPES_TEXT, as_shape, layout_hint

#: Input dimension above which the default MLP is the paper's wider arrhythmia net.
WIDE_MLP_MIN_FEATURES = 101

#: The paper's representation size per LeNet variant (Appendix D; F-MNIST as in DESIGN §3).
LENET_DEFAULT_REP_DIM = {"mnist": 32, "fmnist": 64, "cifar10": 128}


def _check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not hasattr(value, "__index__") or int(value) < 1:
        raise InvalidInputError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _check_nonneg_float(name: str, value: Any, *, strictly_positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
        raise InvalidInputError(f"{name} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number < 0 or (strictly_positive and number == 0):
        bound = "> 0" if strictly_positive else ">= 0"
        raise InvalidInputError(f"{name} must be a finite number {bound}, got {value!r}")
    return number


@dataclass(frozen=True)
class MLPSpec:
    """A fully connected encoder for tabular data of shape ``(d,)``.

    Each hidden layer is Linear (no bias) -> BatchNorm1d (no affine) -> leaky ReLU; a
    final bias-free Linear maps to the representation. The decoder mirrors it.

    Parameters
    ----------
    hidden_sizes : tuple of int, default=(32, 16)
        Widths of the hidden layers, input side first. May be empty (a linear map).
    rep_dim : int, default=8
        Size of the representation phi(x).
    negative_slope : float, default=0.1
        Leaky ReLU slope (the paper: 0.1; the reference code used PyTorch's 0.01).
    bn_eps : float, default=1e-4
        BatchNorm epsilon.
    batch_norm : bool, default=True
        BatchNorm (no affine) after each hidden Linear, as in the paper. Without it a
        hidden layer is Linear (no bias) -> leaky ReLU.
    init_gain : float, default=1.0
        Gain of the Glorot-uniform initialisation of every weight: 1 is the paper's
        Glorot init; about 0.5 matches the scale of PyTorch's default Linear init,
        which trains better from scratch on tabular data (docs/defaults_study.md).

    Examples
    --------
    The paper's arrhythmia network (128-64-32)::

        MLPSpec(hidden_sizes=(128, 64), rep_dim=32)
    """

    hidden_sizes: tuple[int, ...] = (32, 16)
    rep_dim: int = 8
    negative_slope: float = 0.1
    bn_eps: float = 1e-4
    batch_norm: bool = True
    init_gain: float = 1.0

    def __post_init__(self) -> None:
        # Normalise (list -> tuple, numpy ints -> int) so that specs from JSON compare
        # equal to, and hash like, specs written in code.
        if isinstance(self.hidden_sizes, (str, bytes)) or not isinstance(self.hidden_sizes, Sequence):
            raise InvalidInputError(f"hidden_sizes must be a tuple of positive integers, got {self.hidden_sizes!r}")
        hidden = tuple(_check_positive_int("hidden_sizes entries", h) for h in self.hidden_sizes)
        object.__setattr__(self, "hidden_sizes", hidden)
        object.__setattr__(self, "rep_dim", _check_positive_int("rep_dim", self.rep_dim))
        object.__setattr__(self, "negative_slope", _check_nonneg_float("negative_slope", self.negative_slope))
        object.__setattr__(self, "bn_eps", _check_nonneg_float("bn_eps", self.bn_eps, strictly_positive=True))
        if not isinstance(self.batch_norm, bool):
            raise InvalidInputError(f"batch_norm must be True or False, got {self.batch_norm!r}")
        object.__setattr__(self, "init_gain", _check_nonneg_float("init_gain", self.init_gain, strictly_positive=True))


@dataclass(frozen=True)
class LeNetSpec:
    """A LeNet-type convolutional encoder as in the paper's Appendix D.

    Parameters
    ----------
    variant : {"mnist", "fmnist", "cifar10"}
        ``"mnist"`` and ``"fmnist"`` take ``(1, 28, 28)`` images, ``"cifar10"`` takes
        ``(3, 32, 32)``. The variant names an architecture, not a dataset: any data of
        the right shape may use it.
    rep_dim : int or None, default=None
        Size of phi(x); ``None`` means the paper's size (mnist 32, fmnist 64, cifar10 128).
    negative_slope : float, default=0.1
        Leaky ReLU slope.
    bn_eps : float, default=1e-4
        BatchNorm epsilon.
    """

    variant: str
    rep_dim: int | None = None
    negative_slope: float = 0.1
    bn_eps: float = 1e-4

    def __post_init__(self) -> None:
        if self.variant not in LENET_DEFAULT_REP_DIM:
            raise InvalidInputError(
                f"LeNetSpec variant must be one of {sorted(LENET_DEFAULT_REP_DIM)}, got {self.variant!r}"
            )
        if self.rep_dim is not None:
            object.__setattr__(self, "rep_dim", _check_positive_int("rep_dim", self.rep_dim))
        object.__setattr__(self, "negative_slope", _check_nonneg_float("negative_slope", self.negative_slope))
        object.__setattr__(self, "bn_eps", _check_nonneg_float("bn_eps", self.bn_eps, strictly_positive=True))

    @property
    def resolved_rep_dim(self) -> int:
        """``rep_dim``, or the paper's size for this variant when it is ``None``."""
        return self.rep_dim if self.rep_dim is not None else LENET_DEFAULT_REP_DIM[self.variant]


#: Any network spec deepsad can build.
NetworkSpec = Union[MLPSpec, LeNetSpec]

#: Spec fields added after the first model format. :func:`spec_to_dict` writes them only
#: when they differ from their defaults, so specs written before they existed keep their
#: dict form -- which saved models and experiment hashes contain.
_LATER_FIELDS: dict[str, Any] = {"batch_norm": True, "init_gain": 1.0}

#: The tabular MLP of deepsad's defaults (``network="auto"``): the paper's widths, by
#: default no BatchNorm (Deep SVDD's recipe adds it), and Glorot weights at this gain
#: (chosen on the development suite, docs/defaults_study.md).
TABULAR_BATCH_NORM = False
TABULAR_INIT_GAIN = 0.5

# The "type" tag of each spec in its dict form; stable, since saved models contain it.
_TYPE_TAGS: dict[str, type] = {"mlp": MLPSpec, "lenet": LeNetSpec}
_TAG_OF: dict[type, str] = {cls: tag for tag, cls in _TYPE_TAGS.items()}


def default_spec(input_shape: tuple[int, ...]) -> NetworkSpec:
    """The paper's network for data whose samples have shape ``input_shape``.

    Parameters
    ----------
    input_shape : tuple of int
        Shape of one sample: ``(d,)`` or ``(c, h, w)``.

    Returns
    -------
    MLPSpec or LeNetSpec
        ``(1, 28, 28)`` -> ``LeNetSpec("mnist")``; ``(3, 32, 32)`` -> ``LeNetSpec("cifar10")``;
        ``(d,)`` -> the arrhythmia MLP 128-64-32 when ``d > 100``, else 32-16-8.

    Raises
    ------
    InvalidInputError
        For any other shape; the message lists the supported shapes and flags
        channel-last images.
    """
    shape = as_shape(input_shape)
    if len(shape) == 1:
        if shape[0] >= WIDE_MLP_MIN_FEATURES:
            return MLPSpec(hidden_sizes=(128, 64), rep_dim=32)
        return MLPSpec(hidden_sizes=(32, 16), rep_dim=8)
    if shape == (1, 28, 28):
        # F-MNIST has the same shape; the smaller MNIST net is the neutral default
        return LeNetSpec("mnist")
    if shape == (3, 32, 32):
        return LeNetSpec("cifar10")
    raise InvalidInputError(
        f"no default network for samples of shape {shape}; defaults exist for {SUPPORTED_SHAPES_TEXT}."
        f"{layout_hint(shape)} For other data pass network=MLPSpec(...) / LeNetSpec(...) or your own "
        "torch.nn.Module encoder."
    )


def auto_spec(input_shape: tuple[int, ...], *, batch_norm: bool = TABULAR_BATCH_NORM) -> NetworkSpec:
    """deepsad's default network for samples of shape ``input_shape`` (``network="auto"``).

    Images get the paper's LeNet (:func:`default_spec`). Vectors get the paper's MLP
    widths with Glorot weights at gain :data:`TABULAR_INIT_GAIN`, with BatchNorm only
    when ``batch_norm`` (Deep SAD's default has none, Deep SVDD's has it): trained from
    scratch, these networks rank better across the tabular development suite than the
    paper's (docs/defaults_study.md).

    Raises
    ------
    InvalidInputError
        For shapes :func:`default_spec` does not know.
    """
    spec = default_spec(input_shape)
    if isinstance(spec, MLPSpec):
        return dataclasses.replace(spec, batch_norm=bool(batch_norm), init_gain=TABULAR_INIT_GAIN)
    return spec


def spec_to_dict(spec: NetworkSpec) -> dict[str, Any]:
    """A JSON-serialisable dict of ``spec`` with a ``"type"`` key (``"mlp"`` or ``"lenet"``).

    Tuples become lists; :func:`spec_from_dict` turns the dict back into an equal spec.
    """
    tag = _TAG_OF.get(type(spec))
    if tag is None:
        raise InvalidInputError(f"expected an MLPSpec or LeNetSpec, got {spec!r}")
    data: dict[str, Any] = {"type": tag}
    for field in dataclasses.fields(spec):
        value = getattr(spec, field.name)
        if field.name in _LATER_FIELDS and value == _LATER_FIELDS[field.name]:
            continue
        data[field.name] = list(value) if isinstance(value, tuple) else value
    return data


def spec_from_dict(data: Mapping[str, Any]) -> NetworkSpec:
    """The spec described by ``data`` (the inverse of :func:`spec_to_dict`).

    Raises
    ------
    InvalidInputError
        If ``data`` is not a mapping, its ``"type"`` is missing or unknown, it has keys
        the spec does not know, it lacks a required key, or a value is invalid.
    """
    if not isinstance(data, Mapping):
        raise InvalidInputError(f"a network spec dict must be a mapping, got {type(data).__name__}")
    tag = data.get("type")
    cls = _TYPE_TAGS.get(tag) if isinstance(tag, str) else None
    if cls is None:
        raise InvalidInputError(
            f"network spec dict needs a 'type' key, one of {sorted(_TYPE_TAGS)}; got {tag!r}"
        )
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {k: v for k, v in data.items() if k != "type"}
    unknown = sorted(set(map(str, kwargs)) - set(fields))
    if unknown:
        raise InvalidInputError(
            f"unknown key(s) {unknown} in {tag!r} network spec; allowed: {sorted(fields)} and 'type'"
        )
    missing = sorted(
        name
        for name, f in fields.items()
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING and name not in kwargs
    )
    if missing:
        raise InvalidInputError(f"{tag!r} network spec is missing required key(s) {missing}")
    return cls(**kwargs)


def as_network_param(network: Any) -> Any:
    """An estimator's ``network`` parameter with a spec given as a dict made a spec object.

    Parameters
    ----------
    network : Any
        The parameter as set: a spec dict (as read back from JSON or a config), a spec,
        or anything else the estimator accepts (``"auto"``, an ``nn.Module``, ...).

    Returns
    -------
    Any
        :func:`spec_from_dict` of a dict; any other value unchanged.
    """
    if isinstance(network, dict):
        return spec_from_dict(network)
    return network
