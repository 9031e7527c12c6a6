"""Train several models of one architecture at once, as one stacked model.

A grid repeats the same small network over seeds and data draws. Training K such
models one after another pays the per-step overhead (Python, dispatch, optimizer) K
times for work that is tiny each time, and on CPU runs the MNIST LeNet's narrow
convolutions below the vector width. Two ways to run all K in one set of kernels:

- ``"grouped"`` (deepsad's own networks): :func:`deepsad.models.grouped.group_networks`
  builds one network with K-fold wider grouped convolutions and batched Linears; the
  K losses are computed from its split output. The fast one for the LeNets on CPU.
- ``"vmap"`` (any module): the parameters are stacked along a new leading dimension and
  one functional forward is mapped over them with :func:`torch.func.vmap`.

Equivalence with :func:`deepsad.training.trainer.train`, model by model:

- each model keeps its own generator, so its shuffling order is the one the plain loop
  would draw, and its own data, labels and centre (stacked inputs) or shares them;
- the stacked loss is the *sum* of the K per-model batch losses, and the parameters of
  different models are disjoint, so each model receives exactly its own gradient;
- Adam and its weight decay are elementwise, so one Adam over the stacked tensors is K
  independent Adams with the same settings (the learning-rate schedule is per epoch and
  shared, which is why the models must share the optimiser settings);
- BatchNorm statistics stay per model (a grouped channel, or a vmapped slice, belongs to
  one model), and so do the running buffers.

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

from deepsad.errors import InvalidInputError
from deepsad.models.grouped import GroupedNetwork, group_networks, preferred_group_size
from deepsad.training.trainer import OptimizerConfig, train_models

logger = logging.getLogger(__name__)

#: ``output_loss(output, tensors, indices)``: one model's mean loss on the samples ``indices``,
#: where ``tensors`` are that model's inputs (data, labels, centre, ...) and ``output`` is
#: the network's output on ``tensors[0][indices]``.
OutputLoss = Callable[[torch.Tensor, Sequence[torch.Tensor], torch.Tensor], torch.Tensor]

#: How :func:`train_stacked` runs the K models: ``"auto"`` (grouped where possible, else vmap).
STRATEGIES = ("auto", "grouped", "vmap")


def check_strategy(strategy: str) -> None:
    """Raise :class:`InvalidInputError` unless ``strategy`` is one of :data:`STRATEGIES`."""
    if strategy not in STRATEGIES:
        raise InvalidInputError(f"strategy must be one of {list(STRATEGIES)}, got {strategy!r}")


class _LossModule(nn.Module):
    """Wraps a network so that :func:`functional_call` can run the whole loss with swapped weights."""

    def __init__(self, network: nn.Module, output_loss: OutputLoss) -> None:
        super().__init__()
        self.network = network
        self.output_loss = output_loss

    def forward(self, indices: torch.Tensor, *tensors: torch.Tensor) -> torch.Tensor:
        return self.output_loss(self.network(tensors[0][indices]), tensors, indices)


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
    output_loss: OutputLoss,
    per_model: Sequence[Sequence[torch.Tensor]],
    n_samples: int,
    config: OptimizerConfig,
    *,
    generators: Sequence[torch.Generator],
    device: torch.device,
    description: str = "stacked training",
    strategy: str = "auto",
) -> list[list[float]]:
    """Train K models of one architecture together; each ends as if trained alone.

    Parameters
    ----------
    modules : sequence of torch.nn.Module
        K models with identical parameter and buffer shapes (e.g. one network built from
        K seeds). Their weights and buffers are overwritten with the trained ones.
    output_loss : callable
        ``output_loss(output, tensors, indices) -> scalar``: one model's loss on a batch,
        given the model's output on ``tensors[0][indices]`` (the network always reads
        the first tensor) and its inputs ``tensors``. It runs under
        :func:`torch.func.vmap`, so it must use tensor operations only (no ``.item()``,
        no data-dependent Python control flow).
    per_model : sequence of sequences of torch.Tensor
        ``per_model[k]`` are model k's inputs, in the order ``output_loss`` expects; the
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
    strategy : {"auto", "grouped", "vmap"}, default="auto"
        ``"grouped"`` runs deepsad's own networks as one network of grouped layers
        (:mod:`deepsad.models.grouped`), in groups of the size
        :func:`~deepsad.models.grouped.preferred_group_size` gives (on CPU: all MLPs at
        once, the MNIST LeNet two at a time, wider LeNets one at a time);
        ``"vmap"`` maps a functional forward over all stacked weights (any module);
        ``"auto"`` takes grouped where the networks allow it.

    Returns
    -------
    list of list of float
        Per model, the mean training loss of each epoch.

    Raises
    ------
    InvalidInputError
        If the models differ in architecture, the counts of modules, inputs and
        generators disagree, ``config.precision`` is not float32, the strategy is
        unknown, or ``"grouped"`` is asked for networks that have no grouped form.
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
    check_strategy(strategy)
    _check_same_architecture(modules)
    if config.precision != "float32":
        # under vmap, BatchNorm's batching rule needs its input and running statistics in
        # one dtype, which bfloat16 autocast breaks; the grouped path shares the rule so
        # that stacked results never depend on which path ran
        raise InvalidInputError(f"stacked training runs in float32 only, got precision={config.precision!r}")
    histories: list[list[float]] = [[] for _ in range(n_models)]
    if config.epochs == 0:
        return histories

    chunks = [range(n_models)]
    networks: list[GroupedNetwork | None] = [None]
    if strategy != "vmap":
        # each group built once, here; any part without a grouped form means vmap for all
        size = preferred_group_size(modules[0], device) or n_models
        grouped_chunks = [range(first, min(first + size, n_models)) for first in range(0, n_models, size)]
        grouped_networks = [group_networks([modules[k] for k in chunk]) for chunk in grouped_chunks]
        if all(network is not None for network in grouped_networks):
            chunks, networks = grouped_chunks, grouped_networks
        elif strategy == "grouped":
            raise InvalidInputError(
                "strategy='grouped' needs deepsad's own networks (LeNet / MLP encoders, decoders and "
                "autoencoders of them) with equal settings; use strategy='vmap' for other modules"
            )
    for chunk, network in zip(chunks, networks):
        chunk_histories = _train_together(
            [modules[k] for k in chunk], output_loss, [per_model[k] for k in chunk], n_samples, config,
            generators=[generators[k] for k in chunk], device=device, description=description,
            network=network, first_index=chunk.start,
        )
        for k, history in zip(chunk, chunk_histories):
            histories[k] = history
    return histories


