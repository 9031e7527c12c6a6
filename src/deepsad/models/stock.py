"""deepsad's networks in stock torch layers only: :func:`to_stock_layers` (kept here for its import path).

The function lives in :mod:`deepsad.models.fused`, next to its inverse
:func:`~deepsad.models.fused.use_fused_layers`.
"""

from __future__ import annotations

from deepsad.models.fused import to_stock_layers

__all__ = ["to_stock_layers"]
