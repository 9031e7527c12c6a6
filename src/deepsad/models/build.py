"""Build encoders and decoders from specs, after checking that spec and data fit."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from deepsad.errors import InvalidInputError
from deepsad.models._shapes import SUPPORTED_SHAPES_TEXT, as_shape, layout_hint
from deepsad.models.blocks import OUTPUT_ACTIVATIONS
from deepsad.models.init import leaving_global_rng_alone
from deepsad.models.lenet import LENET_ARCHITECTURES, LeNetDecoder, LeNetEncoder
from deepsad.models.mlp import MLPDecoder, MLPEncoder
from deepsad.models.specs import LeNetSpec, MLPSpec, NetworkSpec


def _check_fits(spec: NetworkSpec, input_shape: Sequence[int]) -> tuple[int, ...]:
    """The normalised ``input_shape``, or an error saying why ``spec`` cannot take it."""
    shape = as_shape(input_shape)
    if isinstance(spec, MLPSpec):
        if len(shape) != 1:
            raise InvalidInputError(
                f"MLPSpec needs tabular samples of shape (d,), got {shape}.{layout_hint(shape)} "
                "Flatten X to (n, d) or use a LeNetSpec for images."
            )
        return shape
    if isinstance(spec, LeNetSpec):
        expected = LENET_ARCHITECTURES[spec.variant].input_shape
        if shape != expected:
            raise InvalidInputError(
                f"LeNetSpec({spec.variant!r}) needs images of shape {expected} (one sample, channels "
                f"first), got {shape}.{layout_hint(shape)} Supported: {SUPPORTED_SHAPES_TEXT}."
            )
        return shape
    raise InvalidInputError(f"spec must be an MLPSpec or LeNetSpec, got {spec!r}")


def build_encoder(spec: NetworkSpec, input_shape: tuple[int, ...], *, fused: bool = False) -> nn.Module:
    """The encoder phi described by ``spec`` for samples of shape ``input_shape``.

    Parameters
    ----------
    spec : MLPSpec or LeNetSpec
        The architecture.
    input_shape : tuple of int
        Shape of one sample: ``(d,)`` for an MLP, ``(c, h, w)`` for a LeNet.
    fused : bool, default=False
        Build a LeNet with the fused speed layers of :mod:`deepsad.models.fused` (same
        function and state dict); ``False`` keeps its stock layers. MLPs have none.

    Returns
    -------
    nn.Module
        Maps ``(n, *input_shape)`` to ``(n, rep_dim)``; has an int attribute ``rep_dim``.
        Weights have PyTorch's default initialisation (drawn without advancing torch's
        global RNG); call :func:`init_weights_` for the paper's Glorot init.

    Raises
    ------
    InvalidInputError
        If the spec does not fit the input shape.
    """
    shape = _check_fits(spec, input_shape)
    with leaving_global_rng_alone():
        if isinstance(spec, MLPSpec):
            return MLPEncoder(
                shape[0], spec.hidden_sizes, spec.rep_dim, negative_slope=spec.negative_slope, bn_eps=spec.bn_eps,
                batch_norm=spec.batch_norm,
            )
        return LeNetEncoder(spec.variant, spec.rep_dim, negative_slope=spec.negative_slope, bn_eps=spec.bn_eps,
                            fused=fused)


def build_decoder(
    spec: NetworkSpec, input_shape: tuple[int, ...], output_activation: str = "sigmoid", *, fused: bool = False
) -> nn.Module:
    """The decoder mirroring ``build_encoder(spec, input_shape)``.

    Parameters
    ----------
    spec : MLPSpec or LeNetSpec
        The encoder's architecture.
    input_shape : tuple of int
        Shape of one sample, which the decoder reconstructs.
    output_activation : {"sigmoid", "identity"}, default="sigmoid"
        ``"sigmoid"`` for data in [0, 1], ``"identity"`` for standardized data.
    fused : bool, default=False
        As for :func:`build_encoder`.

    Returns
    -------
    nn.Module
        Maps ``(n, rep_dim)`` to ``(n, *input_shape)``. All layers are bias-free except
        the output layer, whose bias lets the decoder reproduce the data mean.

    Raises
    ------
    InvalidInputError
        If the spec does not fit the input shape or ``output_activation`` is unknown.
    """
    shape = _check_fits(spec, input_shape)
    if output_activation not in OUTPUT_ACTIVATIONS:
        raise InvalidInputError(
            f"output_activation must be one of {list(OUTPUT_ACTIVATIONS)}, got {output_activation!r}"
        )
    with leaving_global_rng_alone():
        if isinstance(spec, MLPSpec):
            return MLPDecoder(
                shape[0],
                spec.hidden_sizes,
                spec.rep_dim,
                negative_slope=spec.negative_slope,
                bn_eps=spec.bn_eps,
                output_activation=output_activation,
                batch_norm=spec.batch_norm,
            )
        return LeNetDecoder(
            spec.variant,
            spec.rep_dim,
            negative_slope=spec.negative_slope,
            bn_eps=spec.bn_eps,
            output_activation=output_activation,
            fused=fused,
        )


def representation_dim(encoder: nn.Module, input_shape: tuple[int, ...] | None = None) -> int:
    """The size of ``encoder``'s output, i.e. of phi(x).

    Parameters
    ----------
    encoder : nn.Module
        An encoder; deepsad's own (and any user module that sets one) carry an int
        attribute ``rep_dim``.
    input_shape : tuple of int, optional
        Shape of one sample. Only used when ``encoder`` has no ``rep_dim``: then two
        zero samples are passed through it in eval mode (two, not one, so that a
        user's module that insists on batch statistics still runs).

    Returns
    -------
    int

    Raises
    ------
    InvalidInputError
        If the size cannot be determined, or the output is not ``(n, rep_dim)``.
    """
    rep_dim = getattr(encoder, "rep_dim", None)
    if isinstance(rep_dim, int) and not isinstance(rep_dim, bool) and rep_dim > 0:
        return rep_dim
    if input_shape is None:
        raise InvalidInputError(
            f"cannot tell the representation size of {type(encoder).__name__}: give the module an int "
            "attribute `rep_dim`, or pass input_shape to run a dummy forward pass"
        )
    shape = as_shape(input_shape)
    reference = next(iter(encoder.parameters()), None)
    if reference is None:
        reference = next(iter(encoder.buffers()), None)
    device = reference.device if reference is not None else torch.device("cpu")
    dtype = reference.dtype if reference is not None and reference.is_floating_point() else torch.float32
    was_training = encoder.training
    encoder.eval()
    try:
        with torch.no_grad():
            out = encoder(torch.zeros((2, *shape), device=device, dtype=dtype))
    finally:
        encoder.train(was_training)
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != 2:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise InvalidInputError(
            f"an encoder must map (n, *input_shape) to (n, rep_dim); {type(encoder).__name__} gave {got} for n=2"
        )
    return int(out.shape[1])
