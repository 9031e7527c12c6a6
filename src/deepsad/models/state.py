"""Network weights read back from the flat arrays of a saved model's weights file."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch


def state_dict_with_prefix(arrays: Mapping[str, np.ndarray], prefix: str) -> dict[str, torch.Tensor]:
    """The state dict of one network among several saved in one flat mapping of arrays.

    A weights file holds every network of a model side by side, each under its own key
    prefix (``"network."``, ``"autoencoder."``, ...).

    Parameters
    ----------
    arrays : mapping of str to numpy.ndarray
        All arrays of the weights file.
    prefix : str
        The network's key prefix, dot included.

    Returns
    -------
    dict of str to torch.Tensor
        The arrays whose key starts with ``prefix``, with the prefix stripped, as tensors
        for ``nn.Module.load_state_dict``. Each is copied: the tensors do not share memory
        with ``arrays`` (whose buffers may be read-only).
    """
    return {k[len(prefix) :]: torch.from_numpy(np.array(v)) for k, v in arrays.items() if k.startswith(prefix)}
