"""Attributes of a package loaded on first use (PEP 562), for the package ``__init__`` files.

``import deepsad`` and the ``deepsad data`` / ``deepsad experiment list`` commands should
not pay for importing torch and scikit-learn before they need them; the packages that
re-export heavy names therefore load them when first read. Private to :mod:`deepsad`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from importlib import import_module
from typing import Any


def lazy_attributes(
    package: str, namespace: dict[str, Any], sources: Mapping[str, str], public: Iterable[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module ``__getattr__`` and ``__dir__`` of a package with lazily imported names.

    Parameters
    ----------
    package : str
        The package's dotted name, for the ``AttributeError`` message.
    namespace : dict
        The package's ``globals()``: a name, once imported, is stored there, so that later
        reads are plain attribute reads and never reach ``__getattr__`` again.
    sources : mapping of str to str
        Name -> the module that defines it.
    public : iterable of str
        The package's ``__all__``, listed by ``dir()`` before they are loaded.

    Returns
    -------
    __getattr__ : callable
        Imports ``sources[name]`` on first read of ``name``; ``AttributeError`` for others.
    __dir__ : callable
        The package's names, loaded or not.
    """
    listed = set(public)

    def __getattr__(name: str) -> Any:
        if name not in sources:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(sources[name]), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | listed)

    return __getattr__, __dir__
