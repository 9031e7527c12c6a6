"""Training machinery: losses as pure functions, one generic trainer, device helpers.

One loop trains K >= 1 models (:func:`train_models`; :func:`train` for one module);
every autoencoder is pretrained by :func:`pretrain_autoencoders`.

Training never changes process-wide settings by itself; the CPU speed settings are the
caller's to ask for: :func:`tuned_threads` (scoped) and :func:`keep_freed_memory`
(one-way, for a whole process).
"""

from deepsad.training.allocator import keep_freed_memory
from deepsad.training.device import (
    PRECISIONS,
    SINGLE_THREAD_MAX_MACS,
    SlowBFloat16Warning,
    check_precision,
    cpu_runs_bfloat16_natively,
    limited_threads,
    make_generator,
    resolve_device,
    seed_from_random_state,
    threads_for_fit,
    training_autocast,
    training_threads,
    tuned_threads,
)
from deepsad.training.losses import (
    deep_sad_loss,
    one_class_loss,
    per_sample_reconstruction_error,
    reconstruction_loss,
    soft_boundary_loss,
    solve_radius,
    squared_distance,
)
from deepsad.training.pretraining import autoencoder_output_loss, pretrain_autoencoders
from deepsad.training.trainer import OptimizerConfig, batch_slices, map_batches, train, train_models

__all__ = [
    "OptimizerConfig",
    "PRECISIONS",
    "autoencoder_output_loss",
    "SINGLE_THREAD_MAX_MACS",
    "SlowBFloat16Warning",
    "batch_slices",
    "check_precision",
    "cpu_runs_bfloat16_natively",
    "deep_sad_loss",
    "keep_freed_memory",
    "limited_threads",
    "make_generator",
    "map_batches",
    "one_class_loss",
    "per_sample_reconstruction_error",
    "pretrain_autoencoders",
    "reconstruction_loss",
    "resolve_device",
    "seed_from_random_state",
    "soft_boundary_loss",
    "solve_radius",
    "squared_distance",
    "threads_for_fit",
    "train",
    "train_models",
    "training_autocast",
    "training_threads",
    "tuned_threads",
]
