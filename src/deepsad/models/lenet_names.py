"""LeNet weight names of the fused-layer numbering (model formats 2 to 4), mapped to today's names.

Model formats 2 to 4 saved the LeNets with the fused layers in their own slots:
an encoder stage was ``features.{2t, 2t + 1}`` = conv, BatchNorm-leaky-ReLU-pool and a
decoder stage ``deconvs.{3t .. 3t + 2}`` = upsampling transposed conv, BatchNorm,
leaky ReLU. The canonical layout (formats 1 and 5 on) has four layers per stage:
``features.{4t .. 4t + 3}`` = conv, BatchNorm, leaky ReLU, pool and
``deconvs.{4t .. 4t + 3}`` = upsample, transposed conv, BatchNorm, leaky ReLU.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TypeVar

Value = TypeVar("Value")

# a LeNet layer's tensor, anywhere in a model's flat weight names (``network.features.2.weight``)
_LAYER_KEY = re.compile(r"^(?P<head>(?:.*\.)?)(?P<part>features|deconvs)\.(?P<index>\d+)\.(?P<rest>[^.]+)$")

#: per layer sequence: (fused layers per stage, {fused position: canonical position})
_STAGES = {"features": (2, {0: 0, 1: 1}), "deconvs": (3, {0: 1, 1: 2})}


def canonical_lenet_names(state: Mapping[str, Value]) -> dict[str, Value]:
    """``state`` with the fused-numbering LeNet names of formats 2 to 4 renamed to the canonical ones.

    Parameters
    ----------
    state : mapping of str to array or tensor
        A LeNet state dict, or a model's flat weights holding LeNets under prefixes
        (``network.``, ``autoencoder.encoder.``, ...), in the fused numbering. Only
        keys ``[<prefix>.]features.<i>.<name>`` and ``[<prefix>.]deconvs.<i>.<name>``
        are renamed; the caller knows that the weights are a LeNet's.

    Returns
    -------
    dict
        A new mapping with the same values; keys the fused layout never had at that
        position (a parameter-free slot) are kept as they are, for ``load_state_dict``
        to report.

    Raises
    ------
    ValueError
        If two keys would get one name (no fused-numbering state dict has such keys).
    """
    renamed: dict[str, Value] = {}
    for key, value in state.items():
        name = _canonical_name(key)
        if name in renamed:
            raise ValueError(f"weight names {key!r} and another both map to {name!r}: not a fused-numbering LeNet")
        renamed[name] = value
    return renamed


def _canonical_name(key: str) -> str:
    match = _LAYER_KEY.match(key)
    if match is None:
        return key
    per_stage, positions = _STAGES[match["part"]]
    stage, position = divmod(int(match["index"]), per_stage)
    if position not in positions:
        return key
    return f"{match['head']}{match['part']}.{4 * stage + positions[position]}.{match['rest']}"
