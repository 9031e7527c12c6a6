"""Input-shape normalisation and the hints shown when a shape does not fit a network."""

from __future__ import annotations

from collections.abc import Sequence

from deepsad.errors import InvalidInputError

#: Image shapes (c, h, w) that have a default LeNet, as shown in error messages.
SUPPORTED_SHAPES_TEXT = (
    "(d,) for tabular data (MLP), (1, 28, 28) for MNIST-like images (LeNet 'mnist' or 'fmnist') "
    "and (3, 32, 32) for CIFAR-10-like images (LeNet 'cifar10')"
)


def as_shape(input_shape: Sequence[int]) -> tuple[int, ...]:
    """``input_shape`` as a tuple of positive Python ints (numpy ints and lists accepted).

    Raises
    ------
    InvalidInputError
        If it is not a sequence of positive integers.
    """
    try:
        shape = tuple(input_shape)
    except TypeError:
        raise InvalidInputError(
            f"input_shape must be the shape of one sample, e.g. (d,) or (c, h, w), got {input_shape!r}"
        ) from None
    # bool is an int subclass, but True as a dimension is certainly a mistake
    if not shape or any(isinstance(s, bool) or not hasattr(s, "__index__") or int(s) < 1 for s in shape):
        raise InvalidInputError(
            f"input_shape must be a non-empty tuple of positive integers (one sample's shape), got {input_shape!r}"
        )
    return tuple(int(s) for s in shape)


def layout_hint(shape: tuple[int, ...]) -> str:
    """A sentence telling the user how to fix a common layout mistake, or ``""``.

    Catches channel-last images (numpy / PIL / TensorFlow layout) and grayscale images
    without a channel axis, both of which would otherwise only say "unsupported".
    """
    if len(shape) == 3 and shape[2] in (1, 3) and shape[0] == shape[1] and shape[0] in (28, 32):
        h, w, c = shape
        return (
            f" The shape {shape} looks like channel-last images (h, w, c); deepsad expects "
            f"channel-first (n, c, h, w): transpose X, e.g. X.transpose(0, 3, 1, 2) -> (n, {c}, {h}, {w})."
        )
    if len(shape) == 2 and shape[0] == shape[1] and shape[0] in (28, 32):
        h, w = shape
        return (
            f" The shape {shape} looks like grayscale images without a channel axis; reshape X to "
            f"(n, 1, {h}, {w}), e.g. X[:, None], or flatten it to (n, {h * w}) for an MLP."
        )
    return ""
