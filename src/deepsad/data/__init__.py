"""Data layer: readers, datasets by name, downloads, preprocessing and scenarios.

Datasets are resolved under a data root (:func:`resolve_data_root`: explicit argument,
else ``$DEEPSAD_DATA``, else the user's cache folder) whose layout is::

    odds/<name>.mat
    adbench/<Name>.npz          (the ADBench development suite, ``adbench-<name>``)
    mnist/*-idx?-ubyte.gz
    fashion_mnist/*-idx?-ubyte.gz
    cifar10/cifar-10-batches-py/

The scenario samplers in :mod:`deepsad.data.scenarios` turn class labels into the
paper's semi-supervised training sets (indices + semi-labels) and test sets.
"""

from __future__ import annotations

from deepsad.data.download import download_file, fetch_dataset
from deepsad.data.loaders import load_images, load_labels, load_odds, load_raw_images, load_table
from deepsad.data.preprocessing import Standardizer, images_to_unit_float
from deepsad.data.registry import (
    DatasetInfo,
    default_data_root,
    get_dataset,
    list_datasets,
    register_dataset,
    resolve_data_root,
    unregister_dataset,
)
from deepsad.data.scenarios import (
    ScenarioDraw,
    draw_known_classes,
    sample_image_scenario,
    sample_odds_scenario,
)
from deepsad.data.tabular import TableData, read_table

__all__ = [
    "DatasetInfo",
    "ScenarioDraw",
    "Standardizer",
    "TableData",
    "default_data_root",
    "download_file",
    "draw_known_classes",
    "fetch_dataset",
    "get_dataset",
    "images_to_unit_float",
    "list_datasets",
    "load_images",
    "load_labels",
    "load_odds",
    "load_raw_images",
    "load_table",
    "read_table",
    "register_dataset",
    "resolve_data_root",
    "sample_image_scenario",
    "sample_odds_scenario",
    "unregister_dataset",
]
