"""deepsad's default recipe per kind of data, and the paper's settings as one parameter set.

Deep SAD and Deep SVDD accept ``"auto"`` for the settings in which good defaults depend on
the data: images keep the paper's recipe (autoencoder pretraining, one LeNet, the
learning rate dropping tenfold after 50 epochs), while tabular data train an ensemble of
small MLPs from scratch at a constant learning rate -- with BatchNorm for the
unsupervised Deep SVDD, without it for Deep SAD. The tabular choices were made by
average rank over the 37-dataset development suite, in both the clean and the polluted
scenario (docs/defaults_study.md); the paper's settings remain one call away
(:data:`PAPER_SETTINGS`, ``DeepSAD.paper()``).

Each detector class names its tabular recipe (``tabular_recipe``); the ``resolve_*``
functions take it as ``tabular`` and fall back to Deep SAD's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from deepsad.errors import InvalidInputError
from deepsad.validation import check_milestones, check_positive_int

#: The recipe settings ``"auto"`` resolves, per kind of data. ``batch_norm`` is that of
#: the MLP ``network="auto"`` builds for vectors (images always get the paper's LeNet).
TABULAR_RECIPE: Mapping[str, Any] = MappingProxyType(
    {"n_networks": 5, "pretrain": False, "lr_milestones": (), "batch_norm": False}
)
#: Deep SVDD learns from unlabeled data alone; without BatchNorm its networks drift towards
#: the trivial, constant solution on many tabular sets (docs/defaults_study.md).
ONE_CLASS_TABULAR_RECIPE: Mapping[str, Any] = MappingProxyType({**TABULAR_RECIPE, "batch_norm": True})
IMAGE_RECIPE: Mapping[str, Any] = MappingProxyType(
    {"n_networks": 1, "pretrain": True, "lr_milestones": (50,), "batch_norm": True}
)

#: The paper's settings (Appendices D and E) for Deep SAD and Deep SVDD, as constructor
#: parameters: its networks, one network per model, autoencoder pretraining, Adam at
#: 1e-4 for 50 epochs then 1e-5 for 100 more, batch 200. ``standardize="auto"``
#: standardizes tabular data as the paper does for the ODDS benchmarks.
PAPER_SETTINGS: dict[str, Any] = {
    "network": "paper",
    "n_networks": 1,
    "epochs": 150,
    "lr": 1e-4,
    "lr_milestones": (50,),
    "weight_decay": 1e-6,
    "batch_size": 200,
    "pretrain": True,
    "pretrain_epochs": 150,
    "pretrain_lr": 1e-4,
    "pretrain_lr_milestones": (50,),
    "pretrain_weight_decay": 5e-4,
    "standardize": "auto",
}


def is_image_shape(input_shape: Sequence[int]) -> bool:
    """Whether samples of ``input_shape`` are images ``(c, h, w)`` rather than vectors."""
    return len(tuple(input_shape)) == 3


def recipe_for(input_shape: Sequence[int], tabular: Mapping[str, Any] = TABULAR_RECIPE) -> Mapping[str, Any]:
    """The recipe ``"auto"`` resolves for samples of ``input_shape``: ``tabular`` for vectors."""
    return IMAGE_RECIPE if is_image_shape(input_shape) else tabular


def check_n_networks(value: Any) -> None:
    """Raise unless ``value`` is ``"auto"`` or a positive integer."""
    if isinstance(value, str) and value == "auto":
        return
    check_positive_int("n_networks", value)


def check_auto_bool(name: str, value: Any) -> None:
    """Raise unless ``value`` is ``"auto"``, True or False."""
    if not (isinstance(value, bool) or (isinstance(value, str) and value == "auto")):
        raise InvalidInputError(f"{name} must be True, False or 'auto', got {value!r}")


def check_auto_milestones(name: str, value: Any) -> None:
    """Raise unless ``value`` is ``"auto"`` or valid learning-rate milestones."""
    if isinstance(value, str):
        if value != "auto":
            raise InvalidInputError(f"{name} must be 'auto' or a sequence of epoch numbers, got {value!r}")
        return
    check_milestones(name, value)


def resolve_n_networks(value: Any, input_shape: Sequence[int], tabular: Mapping[str, Any] = TABULAR_RECIPE) -> int:
    """``n_networks`` for data of ``input_shape`` (``"auto"``: 5 for vectors, 1 for images)."""
    check_n_networks(value)
    return int(recipe_for(input_shape, tabular)["n_networks"]) if value == "auto" else int(value)


def resolve_pretrain(value: Any, input_shape: Sequence[int], tabular: Mapping[str, Any] = TABULAR_RECIPE) -> bool:
    """``pretrain`` for data of ``input_shape`` (``"auto"``: images only)."""
    check_auto_bool("pretrain", value)
    return bool(recipe_for(input_shape, tabular)["pretrain"]) if value == "auto" else bool(value)


def resolve_milestones(
    name: str, value: Any, input_shape: Sequence[int], tabular: Mapping[str, Any] = TABULAR_RECIPE
) -> tuple[int, ...]:
    """Learning-rate milestones for data of ``input_shape`` (``"auto"``: (50,) for images, none for vectors)."""
    check_auto_milestones(name, value)
    if isinstance(value, str):
        return tuple(recipe_for(input_shape, tabular)["lr_milestones"])
    return check_milestones(name, value)


def resolve_standardize(value: Any, input_shape: Sequence[int]) -> bool:
    """``standardize`` for data of ``input_shape`` (``"auto"``: vectors only)."""
    check_auto_bool("standardize", value)
    return not is_image_shape(input_shape) if value == "auto" else bool(value)
