"""Downloads with checksums, written atomically (no half file is ever left behind).

Only the standard library's urllib is used. Each file goes to a temporary file in its
destination folder and is moved into place after its checksum matched; a dropped
connection, a wrong checksum or Ctrl-C removes the temporary file.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from deepsad.data.atomic import atomic_output
from deepsad.data.registry import DatasetInfo, get_dataset, resolve_data_root
from deepsad.errors import DataFileError, InvalidInputError

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20


def file_checksum(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """Hex digest of a file (``"md5"`` or ``"sha256"``), read in 1 MiB chunks."""
    digest = hashlib.new(algorithm, usedforsecurity=False) if algorithm == "md5" else hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _user_agent() -> str:
    from deepsad._version import __version__

    return f"deepsad/{__version__} (+urllib)"


def _fetch_one(url: str, destination: Path, *, md5: str | None, sha256: str | None, timeout: float, progress: bool) -> None:
    """Download ``url`` to ``destination`` atomically or raise; no partial file survives."""
    from tqdm.auto import tqdm

    request = urllib.request.Request(url, headers={"User-Agent": _user_agent()})
    hashes = {}
    if md5:
        hashes["md5"] = hashlib.md5(usedforsecurity=False)
    if sha256:
        hashes["sha256"] = hashlib.sha256()
    with atomic_output(destination) as (handle, _tmp):
        with urllib.request.urlopen(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            received = 0
            with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=destination.name,
                      disable=not progress, leave=False) as bar:
                while True:
                    chunk = response.read(_CHUNK)
                    if not chunk:
                        break
                    handle.write(chunk)
                    for digest in hashes.values():
                        digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        if total is not None and received != total:
            raise DataFileError(f"download of {url} was cut off after {received} of {total} bytes")
        for algorithm, expected in (("md5", md5), ("sha256", sha256)):
            if expected:
                got = hashes[algorithm].hexdigest()
                if got != expected.lower():
                    raise DataFileError(
                        f"checksum mismatch for {url}: expected {algorithm} {expected}, got {got}; "
                        "the file was not saved"
                    )


def download_file(
    urls: str | Sequence[str],
    destination: str | os.PathLike,
    *,
    md5: str | None = None,
    sha256: str | None = None,
    timeout: float = 60.0,
    progress: bool = True,
) -> Path:
    """Download a file, check its checksum and move it into place atomically.

    Parameters
    ----------
    urls : str or sequence of str
        The URL, or several mirrors tried in order until one gives the right bytes.
    destination : str or os.PathLike
        Final path; its folder is created. An existing file is replaced only on success.
    md5, sha256 : str, optional
        Published checksum(s) the downloaded bytes must match.
    timeout : float, default 60
        Seconds to wait for the server at each network operation.
    progress : bool, default True
        Show a tqdm progress bar on stderr.

    Returns
    -------
    pathlib.Path
        ``destination``.

    Raises
    ------
    DataFileError
        If no URL delivered the file: network error (e.g. offline), HTTP error, cut-off
        transfer or checksum mismatch. The message names the URL(s), the destination and
        the last error. Nothing is left at ``destination`` (nor a temporary file).
    """
    url_list = [urls] if isinstance(urls, str) else list(urls)
    if not url_list:
        raise InvalidInputError(f"no download URL for {destination}")
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    for url in url_list:
        logger.info("downloading %s to %s", url, destination)
        try:
            _fetch_one(url, destination, md5=md5, sha256=sha256, timeout=timeout, progress=progress)
            return destination
        except DataFileError as error:
            errors.append(str(error))
        except urllib.error.HTTPError as error:
            errors.append(f"{url}: HTTP {error.code} {error.reason}")
        except urllib.error.URLError as error:
            errors.append(f"{url}: {error.reason}")
        except (http.client.HTTPException, OSError) as error:
            # IncompleteRead, RemoteDisconnected, timeouts, resets
            errors.append(f"{url}: connection failed ({type(error).__name__}: {error})")
        logger.warning("download failed: %s", errors[-1])
    raise DataFileError(
        f"could not download {destination.name} to {destination.parent} "
        f"(tried {len(url_list)} URL(s); last error: {errors[-1]}); "
        "if this machine is offline, download it elsewhere and copy it there"
    )


def _safe_extract(archive: Path, prefix: str, target: Path, wanted: set[str]) -> None:
    """Extract regular files under ``prefix`` from a tar archive, atomically per file."""
    staging = Path(tempfile.mkdtemp(prefix=".extract.", dir=target))
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                name = member.name
                parts = Path(name).parts
                # refuse absolute paths, '..', links and devices: only plain files under prefix
                if not member.isfile() or name.startswith("/") or ".." in parts or not name.startswith(prefix):
                    continue
                if name not in wanted:
                    continue
                source = tar.extractfile(member)
                if source is None:  # pragma: no cover - isfile() members always have data
                    continue
                staged = staging / Path(name).name
                with source, open(staged, "wb") as out:
                    shutil.copyfileobj(source, out, _CHUNK)
                final = target / name
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staged, final)
    except (tarfile.TarError, EOFError, OSError) as error:
        raise DataFileError(f"{archive} is not a readable archive (truncated or corrupt): {error}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def fetch_files(
    info: DatasetInfo,
    data_root: str | os.PathLike | None = None,
    *,
    force: bool = False,
    progress: bool = True,
    timeout: float = 60.0,
    keep_archive: bool = False,
) -> list[Path]:
    """Download the files of ``info`` that are missing under the data root.

    Returns
    -------
    list of pathlib.Path
        The files that were downloaded (empty when everything was present).

    Raises
    ------
    DataFileError
        If a download fails or a file has no download URL (the message says where to get it).
    """
    if info.path is not None:
        raise InvalidInputError(f"{info.name!r} is a user dataset ({info.path}); it has nothing to download")
    root = resolve_data_root(data_root)
    folder = root / info.folder
    needed = [f for f in info.files if force or not (folder / f.path).is_file()]
    if not needed:
        return []
    folder.mkdir(parents=True, exist_ok=True)
    if info.archive is not None:
        archive_path = folder / info.archive.path
        if force or not archive_path.is_file():
            download_file(info.archive.urls, archive_path, md5=info.archive.md5, sha256=info.archive.sha256,
                          timeout=timeout, progress=progress)
        prefix = needed[0].path.split("/", 1)[0] + "/"
        _safe_extract(archive_path, prefix, folder, {f.path for f in needed})
        if not keep_archive:
            archive_path.unlink(missing_ok=True)
        still_missing = [folder / f.path for f in needed if not (folder / f.path).is_file()]
        if still_missing:
            raise DataFileError(f"{info.archive.path} did not contain {', '.join(str(p) for p in still_missing)}")
        return [folder / f.path for f in needed]
    fetched = []
    for remote in needed:
        if not remote.urls:
            raise DataFileError(f"{remote.path} of {info.name} has no download URL; get it from {info.homepage}")
        fetched.append(download_file(remote.urls, folder / remote.path, md5=remote.md5, sha256=remote.sha256,
                                     timeout=timeout, progress=progress))
    return fetched


def fetch_dataset(
    name: str,
    data_root: str | os.PathLike | None = None,
    *,
    force: bool = False,
    progress: bool = True,
    timeout: float = 60.0,
) -> list[Path]:
    """Download a built-in dataset's missing files into the data root.

    Parameters
    ----------
    name : str
        A built-in dataset (``mnist``, ``fmnist``, ``cifar10`` or an ODDS name).
    data_root : str or os.PathLike, optional
        See :func:`deepsad.data.resolve_data_root`.
    force : bool, default False
        Download again even if the files are present.
    progress : bool, default True
    timeout : float, default 60

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    return fetch_files(get_dataset(name, data_root), data_root, force=force, progress=progress, timeout=timeout)
