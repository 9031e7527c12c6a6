"""Train several models of one architecture at once, as one stacked model.

A grid repeats the same small network over seeds and data draws. Training K such
models one after another pays the per-step overhead (Python, dispatch, optimizer) K
times for work that is tiny each time; stacking their parameters along a new leading
dimension and mapping one functional forward over it with :func:`torch.func.vmap`
runs all K in one set of kernels (batched matmuls, grouped convolutions).

Equivalence with :func:`deepsad.training.trainer.train`, model by model:

- each model keeps its own generator, so its shuffling order is the one the plain loop
  would draw, and its own data, labels and centre (stacked inputs) or shares them;
- the stacked loss is the *sum* of the K per-model batch losses, and the parameters of
  different models are disjoint, so each model receives exactly its own gradient;
- Adam and its weight decay are elementwise, so one Adam over the stacked tensors is K
  independent Adams with the same settings (the learning-rate schedule is per epoch and
  shared, which is why the models must share the optimiser settings);
- BatchNorm buffers are stacked too and updated in place per model under ``vmap``.

The numbers agree with the plain loop up to floating-point reassociation in the batched
kernels (tested). All models must have the same number of training samples, so that
their mini-batches line up.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from deepsad.errors import InvalidInputError, TrainingError
from deepsad.training.trainer import OptimizerConfig, batch_slices

logger = logging.getLogger(__name__)

#: ``batch_loss(module, tensors, indices)``: one model's mean loss on the samples ``indices``,
#: where ``tensors`` are that model's inputs (data, labels, centre, ...).
FunctionalBatchLoss = Callable[[nn.Module, Sequence[torch.Tensor], torch.Tensor], torch.Tensor]


class _LossModule(nn.Module):
    """Wraps a network so that :func:`functional_call` can run the whole loss with swapped weights."""

    def __init__(self, network: nn.Module, batch_loss: FunctionalBatchLoss) -> None:
        super().__init__()
        self.network = network
        self.batch_loss = batch_loss

    def forward(self, indices: torch.Tensor, *tensors: torch.Tensor) -> torch.Tensor:
        return self.batch_loss(self.network, tensors, indices)


def _check_same_architecture(modules: Sequence[nn.Module]) -> None:
    reference = {name: (tuple(t.shape), t.dtype) for name, t in modules[0].state_dict().items()}
    for k, module in enumerate(modules[1:], start=1):
        shapes = {name: (tuple(t.shape), t.dtype) for name, t in module.state_dict().items()}
        if shapes != reference:
            raise InvalidInputError(
                f"stacked training needs models of one architecture; model {k} differs from model 0 "
                "in its parameter or buffer names, shapes or dtypes"
            )


def train_stacked(
    modules: Sequence[nn.Module],
    batch_loss: FunctionalBatchLoss,
    per_model: Sequence[Sequence[torch.Tensor]],
    n_samples: int,
    config: OptimizerConfig,
    *,
    generators: Sequence[torch.Generator],
    device: torch.device,
    description: str = "stacked training",
) -> list[list[float]]:
    """Train K models of one architecture together; each ends as if trained alone.

    Parameters
    ----------
    modules : sequence of torch.nn.Module
        K models with identical parameter and buffer shapes (e.g. one network built from
        K seeds). Their weights and buffers are overwritten with the trained ones.
    batch_loss : callable
        ``batch_loss(module, tensors, indices) -> scalar``: one model's loss on a batch,
        written against its inputs ``tensors`` (as :func:`train`'s closures are written
        against captured tensors). It runs under :func:`torch.func.vmap`, so it must use
        tensor operations only (no ``.item()``, no data-dependent Python control flow).
    per_model : sequence of sequences of torch.Tensor
        ``per_model[k]`` are model k's inputs, in the order ``batch_loss`` expects; the
        i-th tensor of every model must have the same shape. Samples run along dim 0 of
        whichever tensors are indexed by ``indices``.
    n_samples : int
        Training samples per model (the same for every model).
    config : OptimizerConfig
        Optimiser settings, shared by all models.
    generators : sequence of torch.Generator
        One CPU generator per model for its shuffling, as :func:`train` uses it.
    device : torch.device
        Device of the data and the modules.
    description : str
        Label for log lines and errors.

    Returns
    -------
    list of list of float
        Per model, the mean training loss of each epoch.

    Raises
    ------
    InvalidInputError
        If the models differ in architecture, the counts of modules, inputs and
        generators disagree, or ``config.precision`` is not float32.
    TrainingError
        If any model's loss becomes NaN or infinite (the message names the models).
    """
    n_models = len(modules)
    if n_models == 0:
        raise InvalidInputError("stacked training needs at least one model")
    if len(per_model) != n_models or len(generators) != n_models:
        raise InvalidInputError(
            f"got {n_models} models, {len(per_model)} input tuples and {len(generators)} generators; "
            "stacked training needs one of each per model"
        )
    _check_same_architecture(modules)
    if config.precision != "float32":
        # under vmap, BatchNorm's batching rule needs its input and running statistics in
        # one dtype, which bfloat16 autocast breaks
        raise InvalidInputError(f"stacked training runs in float32 only, got precision={config.precision!r}")
    histories: list[list[float]] = [[] for _ in range(n_models)]
    if config.epochs == 0:
        return histories

    inputs = tuple(torch.stack(list(group)) for group in zip(*per_model))  # each (K, ...)
    params, buffers = stack_module_state(list(modules))  # leaves (K, ...) requiring grad
    # the functional template: same structure, weights supplied per call; in training
    # mode (BatchNorm normalises with batch statistics and updates the stacked buffers)
    template = _LossModule(copy.deepcopy(modules[0]).to("meta"), batch_loss).train()
    state_names = {**{f"network.{k}": v for k, v in params.items()}, **{f"network.{k}": v for k, v in buffers.items()}}
    param_names = [f"network.{k}" for k in params]
    buffer_names = [f"network.{k}" for k in buffers]

    def one_model(model_params: tuple[torch.Tensor, ...], model_buffers: tuple[torch.Tensor, ...],
                  indices: torch.Tensor, *tensors: torch.Tensor) -> torch.Tensor:
        weights = dict(zip(param_names, model_params)) | dict(zip(buffer_names, model_buffers))
        return functional_call(template, weights, (indices, *tensors))

    stacked_loss = vmap(one_model)
    param_leaves = tuple(state_names[name] for name in param_names)
    buffer_leaves = tuple(state_names[name] for name in buffer_names)

    for module in modules:
        module.train()  # as the plain loop leaves them
    optimizer = torch.optim.Adam(param_leaves, lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(config.milestones), gamma=config.lr_decay)
    bounds = batch_slices(n_samples, config.batch_size)
    for epoch in range(config.epochs):
        # model k draws the permutation the plain loop would draw from its generator
        orders = torch.stack([torch.randperm(n_samples, generator=g) for g in generators]).to(device)
        totals = torch.zeros(n_models, device=device)
        for start, stop in bounds:
            optimizer.zero_grad(set_to_none=True)
            losses = stacked_loss(param_leaves, buffer_leaves, orders[:, start:stop], *inputs)  # (K,)
            losses.sum().backward()
            optimizer.step()
            totals += losses.detach() * (stop - start)
        scheduler.step()
        epoch_losses = (totals / n_samples).tolist()
        bad = [k for k, value in enumerate(epoch_losses) if not torch.isfinite(torch.tensor(value))]
        if bad:
            raise TrainingError(
                f"{description}: the loss of model(s) {bad} became non-finite in epoch {epoch + 1}; "
                "lower the learning rate or check the data scaling"
            )
        for history, value in zip(histories, epoch_losses):
            history.append(value)
        logger.debug("%s epoch %d/%d losses %s", description, epoch + 1, config.epochs, epoch_losses)

    with torch.no_grad():
        for k, module in enumerate(modules):
            for name, tensor in module.named_parameters():
                tensor.copy_(params[name][k])
            for name, tensor in module.named_buffers():
                tensor.copy_(buffers[name][k])
    return histories
