"""One generic mini-batch trainer over in-memory tensors.

The data live as tensors on the device; a batch is a slice of an index permutation,
so there is no per-sample Dataset/DataLoader work. The caller supplies a closure that
maps a batch of indices to a scalar loss, which keeps the trainer free of any
method-specific logic (and of metrics). One loop (:func:`train_models`) trains K >= 1
models in step; :func:`train` is its front-end for one module.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from deepsad.errors import TrainingError
from deepsad.training.device import training_autocast

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class OptimizerConfig:
    """Adam with a step learning-rate schedule (the paper's two-phase schedule by default).

    Attributes
    ----------
    epochs : int
        Passes over the training data.
    lr : float
        Initial learning rate.
    milestones : tuple of int
        Epochs after which the learning rate is multiplied by ``lr_decay``
        (paper: 1e-4 for 50 epochs, then 1e-5).
    weight_decay : float
        L2 penalty added by Adam (the paper's lambda).
    batch_size : int
        Mini-batch size.
    lr_decay : float
        Factor applied at each milestone.
    precision : {"float32", "bfloat16"}
        Arithmetic of the forward pass and loss (see
        :func:`deepsad.training.device.training_autocast`).
    """

    epochs: int
    lr: float
    milestones: tuple[int, ...]
    weight_decay: float
    batch_size: int
    lr_decay: float = 0.1
    precision: str = "float32"


def batch_slices(n_samples: int, batch_size: int) -> list[tuple[int, int]]:
    """Start/stop pairs covering ``range(n_samples)`` in batches of ``batch_size``.

    A trailing batch of a single sample is merged into the previous one: BatchNorm
    cannot normalise one sample in training mode, and dropping it would silently
    ignore data.
    """
    bounds = [(start, min(start + batch_size, n_samples)) for start in range(0, n_samples, batch_size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        last_start = bounds[-2][0]
        bounds = bounds[:-2] + [(last_start, n_samples)]
    return bounds


#: Devices with torch's fused Adam kernel (one kernel per step for all parameters).
FUSED_ADAM_DEVICES = ("cpu", "cuda")


def make_adam(params: Iterable[torch.Tensor], config: OptimizerConfig, device: torch.device) -> torch.optim.Adam:
    """Adam with ``config``'s learning rate and weight decay; torch's fused kernel where it exists.

    Fused Adam is the same update computed in one kernel per step instead of several per
    parameter; it matters for the small MLPs, whose steps are dominated by per-op overhead
    (figures: docs/performance.md, "Where the speed layer's numbers come from").
    """
    fused = {"fused": True} if device.type in FUSED_ADAM_DEVICES else {}
    return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay, **fused)


def train(
    module: nn.Module,
    batch_loss: Callable[[torch.Tensor], torch.Tensor],
    n_samples: int,
    config: OptimizerConfig,
    *,
    generator: torch.Generator,
    device: torch.device,
    progress: bool = False,
    description: str = "training",
) -> list[float]:
    """Train ``module`` by minimising ``batch_loss`` over shuffled mini-batches.

    Parameters
    ----------
    module : torch.nn.Module
        Holds every trainable parameter; put in training mode here.
    batch_loss : callable
        Maps a 1-D ``int64`` tensor of sample indices (on ``device``) to a scalar loss.
    n_samples : int
        Number of training samples; indices range over ``0 .. n_samples - 1``.
    config : OptimizerConfig
        Optimiser settings.
    generator : torch.Generator
        CPU generator for the shuffling, so runs are reproducible.
    device : torch.device
        Device of the data and module.
    progress : bool
        Show a tqdm progress bar over epochs.
    description : str
        Label of the progress bar and log lines.

    Returns
    -------
    list of float
        Mean training loss of each epoch.

    Raises
    ------
    TrainingError
        If the loss becomes NaN or infinite.
    """
    if config.epochs == 0:
        return []
    module.train()

    def losses(orders: torch.Tensor) -> torch.Tensor:
        return batch_loss(orders[0]).reshape(1)  # orders: (1, b) -> (1,)

    (history,) = train_models(
        module.parameters(), losses, n_samples, config, generators=[generator], device=device,
        progress=progress, description=description,
    )
    return history


def train_models(
    params: Iterable[torch.Tensor],
    losses: Callable[[torch.Tensor], torch.Tensor],
    n_samples: int,
    config: OptimizerConfig,
    *,
    generators: Sequence[torch.Generator],
    device: torch.device,
    progress: bool = False,
    description: str = "training",
    model_numbers: Sequence[int] | None = None,
) -> list[list[float]]:
    """The training loop of K >= 1 models that take their mini-batches in step.

    Each epoch, model k shuffles its samples with its own generator; a step takes the
    same slice of every model's permutation, and one Adam step minimises the sum of the
    K losses. Models whose parameters are disjoint therefore each receive exactly their
    own gradient, so the loop serves one plain model (K = 1, :func:`train`) and K models
    trained as one (:func:`deepsad.training.stacked.train_stacked`) alike.

    Parameters
    ----------
    params : iterable of torch.Tensor
        Every trainable parameter of the K models.
    losses : callable
        Maps a ``(K, b)`` ``int64`` tensor of sample indices on ``device`` (row k: model
        k's batch) to the ``(K,)`` mean batch losses. Runs under the autocast of
        ``config.precision``.
    n_samples : int
        Training samples per model; indices range over ``0 .. n_samples - 1``.
    config : OptimizerConfig
        Optimiser settings, shared by all models.
    generators : sequence of torch.Generator
        One CPU generator per model for its shuffling, so runs are reproducible.
    device : torch.device
        Device of the data and parameters.
    progress : bool, default=False
        Show a tqdm progress bar over epochs.
    description : str, default="training"
        Label of the progress bar, log lines and errors.
    model_numbers : sequence of int, optional
        How messages name the K models (e.g. their places in a larger stack); ``None``
        for a single model, which needs no name.

    Returns
    -------
    list of list of float
        ``histories[k][e]``: model k's mean loss over epoch e (float64 quotient).

    Raises
    ------
    TrainingError
        If any model's epoch loss is NaN or infinite (naming it by ``model_numbers``).
    """
    n_models = len(generators)
    histories: list[list[float]] = [[] for _ in range(n_models)]
    if config.epochs == 0:
        return histories
    optimizer = make_adam(params, config, device)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(
        optimizer, milestones=list(config.milestones), gamma=config.lr_decay
    )
    bounds = batch_slices(n_samples, config.batch_size)
    autocast = training_autocast(config.precision, device)
    epochs: Iterable[int] = range(config.epochs)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(epochs, desc=description, unit="epoch", leave=False)
        epochs = bar
    for epoch in epochs:
        # model k draws the permutation a plain run of it alone would draw
        orders = torch.stack([torch.randperm(n_samples, generator=g) for g in generators]).to(device)  # (K, n)
        # summed on the device; one host sync per epoch instead of one per batch
        totals = torch.zeros(n_models, device=device)
        for start, stop in bounds:
            optimizer.zero_grad(set_to_none=True)
            with autocast:
                batch_losses = losses(orders[:, start:stop])  # (K,)
            batch_losses.sum().backward()
            optimizer.step()
            totals += batch_losses.detach() * (stop - start)
        scheduler.step()
        epoch_losses = [total / n_samples for total in totals.tolist()]
        _check_finite(epoch_losses, epoch, description, model_numbers)
        for history, value in zip(histories, epoch_losses):
            history.append(value)
        if bar is not None:
            bar.set_postfix(loss=f"{epoch_losses[0]:.5g}")
        if model_numbers is None:
            logger.debug("%s epoch %d/%d loss %.6g", description, epoch + 1, config.epochs, epoch_losses[0])
        else:
            logger.debug("%s epoch %d/%d losses %s", description, epoch + 1, config.epochs, epoch_losses)
    return histories


def _check_finite(epoch_losses: Sequence[float], epoch: int, description: str,
                  model_numbers: Sequence[int] | None) -> None:
    if model_numbers is None:
        if not math.isfinite(epoch_losses[0]):
            raise TrainingError(
                f"{description}: the loss became {epoch_losses[0]} in epoch {epoch + 1}; "
                "lower the learning rate or check the data scaling"
            )
        return
    bad = [number for number, value in zip(model_numbers, epoch_losses) if not math.isfinite(value)]
    if bad:
        raise TrainingError(
            f"{description}: the loss of model(s) {bad} became non-finite in epoch {epoch + 1}; "
            "lower the learning rate or check the data scaling"
        )


@torch.inference_mode()
def map_batches(
    fn: Callable[[torch.Tensor], torch.Tensor], X: torch.Tensor, *, batch_size: int
) -> torch.Tensor:
    """Apply ``fn`` to ``X`` in batches under inference mode and concatenate the results."""
    return torch.cat([fn(X[start : start + batch_size]) for start in range(0, X.shape[0], batch_size)])
