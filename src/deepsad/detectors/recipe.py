"""deepsad's default recipe per kind of data, and the paper's settings as one parameter set.

Deep SAD and Deep SVDD accept ``"auto"`` for the settings in which good defaults depend on
the data: images keep the paper's recipe (autoencoder pretraining, one LeNet, the
learning rate dropping tenfold after 50 epochs), while tabular data train an ensemble of
small MLPs from scratch at a constant learning rate. The tabular choice was made by
average rank over the 37-dataset development suite, in both the clean and the polluted
scenario (docs/defaults_study.md); the paper's settings remain one call away
(:data:`PAPER_SETTINGS`, ``DeepSAD.paper()``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from deepsad.errors import InvalidInputError
from deepsad.validation import check_milestones, check_positive_int

#: The recipe settings ``"auto"`` resolves, per kind of data.
TABULAR_RECIPE: dict[str, Any] = {"n_networks": 5, "pretrain": False, "lr_milestones": ()}
IMAGE_RECIPE: dict[str, Any] = {"n_networks": 1, "pretrain": True, "lr_milestones": (50,)}

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


def _recipe(input_shape: Sequence[int]) -> dict[str, Any]:
    return IMAGE_RECIPE if is_image_shape(input_shape) else TABULAR_RECIPE


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


def resolve_n_networks(value: Any, input_shape: Sequence[int]) -> int:
    """``n_networks`` for data of ``input_shape`` (``"auto"``: 5 for vectors, 1 for images)."""
    check_n_networks(value)
    return int(_recipe(input_shape)["n_networks"]) if value == "auto" else int(value)


def resolve_pretrain(value: Any, input_shape: Sequence[int]) -> bool:
    """``pretrain`` for data of ``input_shape`` (``"auto"``: images only)."""
    check_auto_bool("pretrain", value)
    return bool(_recipe(input_shape)["pretrain"]) if value == "auto" else bool(value)


def resolve_milestones(name: str, value: Any, input_shape: Sequence[int]) -> tuple[int, ...]:
    """Learning-rate milestones for data of ``input_shape`` (``"auto"``: (50,) for images, none for vectors)."""
    check_auto_milestones(name, value)
    if isinstance(value, str):
        return tuple(_recipe(input_shape)["lr_milestones"])
    return check_milestones(name, value)


def resolve_standardize(value: Any, input_shape: Sequence[int]) -> bool:
    """``standardize`` for data of ``input_shape`` (``"auto"``: vectors only)."""
    check_auto_bool("standardize", value)
    return not is_image_shape(input_shape) if value == "auto" else bool(value)
