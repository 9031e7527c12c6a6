"""The package's import architecture: no import cycles, no private names across modules.

The checker is ``scripts/check_architecture.py``; these tests run it on the real source
tree and, so that they cannot pass vacuously, on small synthetic packages whose findings
are known.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from helpers import REPO_ROOT, load_script

checker = load_script(REPO_ROOT / "scripts" / "check_architecture.py", "deepsad_check_architecture")


def _package(root: Path, files: dict[str, str]) -> Path:
    """Write the synthetic package ``pkg`` and return its ``src``.

    ``files`` maps a path relative to ``root/src`` to its source; ``pkg/__init__.py`` is
    empty unless given, since most cases are about the modules beside it.
    """
    src = root / "src"
    for name, source in {"pkg/__init__.py": "", **files}.items():
        path = src / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
    return src


def _check(root: Path, files: dict[str, str]) -> checker.Report:
    """The checker's report on the synthetic package ``pkg`` written by :func:`_package`."""
    return checker.check(_package(root, files), "pkg")


# ---------------------------------------------------------------- the real source tree


@pytest.fixture(scope="module")
def report():
    return checker.check(REPO_ROOT / "src", "deepsad")


def test_core_packages_have_no_cycles_or_private_imports(report):
    core = report.without("deepsad.experiments")
    assert core.clean, "\n" + checker.format_report(core)


def test_experiments_package_has_no_cycles_or_private_imports(report):
    experiments = report.restricted_to("deepsad.experiments")
    assert experiments.clean, "\n" + checker.format_report(experiments)


def test_the_checker_sees_the_whole_package(report):
    modules = checker.discover_modules(REPO_ROOT / "src", "deepsad")
    assert {"deepsad", "deepsad.persistence", "deepsad.detectors.deep_base", "deepsad.cli"} <= set(modules)
    edges = checker.import_edges(modules, "deepsad")
    # a lazy import inside a function is an edge of the graph
    assert any(edge.lazy for edge in edges)


def test_command_line_exit_status(tmp_path, capsys):
    clean = _package(tmp_path / "clean", {"pkg/a.py": "from pkg.b import f\n", "pkg/b.py": "def f(): pass\n"})
    assert checker.main(["--src", str(clean), "--package", "pkg"]) == 0
    assert "no import cycles" in capsys.readouterr().out
    dirty = _package(tmp_path / "dirty", {"pkg/a.py": "from pkg.b import _f\n", "pkg/b.py": "def _f(): pass\n"})
    assert checker.main(["--src", str(dirty), "--package", "pkg", "--json"]) == 1
    assert '"_f"' in capsys.readouterr().out


# ---------------------------------------------------------------- the checker itself


def test_a_cycle_through_a_lazy_import_is_found(tmp_path):
    found = _check(tmp_path, {
        "pkg/a.py": "from pkg.b import g\n\ndef f():\n    return g()\n",
        "pkg/b.py": "def g():\n    from pkg.a import f  # lazy, still a circle\n    return f\n",
        "pkg/c.py": "import pkg.a\n",
    })
    assert found.cycles == [["pkg.a", "pkg.b"]]
    assert found.chains == [[["pkg.a", "pkg.b", "pkg.a"]]]
    assert not found.private_imports


def test_relative_imports_and_submodule_names_resolve(tmp_path):
    # ``from . import b`` is an edge to the module pkg.b, not to the package's __init__:
    # the circle is a <-> b, and pkg (which imports a) is not part of it
    found = _check(tmp_path, {
        "pkg/__init__.py": "from pkg.a import f\n",
        "pkg/a.py": "from . import b\n\ndef f():\n    return b.g()\n",
        "pkg/b.py": "def g():\n    from .a import f\n    return f\n",
    })
    assert found.cycles == [["pkg.a", "pkg.b"]]


def test_a_module_importing_a_name_from_its_own_package_init_is_a_cycle(tmp_path):
    files = {
        "pkg/__init__.py": "from pkg.sub import f\nfrom pkg.helper import h\n",
        "pkg/helper.py": "def h(): pass\n",
        "pkg/sub.py": "def f():\n    from pkg import h\n    return h\n",
    }
    assert _check(tmp_path / "one", files).cycles == [["pkg", "pkg.sub"]]
    # importing the defining module instead closes no circle
    files["pkg/sub.py"] = "def f():\n    from pkg.helper import h\n    return h\n"
    assert _check(tmp_path / "two", files).clean


def test_type_checking_imports_count_in_the_graph(tmp_path):
    src = _package(tmp_path, {
        "pkg/__init__.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import f\n",
        "pkg/a.py": "def f():\n    from pkg import VERSION\n",
    })
    found = checker.check(src, "pkg")
    assert found.cycles == [["pkg", "pkg.a"]]
    edges = checker.import_edges(checker.discover_modules(src, "pkg"), "pkg")
    assert [edge.type_checking for edge in edges if edge.importer == "pkg"] == [True]


def test_a_private_name_imported_from_another_module_is_found(tmp_path):
    found = _check(tmp_path, {
        "pkg/a.py": "def _helper(): pass\n",
        "pkg/b.py": "def f():\n    from pkg.a import _helper\n    return _helper\n",
        "pkg/c.py": "from pkg import a\n\ndef g():\n    return a._helper()\n",
    })
    assert [(p.importer, p.source, p.name) for p in found.private_imports] == [
        ("pkg.b", "pkg.a", "_helper"),
        ("pkg.c", "pkg.a", "_helper"),
    ]
    assert not found.cycles


def test_same_package_private_modules_and_private_aliases_are_allowed(tmp_path):
    found = _check(tmp_path, {
        "pkg/__init__.py": "from pkg.models._blocks import Block as _Block\n",
        "pkg/models/__init__.py": "from pkg.models._blocks import Block\n",
        "pkg/models/_blocks.py": "class Block: pass\n",
        "pkg/models/lenet.py": "from pkg.models import _blocks\nfrom pkg.models._blocks import Block as _B\n",
        "pkg/models/deep/net.py": "import pkg.models._blocks\n",
        "pkg/other.py": "from pkg.models.lenet import _B as Public\nfrom pkg.models import Block as _Private\n",
    })
    # pkg/__init__ is inside pkg, not inside pkg.models: the only private-module finding;
    # other.py imports the *name* _B, which is private whatever it is bound to
    assert sorted((p.importer, p.name) for p in found.private_imports) == [
        ("pkg", "pkg.models._blocks"),
        ("pkg.other", "_B"),
    ]


def test_a_private_module_imported_from_outside_its_package_is_found(tmp_path):
    found = _check(tmp_path, {
        "pkg/data/__init__.py": "",
        "pkg/data/_atomic.py": "def write(): pass\n",
        "pkg/cli.py": "def main():\n    from pkg.data._atomic import write\n",
        "pkg/tool.py": "import pkg.data\n\ndef run():\n    return pkg.data._atomic.write()\n",
    })
    assert sorted((p.importer, p.name) for p in found.private_imports) == [
        ("pkg.cli", "pkg.data._atomic"),
        ("pkg.tool", "pkg.data._atomic"),
    ]
