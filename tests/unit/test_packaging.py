"""The wheel's contents: every package is listed and the experiment configs ship with it."""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def _setuptools_table() -> dict:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_python_package_under_src_is_listed():
    listed = set(_setuptools_table()["packages"])
    found = {
        ".".join(init.parent.relative_to(REPO_ROOT / "src").parts)
        for init in (REPO_ROOT / "src").rglob("__init__.py")
    }
    assert found <= listed, f"add to [tool.setuptools] packages in pyproject.toml: {sorted(found - listed)}"


def test_the_configs_folder_is_packaged_as_deepsad_experiments_configs():
    table = _setuptools_table()
    assert table["package-dir"]["deepsad.experiments.configs"] == "configs"
    assert "deepsad.experiments.configs" in table["packages"]
    assert table["package-data"]["deepsad.experiments.configs"] == ["*.toml"]
    shipped = sorted(p.stem for p in (REPO_ROOT / "configs").glob("*.toml"))
    assert shipped == ["eta", "rep_dim", "table3", "table4", "table5", "table6", "table6_defaults", "tabular"]


def test_an_installed_layout_finds_configs_next_to_the_module(tmp_path, monkeypatch):
    """In a wheel the configs sit in deepsad/experiments/configs; find_config must look there."""
    import deepsad.experiments.config as config_module

    fake_module_dir = tmp_path / "site" / "deepsad" / "experiments"
    (fake_module_dir / "configs").mkdir(parents=True)
    (fake_module_dir / "configs" / "table6.toml").write_text((REPO_ROOT / "configs" / "table6.toml").read_text())
    monkeypatch.setattr(config_module, "CONFIG_DIR", tmp_path / "no-checkout" / "configs")
    monkeypatch.setattr(config_module, "__file__", str(fake_module_dir / "config.py"))
    monkeypatch.chdir(tmp_path)
    assert config_module.find_config("table6") == fake_module_dir / "configs" / "table6.toml"
    assert config_module.shipped_configs() == ["table6"]
