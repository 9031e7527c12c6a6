"""The paper's experiments: grids, runner + executors, result store, reports and figures.

The pieces, in the order a run uses them:

* :mod:`~deepsad.experiments.config` -- experiments as TOML data (``configs/*.toml``:
  Tables 3-6, the eta and representation-size sensitivities), validated on load, with
  profiles (``full`` = the paper, ``quick`` = smoke runs and CI);
* :mod:`~deepsad.experiments.grid` -- a config expanded into tasks (dataset, normal
  class, known classes, ratio, seed, method) with stable keys;
* :mod:`~deepsad.experiments.runner` -- :func:`run_experiment`, the driver, and the group
  of tasks a worker runs; a task is drawn (:mod:`~deepsad.experiments.preparation`),
  fitted sharing pretrained autoencoders (:mod:`~deepsad.experiments.autoencoder_cache`)
  and scored (:mod:`~deepsad.experiments.task`) into a row
  (:mod:`~deepsad.experiments.rows`), alone or stacked
  (:mod:`~deepsad.experiments.stacking`);
* :mod:`~deepsad.experiments.executors` -- serial, a local process pool, or Ray;
* :mod:`~deepsad.experiments.store` -- the SQLite results file and its export;
* :mod:`~deepsad.experiments.report` -- the paper's tables from the results, with their
  statistics (:mod:`~deepsad.experiments.statistics`) and figures
  (:mod:`~deepsad.experiments.figures`);
* :mod:`~deepsad.experiments.ranking` / :mod:`~deepsad.experiments.rank_report` -- many methods
  over many datasets: average ranks, Friedman / Nemenyi tests, critical-difference diagrams
  (:mod:`~deepsad.experiments.cd_diagram`).

Example
-------
>>> from deepsad.experiments import load_config, make_executor, read_results, run_experiment
>>> config = load_config("table6", "quick")  # doctest: +SKIP
>>> run_experiment(config, "results/table6_quick.sqlite", make_executor("local"))  # doctest: +SKIP
>>> read_results("results/table6_quick.sqlite").groupby("method")["auc"].mean()  # doctest: +SKIP

The command line does the same: ``deepsad experiment run table6 --profile quick``.
"""

from __future__ import annotations

from deepsad._lazy import lazy_attributes as _lazy_attributes

# imported on first use: the command line lists configs without importing torch
_LAZY = {
    "ExperimentConfig": "deepsad.experiments.config",
    "load_config": "deepsad.experiments.config",
    "config_from_dict": "deepsad.experiments.config",
    "Task": "deepsad.experiments.grid",
    "expand": "deepsad.experiments.grid",
    "run_experiment": "deepsad.experiments.runner",
    "RunSummary": "deepsad.experiments.runner",
    "make_executor": "deepsad.experiments.executors",
    "ResultStore": "deepsad.experiments.store",
    "ResultsFileError": "deepsad.experiments.store",
    "read_results": "deepsad.experiments.store",
    "export_results": "deepsad.experiments.store",
    "write_report": "deepsad.experiments.report",
    "compare_methods": "deepsad.experiments.ranking",
    "write_rank_report": "deepsad.experiments.rank_report",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = _lazy_attributes(__name__, globals(), _LAZY, __all__)
