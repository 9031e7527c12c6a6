"""Pretrained autoencoders shared between tasks, by content key.

Deep SAD and Deep SVDD pretrain an autoencoder, and the hybrids need one; within a setup
they all see the same training data, so one autoencoder serves them all (and the
``eta`` sweep's five Deep SAD fits, and identical training sets of other experiments).
The runner pretrains it explicitly -- ``pretrain_autoencoder`` of a Deep SVDD with the
method's pretraining settings and seed (:func:`pretrainer_params`) -- and passes it to
``fit(..., autoencoder=...)``. The result equals a fit that pretrained by itself, because
the detectors draw pretraining and training randomness from separate streams of the
seed; and the time goes to the row's ``pretrain_seconds`` (in the task that pretrained;
``fit_seconds`` excludes it), so methods' fit times stay comparable whichever task
happened to pretrain.

The cache key (:func:`autoencoder_key`) is the sha256 of the exact training array fed to
pretraining (after preprocessing: bytes, shape and dtype) together with the network spec,
every pretraining hyperparameter (epochs, learning rate, milestones, weight decay, batch
size, output activation, standardization), the resolved device type, the seed, and the
torch and deepsad versions. Two levels (:class:`AutoencoderCache`): an in-memory LRU that
a worker keeps for the groups it runs (a few entries: groups run their tasks back to
back), and an on-disk folder (default ``<results folder>/ae-cache``) shared by all
workers of a machine and by later runs. A disk entry is one safetensors file named by its
key (state dict + JSON metadata: spec, input shape, output activation), written to a
temporary name and renamed, so a reader never sees half a file and concurrent writers of
one key are harmless. A file that cannot be read is treated as a miss. Nothing is
pickled. ``use_ae_cache=False`` (``--no-ae-cache``) turns both levels off: every task
pretrains its own autoencoder. The row's ``ae_cache`` says what happened
(:class:`AutoencoderLedger`): ``miss`` (pretrained and cached), ``off`` (pretrained, cache
off), ``hit-memory``, ``hit-disk``, or ``n/a`` (no autoencoder).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deepsad.experiments.config import canonical_json
from deepsad.experiments.provenance import package_versions

logger = logging.getLogger(__name__)

#: Entries of the in-memory autoencoder cache of one worker.
MEMORY_CACHE_ENTRIES = 4


def autoencoder_settings(
    estimator: Any, input_shape: Sequence[int], semi_labels: np.ndarray | None = None
) -> dict[str, Any] | None:
    """The pretraining settings of a Deep SAD / Deep SVDD on samples of ``input_shape``, normalised for hashing.

    Parameters
    ----------
    estimator : DeepSAD or DeepSVDD
        Unfitted; only its parameters are read.
    input_shape : sequence of int
        The shape of one training sample.
    semi_labels : numpy.ndarray, optional
        Those of the training set: Deep SAD's ``"auto"`` network depends on whether any
        sample is a labeled anomaly (``recipe_for_labels``).

    Returns
    -------
    dict or None
        ``None`` when the estimator does not pretrain on such data, trains an ensemble
        (each network pretrains its own autoencoder), or uses a custom module (which
        cannot be identified by value).
    """
    from deepsad.detectors.recipe import TABULAR_RECIPE, recipe_for, resolve_n_networks, resolve_pretrain, resolve_standardize
    from deepsad.models import LeNetSpec, MLPSpec, auto_spec, spec_from_dict, spec_to_dict
    from deepsad.training import resolve_device
    from deepsad.validation import check_milestones

    p = estimator.get_params(deep=False)
    recipe_for_labels = getattr(estimator, "recipe_for_labels", None)
    tabular = recipe_for_labels(semi_labels) if recipe_for_labels is not None else TABULAR_RECIPE
    if (
        not resolve_pretrain(p.get("pretrain", True), input_shape, tabular)
        or resolve_n_networks(p.get("n_networks", 1), input_shape, tabular) > 1
        or int(p["pretrain_epochs"]) == 0
        or p.get("decoder") is not None
    ):
        return None
    network = p["network"]
    if isinstance(network, dict):
        network = spec_from_dict(network)
    if network == "auto":
        network = auto_spec(tuple(input_shape), batch_norm=recipe_for(input_shape, tabular)["batch_norm"])
    if isinstance(network, (MLPSpec, LeNetSpec)):
        network = spec_to_dict(network)
    elif network != "paper":
        return None
    return {
        "network": network,
        "pretrain_epochs": int(p["pretrain_epochs"]),
        "pretrain_lr": float(p["pretrain_lr"]),
        "pretrain_lr_milestones": list(check_milestones("pretrain_lr_milestones", p["pretrain_lr_milestones"])),
        "pretrain_weight_decay": float(p["pretrain_weight_decay"]),
        "batch_size": int(p["batch_size"]),
        "output_activation": str(p["output_activation"]),
        "standardize": resolve_standardize(p.get("standardize", False), input_shape),
        "device": resolve_device(p["device"]).type,
        # named only when not the default, so the keys of float32 autoencoders stay as they were
        **({"precision": p["precision"]} if p.get("precision", "float32") != "float32" else {}),
    }


def autoencoder_key(X: np.ndarray, settings: Mapping[str, Any], seed: int) -> str:
    """sha256 (hex) of the training bytes, their shape and dtype, the settings, the seed and versions.

    Parameters
    ----------
    X : numpy.ndarray
        The training samples exactly as pretraining sees them.
    settings : mapping
        From :func:`autoencoder_settings`.
    seed : int
        The task's seed.

    Returns
    -------
    str
        64 hexadecimal digits.
    """
    versions = package_versions()
    header = canonical_json({
        "shape": list(X.shape), "dtype": str(X.dtype), "settings": dict(settings), "seed": int(seed),
        "torch": versions["torch"], "deepsad": versions["deepsad"],
    })
    digest = hashlib.sha256(header.encode("utf-8"))
    digest.update(memoryview(np.ascontiguousarray(X)).cast("B"))
    return digest.hexdigest()


class AutoencoderCache:
    """Pretrained autoencoders by content key: an in-memory LRU and an optional folder.

    Parameters
    ----------
    directory : str or os.PathLike or None
        Folder of the on-disk level (created on first write); ``None``: memory only.
    max_entries : int
        Size of the in-memory level.
    """

    #: Written with new entries. 2: LeNet weights under their canonical names.
    FORMAT = "deepsad-autoencoder-cache/2"
    #: Entries of this format may hold LeNet weights in the fused layers' old numbering
    #: (:mod:`deepsad.models.lenet_names`); those are renamed on reading.
    FUSED_NUMBERING_FORMAT = "deepsad-autoencoder-cache/1"
    #: Formats :meth:`get` reads.
    READABLE_FORMATS = (FUSED_NUMBERING_FORMAT, FORMAT)

    def __init__(self, directory: str | os.PathLike | None = None, max_entries: int = MEMORY_CACHE_ENTRIES) -> None:
        self.directory = Path(directory) if directory is not None else None
        self.max_entries = max_entries
        self._memory: OrderedDict[str, Any] = OrderedDict()

    def get(self, key: str) -> tuple[Any, str] | tuple[None, str]:
        """``(autoencoder, "memory" | "disk")`` for a hit, ``(None, "miss")`` otherwise."""
        if key in self._memory:
            self._memory.move_to_end(key)
            return self._memory[key], "memory"
        if self.directory is not None:
            path = self.directory / f"{key}.safetensors"
            if path.is_file():
                try:
                    autoencoder = self._read(path, key)
                except Exception as error:  # a damaged entry is only a miss
                    logger.warning("ignoring unreadable autoencoder cache entry %s: %s", path, error)
                else:
                    self._remember(key, autoencoder)
                    return autoencoder, "disk"
        return None, "miss"

    def put(self, key: str, autoencoder: Any, *, spec: Any, input_shape: Sequence[int], output_activation: str) -> None:
        """Store a trained autoencoder (its spec and input shape say how to rebuild it)."""
        self._remember(key, autoencoder)
        if self.directory is None or spec is None:
            return
        try:
            self._write(key, autoencoder, spec, input_shape, output_activation)
        except OSError as error:  # a full or read-only disk costs reuse, not the result
            logger.warning("could not write autoencoder cache entry to %s: %s", self.directory, error)

    def _remember(self, key: str, autoencoder: Any) -> None:
        self._memory[key] = autoencoder
        self._memory.move_to_end(key)
        while len(self._memory) > self.max_entries:
            self._memory.popitem(last=False)

    def _write(self, key: str, autoencoder: Any, spec: Any, input_shape: Sequence[int], output_activation: str) -> None:
        from safetensors.torch import save_file

        from deepsad.models import spec_to_dict

        assert self.directory is not None
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{key}.safetensors"
        if path.is_file():
            return
        tensors = {name: t.detach().to("cpu").contiguous().clone() for name, t in autoencoder.state_dict().items()}
        metadata = {
            "format": self.FORMAT,
            "key": key,
            "spec": json.dumps(spec_to_dict(spec)),
            "input_shape": json.dumps([int(s) for s in input_shape]),
            "output_activation": output_activation,
        }
        tmp = path.with_name(f".{key}.{os.getpid()}.tmp")
        try:
            save_file(tensors, str(tmp), metadata=metadata)
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()

    def _read(self, path: Path, key: str) -> Any:
        from safetensors import safe_open

        from deepsad.models import with_fused_lenets
        from deepsad.models import Autoencoder, LeNetSpec, build_decoder, build_encoder, spec_from_dict
        from deepsad.models.lenet_names import canonical_lenet_names

        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
        if metadata.get("format") not in self.READABLE_FORMATS or metadata.get("key") != key:
            raise ValueError("not an autoencoder cache entry for this key")
        spec = spec_from_dict(json.loads(metadata["spec"]))
        shape = tuple(json.loads(metadata["input_shape"]))
        # in the form the detectors train (with_fused_lenets), like an autoencoder they
        # pretrain themselves: a disk hit then computes exactly as a memory hit or a miss
        autoencoder = with_fused_lenets(
            Autoencoder(build_encoder(spec, shape), build_decoder(spec, shape, metadata["output_activation"]))
        )
        # format 1 was written in both numberings (the canonical one from a20792c on);
        # the key sets differ for every LeNet, so the names tell which one a file has
        if (metadata["format"] == self.FUSED_NUMBERING_FORMAT and isinstance(spec, LeNetSpec)
                and set(tensors) != set(autoencoder.state_dict())):
            tensors = canonical_lenet_names(tensors)
        autoencoder.load_state_dict(tensors, strict=True)
        return autoencoder.eval()


@dataclass
class AutoencoderLedger:
    """Autoencoder bookkeeping of one task: the cache, what it gave, and pretraining time.

    Attributes
    ----------
    cache : AutoencoderCache or None
        ``None`` when caching is off.
    ae_status : str
        The row's ``ae_cache``: ``n/a``, ``miss``, ``off``, ``hit-memory`` or ``hit-disk``.
    pretrain_seconds : float
        Time this task spent pretraining.
    """

    cache: AutoencoderCache | None
    ae_status: str = "n/a"
    pretrain_seconds: float = 0.0

    def note(self, status: str) -> None:
        """Record what the cache gave (``miss``, ``off``, ``hit-memory`` or ``hit-disk``)."""
        # a task that pretrained reports that, even if later candidates hit the cache
        if self.ae_status == "n/a" or status in ("miss", "off"):
            self.ae_status = status


def pretrainer_params(settings: Mapping[str, Any], seed: int) -> dict[str, Any]:
    """Deep SVDD parameters that pretrain exactly the autoencoder ``settings`` describe (and no phi).

    Parameters
    ----------
    settings, seed
        As for :func:`autoencoder_key`.

    Returns
    -------
    dict
        ``settings`` with ``epochs = 0`` (no phi is trained), pretraining on, one network,
        the seed, quiet.
    """
    params = {k: v for k, v in settings.items()}
    params.update({"epochs": 0, "pretrain": True, "n_networks": 1, "random_state": seed, "verbose": False})
    return params


def pretrained(X: np.ndarray, settings: Mapping[str, Any], seed: int, ledger: AutoencoderLedger) -> Any:
    """The autoencoder ``settings`` describe for ``X``: from the cache, or pretrained now.

    Parameters
    ----------
    X : numpy.ndarray
        The training samples.
    settings : mapping
        From :func:`autoencoder_settings`.
    seed : int
        The task's seed.
    ledger : AutoencoderLedger
        The task's bookkeeping; its cache is used and its status and time updated.

    Returns
    -------
    deepsad.models.Autoencoder
        Trained, in eval mode; pass it to ``fit(..., autoencoder=...)``.
    """
    from deepsad.methods import make_detector

    key = autoencoder_key(X, settings, seed) if ledger.cache is not None else None
    if key is not None:
        autoencoder, where = ledger.cache.get(key)
        if autoencoder is not None:
            ledger.note(f"hit-{where}")
            return autoencoder
    started = time.perf_counter()
    # the autoencoder a Deep SVDD with these pretraining settings and seed pretrains is
    # the very one Deep SAD would (pretraining has its own random stream)
    pretrainer = make_detector("deepsvdd", pretrainer_params(settings, seed))
    autoencoder = pretrainer.pretrain_autoencoder(X)
    ledger.pretrain_seconds += time.perf_counter() - started
    ledger.note("miss" if key is not None else "off")
    if key is not None:
        cache_put(ledger.cache, key, pretrainer)
    return autoencoder


def cache_put(cache: AutoencoderCache, key: str, pretrainer: Any) -> None:
    """Store ``pretrainer``'s autoencoder (after ``pretrain_autoencoder``) under ``key``."""
    cache.put(key, pretrainer.autoencoder_, spec=pretrainer.spec_, input_shape=pretrainer.input_shape_,
              output_activation=pretrainer.output_activation_)