def _train_together(modules: Sequence[nn.Module], output_loss: OutputLoss,
                    per_model: Sequence[Sequence[torch.Tensor]],
                    n_samples: int, config: OptimizerConfig, *, generators: Sequence[torch.Generator],
                    device: torch.device, description: str, network: GroupedNetwork | None,
                    first_index: int) -> list[list[float]]:
    """One stacked training run of all ``modules``: through ``network`` (their grouped form)
    if given, else vmapped (models numbered from ``first_index`` in messages)."""
    n_models = len(modules)
    inputs = tuple(torch.stack(list(group)) for group in zip(*per_model))  # each (K, ...)
    if network is not None:
        leaves, stacked_losses, finish = _grouped_step(network, output_loss, inputs)
    else:
        leaves, stacked_losses, finish = _vmapped_step(modules, output_loss, inputs)
    logger.debug("%s: models %d-%d, %s strategy", description, first_index, first_index + n_models - 1,
                 "grouped" if network is not None else "vmap")

    for module in modules:
        module.train()  # as the plain loop leaves them
    histories = train_models(
        leaves, stacked_losses, n_samples, config, generators=generators, device=device,
        description=description, model_numbers=range(first_index, first_index + n_models),
    )
    finish()
    return _float32_means(histories, n_samples, device)


def _float32_means(histories: list[list[float]], n_samples: int, device: torch.device) -> list[list[float]]:
    """The loop's float64 epoch means as stacked training reports them: float32, divided on ``device``.

    Stacked histories have always been ``(sums / n_samples)`` computed on the device in
    float32; kept so that saved stacked models do not change. The float32 sums come back
    exactly from the float64 means (``q = RN64(s / n)``, so ``RN32(q * n) = s``).
    """
    sums = (torch.tensor(histories, dtype=torch.float64) * n_samples).float()  # (K, epochs)
    return (sums.to(device) / n_samples).tolist()


_StackedLosses = Callable[[torch.Tensor], torch.Tensor]  # (K, b) batch indices -> (K,) losses


def _grouped_step(grouped: GroupedNetwork, output_loss: OutputLoss, inputs: tuple[torch.Tensor, ...]
                  ) -> tuple[list[torch.Tensor], _StackedLosses, Callable[[], None]]:
    """Parameters, the per-step loss function and the write-back of the grouped strategy."""
    grouped.train()
    data = inputs[0]  # (K, n, *shape)
    models = torch.arange(data.shape[0], device=data.device).unsqueeze(1)  # (K, 1)

    def one_loss(output: torch.Tensor, indices: torch.Tensor, *tensors: torch.Tensor) -> torch.Tensor:
        return output_loss(output, tensors, indices)

    per_model_loss = vmap(one_loss)

    def losses(indices: torch.Tensor) -> torch.Tensor:
        outputs = grouped.split_output(grouped(grouped.group_input(data[models, indices])))  # (K, b, ...)
        return per_model_loss(outputs, indices, *inputs)

    return list(grouped.parameters()), losses, grouped.write_back


def _vmapped_step(modules: Sequence[nn.Module], output_loss: OutputLoss, inputs: tuple[torch.Tensor, ...]
                  ) -> tuple[list[torch.Tensor], _StackedLosses, Callable[[], None]]:
    """Parameters, the per-step loss function and the write-back of the vmap strategy."""
    params, buffers = stack_module_state(list(modules))  # leaves (K, ...) requiring grad
    # the functional template: same structure, weights supplied per call; in training
    # mode (BatchNorm normalises with batch statistics and updates the stacked buffers)
    template = _LossModule(copy.deepcopy(modules[0]).to("meta"), output_loss).train()
    param_names = [f"network.{k}" for k in params]
    buffer_names = [f"network.{k}" for k in buffers]
    param_leaves = tuple(params.values())
    buffer_leaves = tuple(buffers.values())

    def one_model(model_params: tuple[torch.Tensor, ...], model_buffers: tuple[torch.Tensor, ...],
                  indices: torch.Tensor, *tensors: torch.Tensor) -> torch.Tensor:
        weights = dict(zip(param_names, model_params)) | dict(zip(buffer_names, model_buffers))
        return functional_call(template, weights, (indices, *tensors))

    stacked_loss = vmap(one_model)

    def losses(indices: torch.Tensor) -> torch.Tensor:
        return stacked_loss(param_leaves, buffer_leaves, indices, *inputs)

    @torch.no_grad()
    def write_back() -> None:
        for k, module in enumerate(modules):
            for name, tensor in module.named_parameters():
                tensor.copy_(params[name][k])
            for name, tensor in module.named_buffers():
                tensor.copy_(buffers[name][k])

    return list(param_leaves), losses, write_back
