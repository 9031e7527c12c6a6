"""The wheel's contents: every package is listed and the experiment configs ship with it."""

from __future__ import annotations

import sys

from helpers import REPO_ROOT

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


def _project_table() -> dict:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]


def test_the_license_file_is_the_license_pyproject_names():
    project = _project_table()
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    assert (REPO_ROOT / "LICENSE").read_text().startswith("MIT License")


def test_the_all_extra_holds_every_user_extra():
    extras = _project_table()["optional-dependencies"]
    user_extras = set(extras) - {"all", "test", "bench"}
    assert extras["all"] == [f"deepsad[{','.join(sorted(user_extras))}]"]


def test_help_and_data_commands_start_without_torch():
    """`deepsad --help` and the data commands must not pay torch's import time (seconds)."""
    import subprocess

    script = (
        "import sys\n"
        "from deepsad.cli import main\n"
        "for argv in (['--help'], ['fit', '--help'], ['data', '--help']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "main(['data', 'list', '--data-root', sys.argv[1]])\n"
        "heavy = [name for name in ('torch', 'sklearn', 'ray') if name in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(REPO_ROOT / "no-such-data-root")],
        capture_output=True, text=True, timeout=120, check=True,
    )
    assert "HEAVY []" in done.stdout, done.stdout[-500:] + done.stderr[-500:]
