"""Datasets by name: where their files live under the data root and where to get them.

The data root is chosen by :func:`resolve_data_root`. Its layout::

    <root>/mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz
    <root>/fashion_mnist/  (same four names)
    <root>/cifar10/cifar-10-batches-py/{data_batch_1..5,test_batch}
    <root>/odds/<name>.mat
    <root>/adbench/<Name>.npz  (arrays X and y, 1 = anomaly; ADBench's file stem)
    <root>/datasets.json   (optional: user datasets registered with persist=True)

Users add their own datasets with :func:`register_dataset`: a tabular file
(CSV/NPY/NPZ/Parquet/MAT) or an image array file (``.npz`` with ``X`` and ``y``,
optionally ``X_test`` and ``y_test``).
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from deepsad.errors import DataFileError, InvalidInputError

#: Environment variable naming the data root.
DATA_ROOT_ENV = "DEEPSAD_DATA"
#: File in the data root that lists persistently registered user datasets.
USER_REGISTRY_FILE = "datasets.json"

KINDS = ("images", "odds", "benchmark", "tabular")
#: Kinds of built-in labeled tabular benchmarks: one table with 0/1 ground truth that the
#: experiments split 60:40 (ODDS .mat files, ADBench .npz files).
BENCHMARK_KINDS = ("odds", "benchmark")


def default_data_root() -> Path:
    """The data root used when neither an argument nor ``$DEEPSAD_DATA`` gives one.

    ``$XDG_CACHE_HOME/deepsad/data`` (else ``~/.cache/deepsad/data``) on Linux and other
    Unix systems, ``~/Library/Caches/deepsad/data`` on macOS and
    ``%LOCALAPPDATA%\\deepsad\\data`` on Windows: the data can always be downloaded
    again, so it belongs in the user's cache folder.
    """
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "deepsad" / "data"


def resolve_data_root(data_root: str | os.PathLike | None = None) -> Path:
    """Return the data root: the argument if given, else ``$DEEPSAD_DATA``, else the default.

    Parameters
    ----------
    data_root : str or os.PathLike, optional
        An explicit folder (the CLI's ``--data-root``). ``~`` is expanded.

    Returns
    -------
    pathlib.Path
        The folder (it need not exist yet; readers report missing files).

    See Also
    --------
    default_data_root : the fallback folder per platform.
    """
    if data_root is not None and str(data_root) != "":
        return Path(data_root).expanduser()
    env = os.environ.get(DATA_ROOT_ENV)
    if env:
        return Path(env).expanduser()
    return default_data_root()


def data_root_origin(data_root: str | os.PathLike | None = None) -> str:
    """Say where :func:`resolve_data_root` took the root from, for error messages."""
    if data_root is not None and str(data_root) != "":
        return "given explicitly"
    if os.environ.get(DATA_ROOT_ENV):
        return f"from ${DATA_ROOT_ENV}"
    return f"the default; set ${DATA_ROOT_ENV} or --data-root to change it"


@dataclass(frozen=True)
class RemoteFile:
    """A file of a dataset and where to download it.

    Attributes
    ----------
    path : str
        Path relative to the dataset's folder under the data root.
    urls : tuple of str
        Download URLs, tried in order (official first, then mirrors). Empty when the
        file has no download.
    md5, sha256 : str or None
        Published checksum of the downloaded bytes.
    """

    path: str
    urls: tuple[str, ...] = ()
    md5: str | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class DatasetInfo:
    """A named dataset.

    Attributes
    ----------
    name : str
    kind : {"images", "odds", "benchmark", "tabular"}
        ``"odds"`` and ``"benchmark"`` (ADBench) are built-in tables with ground truth.
    title : str
        One-line description.
    folder : str
        Folder relative to the data root (built-ins) or "" (user datasets).
    files : tuple of RemoteFile
        Files that must be present; for CIFAR-10 the extracted batches.
    homepage : str
        Where a person can get the data by hand.
    archive : RemoteFile or None
        An archive that is downloaded and unpacked to give ``files`` (CIFAR-10).
    classes : tuple of str
        Class names of image datasets, indexed by label.
    path : pathlib.Path or None
        The file of a user dataset.
    label_column, ground_truth_column : str or None
        Columns of a user tabular dataset.
    channels_last : bool
        Whether a user image file stores ``(n, h, w, c)``.
    builtin : bool
    """

    name: str
    kind: str
    title: str
    folder: str = ""
    files: tuple[RemoteFile, ...] = ()
    homepage: str = ""
    archive: RemoteFile | None = None
    classes: tuple[str, ...] = ()
    path: Path | None = None
    label_column: str | None = "label"
    ground_truth_column: str | None = None
    channels_last: bool = False
    builtin: bool = False
    notes: str = field(default="", compare=False)

    def file_paths(self, data_root: str | os.PathLike | None = None) -> list[Path]:
        """Absolute paths of the files this dataset needs."""
        if self.path is not None:
            return [self.path]
        base = resolve_data_root(data_root) / self.folder
        return [base / f.path for f in self.files]

    def missing_files(self, data_root: str | os.PathLike | None = None) -> list[Path]:
        """The needed files that are absent under the data root."""
        return [p for p in self.file_paths(data_root) if not p.is_file()]


# --- built-in datasets -------------------------------------------------------------

_MNIST_URLS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/")
_MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
_FMNIST_URLS = (
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
)
_FMNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
_CIFAR_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)
# ODDS links its .mat files through Dropbox share links that are not stable. The stable
# copy is the PyOD authors' (downloaded from ODDS), pinned to a commit, with the sha256
# of exactly those bytes.
_PYOD = "https://raw.githubusercontent.com/yzhao062/pyod/{commit}/notebooks/data/{name}.mat"
_PYOD_COMMIT = "34f7996effac700a5166d882d5e94c6e6078fae3"
_ODDS = {
    # name: (title, sha256, commit)
    "arrhythmia": ("ODDS Arrhythmia (452 x 274, 66 outliers)", "e4d47e499591ae31e5d7f0cd983367092353eac240f48e14c9b36457edb3460d", _PYOD_COMMIT),
    "cardio": ("ODDS Cardiotocography (1831 x 21, 176 outliers)", "5e568b6a73711012c481fa6cc984ab9c68e9a4fa44d6aeb3b43efa381c3f695b", _PYOD_COMMIT),
    "satellite": ("ODDS Satellite (6435 x 36, 2036 outliers)", "6feac3112b9c14e1c3e60afc437f2f3d29dc1000119c9f950c628078778d6aa0", _PYOD_COMMIT),
    "satimage-2": ("ODDS Satimage-2 (5803 x 36, 71 outliers)", "95c37a07cea2cb201f6900d14f521510e10b6b2f0074c06ac46d3157440ec67b", _PYOD_COMMIT),
    "shuttle": ("ODDS Shuttle (49097 x 9, 3511 outliers)", "b6e396c92354d5dcf5036901e36dc58e2913f2d1a5e138c35a2bedf9c69db899", _PYOD_COMMIT),
    # thyroid was deleted from PyOD later; this commit still has it
    "thyroid": ("ODDS Thyroid (3772 x 6, 93 outliers)", "49155d7861b977e90808faf68343ff67a67f63090c2744d514dbb67ac68e7e33", "ef6d5e8dc828615f498286c1d6a22cbd02fd4cd2"),
}

# ADBench (Han et al., NeurIPS 2022) ships its classical sets as <number>_<Name>.npz; the
# data root stores them without the number. Pinned to a commit, sha256 of those bytes.
_ADBENCH = "https://raw.githubusercontent.com/Minqi824/ADBench/{commit}/adbench/datasets/Classical/{number}_{stem}.npz"
_ADBENCH_COMMIT = "3dac8221081e190f157d78e93bfa8867f90d0965"
#: Prefix of the ADBench datasets' registry names (``adbench-<lowercased file stem>``).
ADBENCH_PREFIX = "adbench-"
_ADBENCH_SETS = (
    # (ADBench number, file stem, rows, features, anomalies, sha256)
    (1, "ALOI", 49534, 27, 1508, "792d0b5bd1147bfc9574a1974f157b39fbd4cbed8ecd04cf983fd554498ed477"),
    (2, "annthyroid", 7200, 6, 534, "e738f7c58a8740d2c4aac4c71ff49ce5e1d1aa16f44178135fc9c09df05fad1b"),
    (4, "breastw", 683, 9, 239, "4f37ce07dbc25ddad8178fdc6d664ab46d2d0000ee28c2787c3c7ff3c03ef9f6"),
    (5, "campaign", 41188, 62, 4640, "74dd4d0072d6c6f1aabab63bc102f9633454f32bb936fa9bcfbd38f9f2386bcd"),
    (6, "cardio", 1831, 21, 176, "bc5009bde6930b4d298b594f31b34485a9a17210cff0e8fb00a8c3068b885a2d"),
    (7, "Cardiotocography", 2114, 21, 466, "5ae84910430f05923e11b6f537243263977c9136949dabd891e3570aeec51e29"),
    (8, "celeba", 202599, 39, 4547, "1cadfdea14cd8d240eca715a70c09c88af8621d086a7478c63f602d97adef0b5"),
    (10, "cover", 286048, 10, 2747, "945a097c3542ae81a551bf1c06dcad78a755d94f84fcaf1d60687e42d1a656df"),
    (11, "donors", 619326, 10, 36710, "5824ec854465f2763b4bfe3da1ae9f25ed5433b5c6e265d42e37da4f82a58679"),
    (14, "glass", 214, 7, 9, "aa7a8db1d475ba01a10488af454bc15220a3d5951b010b03b7020567d8152cdc"),
    (15, "Hepatitis", 80, 19, 13, "4a87a2f7d8013e5bfde63294fae61ec7a612322de72f338a7f9491749025ad98"),
    (16, "http", 567498, 3, 2211, "9d98710091551587f4740cfc851a6b064fff6319a337c2dc77ee6da4bcc2e02c"),
    (17, "InternetAds", 1966, 1555, 368, "bdd8ad5cf5bf2cb96cba53dde30d522d0f6a279083a8e2bc7efbac5981b04385"),
    (18, "Ionosphere", 351, 32, 126, "bca46cb0cfd1bf9ddef6cde5ad2215d54fb0189508d0d4c4eb98e788cad69001"),
    (19, "landsat", 6435, 36, 1333, "ba17e2158c07469597b89db49d3982c874c6b713ff6670721ddc88969da77987"),
    (21, "Lymphography", 148, 18, 6, "dad977b04f4ea65b78ccd0e9f76b45175bad605165b37e63f3cc177845e67037"),
    (22, "magic.gamma", 19020, 10, 6688, "0be375984d7af9ea7a63b12206c240840d8b7daa3607021c5fb8756407dd86f1"),
    (23, "mammography", 11183, 6, 260, "a0308ac9712d78321073b1c2dc98dc37665c0f35c1cc33019416fe8f8d7de7ea"),
    (27, "PageBlocks", 5393, 10, 510, "10a9b4d5bb5d3b9083caab4c4062f665610eada703c3d927bf7c34b1f2d0d223"),
    (30, "satellite", 6435, 36, 2036, "1f048f5686f1b8c16a227fdfa3c81a62cd9a92715714a6b24c69b1c5ad96b46e"),
    (31, "satimage-2", 5803, 36, 71, "1b056e357f801b8b20c3f380a30224a3c4088d7ed764ec5a24828dc9b1918d6f"),
    (32, "shuttle", 49097, 9, 3511, "26900b0f6be45d9ddb7a402c9b2f956ceda42d23a8ca4cf4406b8bc1352823d1"),
    (33, "skin", 245057, 3, 50859, "d02aa01ffc1b6bf2b8b1ac250c90e8a8eacd0cefc962940ed5cc4bf5deac9c95"),
    (34, "smtp", 95156, 3, 30, "d2569fc9bc12115419e3f5b37d19921e10e6c26e5ad1e61064cfb0fbc402dfdd"),
    (37, "Stamps", 340, 9, 31, "99fe739447284f613fa54bf2dccdb51c5120175ce6260adec6dad77576c42509"),
    (38, "thyroid", 3772, 6, 93, "8de161b3f235b7647bb0b39a836d983ff61d67bf234edac461da2d71e889cb87"),
    (39, "vertebral", 240, 6, 30, "0816286f92b96fe6867664a41a031ac7228dcfbf1a5feefe50ca3883b2e9073d"),
    (43, "WDBC", 367, 30, 10, "78d4606a1ab516f5b60b00c196497f3bbd6bd5e4548fd04cf5f2475209b34b85"),
    (45, "wine", 129, 13, 10, "d5ad8965d92cc57122fe1e6572bb301adbaf795b3e166d187ae00a704d8f6e20"),
    (46, "WPBC", 198, 33, 47, "68a6d67242643855713bcdad07d89ecc472bd00000dccc17ba87916eb2693d19"),
    (47, "yeast", 1484, 8, 507, "bbb15c873d78a4f6a589f46d0f75814595e2282d2ae7ce7779c750f276c3770d"),
)

_DIGITS = tuple(str(i) for i in range(10))
_FASHION = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
_CIFAR = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def _idx_files(md5s: dict[str, str], bases: tuple[str, ...]) -> tuple[RemoteFile, ...]:
    return tuple(RemoteFile(name, tuple(base + name for base in bases), md5=md5) for name, md5 in md5s.items())


def _builtins() -> dict[str, DatasetInfo]:
    datasets = {
        "mnist": DatasetInfo(
            name="mnist", kind="images", title="MNIST handwritten digits (60000 train + 10000 test, 28x28 gray)",
            folder="mnist", files=_idx_files(_MNIST_MD5, _MNIST_URLS),
            homepage="http://yann.lecun.com/exdb/mnist/", classes=_DIGITS, builtin=True,
        ),
        "fmnist": DatasetInfo(
            name="fmnist", kind="images", title="Fashion-MNIST (60000 train + 10000 test, 28x28 gray)",
            folder="fashion_mnist", files=_idx_files(_FMNIST_MD5, _FMNIST_URLS),
            homepage="https://github.com/zalandoresearch/fashion-mnist", classes=_FASHION, builtin=True,
        ),
        "cifar10": DatasetInfo(
            name="cifar10", kind="images", title="CIFAR-10 (50000 train + 10000 test, 32x32 RGB)",
            folder="cifar10", files=tuple(RemoteFile(f"cifar-10-batches-py/{b}") for b in _CIFAR_BATCHES),
            archive=RemoteFile(
                "cifar-10-python.tar.gz", ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",),
                md5="c58f30108f718f92721af3b95e74349a",
            ),
            homepage="https://www.cs.toronto.edu/~kriz/cifar.html", classes=_CIFAR, builtin=True,
        ),
    }
    for name, (title, sha256, commit) in _ODDS.items():
        datasets[name] = DatasetInfo(
            name=name, kind="odds", title=title, folder="odds",
            files=(RemoteFile(f"{name}.mat", (_PYOD.format(commit=commit, name=name),), sha256=sha256),),
            homepage="http://odds.cs.stonybrook.edu", label_column=None, ground_truth_column="y", builtin=True,
        )
    for number, stem, rows, features, anomalies, sha256 in _ADBENCH_SETS:
        # the five sets ADBench shares with ODDS keep both names: the ODDS .mat under the
        # ODDS name (the paper's Table 6), ADBench's own copy under adbench-<name>
        name = ADBENCH_PREFIX + stem.lower()
        datasets[name] = DatasetInfo(
            name=name, kind="benchmark", title=f"ADBench {stem} ({rows} x {features}, {anomalies} anomalies)",
            folder="adbench",
            files=(RemoteFile(
                f"{stem}.npz", (_ADBENCH.format(commit=_ADBENCH_COMMIT, number=number, stem=stem),), sha256=sha256,
            ),),
            homepage="https://github.com/Minqi824/ADBench", label_column=None, ground_truth_column="y", builtin=True,
        )
    return datasets


BUILTIN_DATASETS: dict[str, DatasetInfo] = _builtins()
_USER_DATASETS: dict[str, DatasetInfo] = {}

_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_IMAGE_SUFFIXES = (".npz",)


def _user_registry_path(data_root: str | os.PathLike | None) -> Path:
    return resolve_data_root(data_root) / USER_REGISTRY_FILE


def _info_from_entry(name: str, entry: dict, base: Path) -> DatasetInfo:
    path = Path(entry["path"]).expanduser()
    if not path.is_absolute():
        path = base / path
    kind = entry.get("kind", "tabular")
    if kind not in ("images", "tabular"):
        raise DataFileError(f"{base / USER_REGISTRY_FILE}: dataset {name!r} has unknown kind {kind!r}")
    return DatasetInfo(
        name=name, kind=kind, title=entry.get("description") or f"user dataset ({path.name})",
        path=path, label_column=entry.get("label_column", "label"),
        ground_truth_column=entry.get("ground_truth_column"),
        channels_last=bool(entry.get("channels_last", False)),
        classes=tuple(str(c) for c in entry.get("classes", ())),
    )


def _persistent_datasets(data_root: str | os.PathLike | None) -> dict[str, DatasetInfo]:
    registry = _user_registry_path(data_root)
    if not registry.is_file():
        return {}
    try:
        entries = json.loads(registry.read_text(encoding="utf-8"))
        if not isinstance(entries, dict):
            raise ValueError("expected a JSON object of name -> entry")
        return {name: _info_from_entry(name, entry, registry.parent) for name, entry in entries.items()}
    except (ValueError, KeyError, TypeError) as error:
        raise DataFileError(f"{registry} is not a valid dataset registry: {error}") from None


def list_datasets(data_root: str | os.PathLike | None = None) -> list[DatasetInfo]:
    """All known datasets: built-ins, then user datasets (in-process, then ``datasets.json``)."""
    merged = dict(BUILTIN_DATASETS)
    for name, info in _persistent_datasets(data_root).items():
        merged.setdefault(name, info)
    merged.update({k: v for k, v in _USER_DATASETS.items() if k not in BUILTIN_DATASETS})
    return list(merged.values())


def get_dataset(name: str, data_root: str | os.PathLike | None = None) -> DatasetInfo:
    """Look a dataset up by name.

    Raises
    ------
    InvalidInputError
        For an unknown name; the message lists the known names.
    """
    if name in BUILTIN_DATASETS:
        return BUILTIN_DATASETS[name]
    if name in _USER_DATASETS:
        return _USER_DATASETS[name]
    persistent = _persistent_datasets(data_root)
    if name in persistent:
        return persistent[name]
    known = [info.name for info in list_datasets(data_root)]
    raise InvalidInputError(f"unknown dataset {name!r}; known datasets: {', '.join(known)}")


def register_dataset(
    name: str,
    path: str | os.PathLike,
    *,
    kind: str = "tabular",
    label_column: str | None = "label",
    ground_truth_column: str | None = None,
    channels_last: bool = False,
    classes: tuple[str, ...] | list[str] = (),
    description: str = "",
    overwrite: bool = False,
    persist: bool = False,
    data_root: str | os.PathLike | None = None,
) -> DatasetInfo:
    """Make a user's file available by name (to loaders and the ``deepsad data`` commands).

    Parameters
    ----------
    name : str
        Letters, digits, ``_``, ``.`` and ``-``; may not shadow a built-in dataset.
    path : str or os.PathLike
        For ``kind="tabular"`` a file :func:`deepsad.data.read_table` reads; for
        ``kind="images"`` an ``.npz`` file with ``X`` (``(n, h, w)``, ``(n, c, h, w)`` or,
        with ``channels_last``, ``(n, h, w, c)``; uint8 or floats in [0, 1]) and class labels
        ``y``, optionally a test split ``X_test``, ``y_test``.
    kind : {"tabular", "images"}
    label_column : str or None
        Semi-label column of a tabular file.
    ground_truth_column : str or None
        0/1 ground-truth column of a tabular file (needed to draw ODDS-style scenarios).
    channels_last : bool
        Image layout, see ``path``.
    classes : sequence of str
        Optional class names of an image dataset.
    description : str
    overwrite : bool
        Replace an existing user dataset of that name.
    persist : bool
        Also record the dataset in ``<data root>/datasets.json`` (written atomically) so
        later processes and the CLI know it.
    data_root : str or os.PathLike, optional
        The data root whose ``datasets.json`` is written with ``persist``.

    Returns
    -------
    DatasetInfo

    Raises
    ------
    InvalidInputError
        For a bad name or kind, a name already taken, or an image file that is not ``.npz``.
    DataFileError
        If ``path`` does not exist.
    """
    if not isinstance(name, str) or not _NAME_PATTERN.match(name):
        raise InvalidInputError(
            f"dataset name must start with a letter or digit and hold only letters, digits, '_', '.', '-'; got {name!r}"
        )
    if name in BUILTIN_DATASETS:
        raise InvalidInputError(f"{name!r} is a built-in dataset; choose another name")
    if kind not in ("tabular", "images"):
        raise InvalidInputError(f"kind must be 'tabular' or 'images', got {kind!r}")
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise DataFileError(f"cannot register {name!r}: file not found: {path}")
    if kind == "images" and path.suffix.lower() not in _IMAGE_SUFFIXES:
        raise InvalidInputError(f"an image dataset must be an .npz file with arrays X and y, got {path.name}")
    if kind == "tabular":
        from deepsad.data.tabular import TABLE_SUFFIXES

        if path.suffix.lower() not in TABLE_SUFFIXES:
            raise InvalidInputError(
                f"unsupported tabular file type {path.suffix!r}; supported: {', '.join(TABLE_SUFFIXES)}"
            )
    existing = _USER_DATASETS.get(name) or _persistent_datasets(data_root).get(name)
    if existing is not None and not overwrite:
        raise InvalidInputError(f"a dataset named {name!r} is already registered ({existing.path}); pass overwrite=True")
    entry = {
        "path": str(path), "kind": kind, "label_column": label_column,
        "ground_truth_column": ground_truth_column, "channels_last": bool(channels_last),
        "classes": [str(c) for c in classes], "description": description,
    }
    if persist:
        _write_persistent(name, entry, data_root)
    info = _info_from_entry(name, entry, path.parent)
    _USER_DATASETS[name] = info
    return info


def unregister_dataset(name: str, *, persist: bool = False, data_root: str | os.PathLike | None = None) -> None:
    """Forget a user dataset (in this process; with ``persist`` also in ``datasets.json``)."""
    if name in BUILTIN_DATASETS:
        raise InvalidInputError(f"{name!r} is a built-in dataset and cannot be removed")
    found = _USER_DATASETS.pop(name, None) is not None
    if persist:
        found = _write_persistent(name, None, data_root) or found
    if not found:
        raise InvalidInputError(f"no user dataset named {name!r} is registered")


def _write_persistent(name: str, entry: dict | None, data_root: str | os.PathLike | None) -> bool:
    from deepsad.data.atomic import atomic_output

    registry = _user_registry_path(data_root)
    entries: dict = {}
    if registry.is_file():
        _persistent_datasets(data_root)  # validates the existing file first
        entries = json.loads(registry.read_text(encoding="utf-8"))
    existed = name in entries
    if entry is None:
        entries.pop(name, None)
    else:
        entries[name] = entry
    registry.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(registry) as (handle, _):
        handle.write(json.dumps(entries, indent=2, sort_keys=True).encode("utf-8"))
    return existed
