"""What a worker needs besides its tasks: the run's settings and the caches it keeps.

:class:`RunContext` is plain data that the driver sends with every group (it is pickled to
worker processes). :class:`WorkerCaches` is what one worker keeps between the groups it
runs -- loaded datasets and pretrained autoencoders. The executor that owns the worker
decides how long they live (see :mod:`deepsad.experiments.executors`): the whole run for
the serial executor and for each process of the local pool; a group run on its own
(``run_group(tasks, context)``) gets caches for that call only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from deepsad.experiments.autoencoder_cache import AutoencoderCache
from deepsad.experiments.preparation import DatasetCache


@dataclass(frozen=True)
class RunContext:
    """What every worker needs besides its tasks (plain data: it is pickled to workers).

    Attributes
    ----------
    data_root : str or None
        Absolute data root (the workers' view of it).
    use_ae_cache : bool
        Reuse pretrained autoencoders (memory and disk).
    ae_cache_dir : str or None
        Folder of the on-disk cache; ``None`` keeps the cache in memory only.
    threads : int or None
        torch/BLAS threads per worker; ``None`` leaves the defaults.
    """

    data_root: str | None = None
    use_ae_cache: bool = True
    ae_cache_dir: str | None = None
    threads: int | None = None


@dataclass
class WorkerCaches:
    """The caches one worker keeps while it runs groups of one run.

    Attributes
    ----------
    datasets : DatasetCache
        Loaded datasets.
    autoencoders : AutoencoderCache or None
        Pretrained autoencoders; ``None`` when the run does not cache them.
    """

    datasets: DatasetCache = field(default_factory=DatasetCache)
    autoencoders: AutoencoderCache | None = None

    @classmethod
    def for_context(cls, context: RunContext) -> WorkerCaches:
        """Empty caches for a run with ``context``'s settings (its disk cache folder, if any).

        Parameters
        ----------
        context : RunContext

        Returns
        -------
        WorkerCaches
        """
        autoencoders = AutoencoderCache(context.ae_cache_dir) if context.use_ae_cache else None
        return cls(datasets=DatasetCache(), autoencoders=autoencoders)
