"""Neural networks of deepsad: encoders phi, mirrored decoders, and their specs.

Only ``nn.Module``\\ s and the frozen-dataclass specs that describe them; training lives
in :mod:`deepsad.training`. Encoders follow the paper's collapse-prevention rules: no
bias terms, BatchNorm without affine parameters, leaky ReLU, no bounded activation.

Examples
--------
>>> import torch
>>> from deepsad.models import LeNetSpec, build_encoder, init_weights_
>>> phi = build_encoder(LeNetSpec("mnist"), (1, 28, 28))
>>> init_weights_(phi, torch.Generator().manual_seed(0))
>>> phi(torch.rand(5, 1, 28, 28)).shape
torch.Size([5, 32])
"""

from __future__ import annotations

from deepsad.models.autoencoder import Autoencoder
from deepsad.models.batchnorm import FastBatchNorm2d
from deepsad.models.build import build_decoder, build_encoder, representation_dim
from deepsad.models.fused import FusedPlaceholder, to_stock_layers, use_fused_layers, use_stock_layers
from deepsad.models.init import init_weights_
from deepsad.models.lenet import LENET_ARCHITECTURES, LeNetArchitecture, LeNetDecoder, LeNetEncoder, with_fused_lenets
from deepsad.models.mlp import MLPDecoder, MLPEncoder
from deepsad.models.pooled_batchnorm import BatchNormLeakyMaxPool2d
from deepsad.models.resize_conv import UpsamplingConvTranspose2d
from deepsad.models.specs import (
    LeNetSpec,
    MLPSpec,
    NetworkSpec,
    auto_spec,
    default_spec,
    spec_from_dict,
    spec_to_dict,
)

__all__ = [
    "LENET_ARCHITECTURES",
    "Autoencoder",
    "BatchNormLeakyMaxPool2d",
    "FastBatchNorm2d",
    "FusedPlaceholder",
    "LeNetArchitecture",
    "LeNetDecoder",
    "LeNetEncoder",
    "LeNetSpec",
    "MLPDecoder",
    "MLPEncoder",
    "MLPSpec",
    "NetworkSpec",
    "UpsamplingConvTranspose2d",
    "build_decoder",
    "build_encoder",
    "auto_spec",
    "default_spec",
    "init_weights_",
    "representation_dim",
    "spec_from_dict",
    "spec_to_dict",
    "to_stock_layers",
    "use_fused_layers",
    "use_stock_layers",
    "with_fused_lenets",
]
