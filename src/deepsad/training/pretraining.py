"""Autoencoder pretraining: the one way deepsad trains an autoencoder on reconstruction.

Deep SAD and Deep SVDD pretrain one (or, for an ensemble or a stack, K) autoencoders
whose encoder is phi; the CAE baseline is such an autoencoder trained on its own; the
experiment runner pretrains them ahead of the fits that share them. All go through
:func:`pretrain_autoencoders`, so the loss, the batching and the stream of random
numbers are the same everywhere. The caller builds and initialises the autoencoders
(from its own seed stream) and keeps them; this module only trains them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from deepsad.errors import InvalidInputError
from deepsad.training.losses import reconstruction_loss
from deepsad.training.stacked import train_stacked
from deepsad.training.trainer import OptimizerConfig, train


def autoencoder_output_loss(
    reconstruction: torch.Tensor, tensors: Sequence[torch.Tensor], indices: torch.Tensor
) -> torch.Tensor:
    """Pretraining loss on a batch: mean squared error of ``reconstruction`` against ``tensors[0][indices]``."""
    return reconstruction_loss(reconstruction, tensors[0][indices])


def pretrain_autoencoders(
    autoencoders: Sequence[nn.Module],
    X: torch.Tensor | Sequence[torch.Tensor],
    config: OptimizerConfig,
    *,
    generators: Sequence[torch.Generator],
    device: torch.device,
    strategy: str | None = None,
    progress: bool = False,
    description: str = "pretraining autoencoder",
) -> list[list[float]]:
    """Train K >= 1 autoencoders to reconstruct their data (mean squared error).

    Parameters
    ----------
    autoencoders : sequence of torch.nn.Module
        Initialised autoencoders (e.g. :class:`deepsad.models.Autoencoder`) on
        ``device``; trained in place. With a ``strategy`` they must share one
        architecture.
    X : torch.Tensor or sequence of torch.Tensor
        The training samples on ``device``: one tensor for all autoencoders, or one per
        autoencoder (all of one shape when trained together).
    config : OptimizerConfig
        Optimiser settings, shared by all autoencoders.
    generators : sequence of torch.Generator
        One CPU generator per autoencoder for its shuffling. An autoencoder trained
        with the generator that initialised it continues that seed stream.
    device : torch.device
        Device of the data and the autoencoders.
    strategy : {None, "auto", "grouped", "vmap"}, default=None
        ``None``: one after another, each by :func:`deepsad.training.train` (any
        precision; a progress bar with ``progress``). Otherwise all K together by
        :func:`deepsad.training.stacked.train_stacked` with this strategy (float32).
    progress : bool, default=False
        Show a progress bar (one-after-another training only).
    description : str, default="pretraining autoencoder"
        Label of the progress bar, log lines and errors.

    Returns
    -------
    list of list of float
        Per autoencoder, the mean reconstruction loss of each epoch.

    Raises
    ------
    InvalidInputError
        If the numbers of autoencoders, datasets and generators disagree (and as
        :func:`~deepsad.training.stacked.train_stacked` for a ``strategy``).
    TrainingError
        If a loss becomes NaN or infinite.

    Examples
    --------
    >>> import torch
    >>> from deepsad.models import MLPSpec, Autoencoder, build_encoder, build_decoder
    >>> from deepsad.training import OptimizerConfig, make_generator, pretrain_autoencoders
    >>> spec = MLPSpec(hidden_sizes=(8,), rep_dim=4)
    >>> autoencoder = Autoencoder(build_encoder(spec, (6,)), build_decoder(spec, (6,), "identity"))
    >>> config = OptimizerConfig(epochs=2, lr=1e-3, milestones=(), weight_decay=0.0, batch_size=32)
    >>> histories = pretrain_autoencoders([autoencoder], torch.randn(100, 6), config,
    ...                                   generators=[make_generator(0)], device=torch.device("cpu"))
    >>> len(histories[0])
    2
    """
    datasets = [X] * len(autoencoders) if isinstance(X, torch.Tensor) else list(X)
    if not (len(datasets) == len(generators) == len(autoencoders)) or not autoencoders:
        raise InvalidInputError(
            f"got {len(autoencoders)} autoencoders, {len(datasets)} datasets and {len(generators)} generators; "
            "pretraining needs at least one autoencoder and one of each per autoencoder"
        )
    if strategy is not None:
        return train_stacked(
            autoencoders, autoencoder_output_loss, [(data,) for data in datasets], datasets[0].shape[0], config,
            generators=generators, device=device, description=description, strategy=strategy,
        )
    return [
        train(autoencoder, _reconstruction_objective(autoencoder, data), data.shape[0], config,
              generator=generator, device=device, progress=progress, description=description)
        for autoencoder, data, generator in zip(autoencoders, datasets, generators)
    ]


def _reconstruction_objective(autoencoder: nn.Module, X: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    def batch_loss(indices: torch.Tensor) -> torch.Tensor:
        return autoencoder_output_loss(autoencoder(X[indices]), (X,), indices)

    return batch_loss
