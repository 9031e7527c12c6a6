"""`deepsad fit` / `deepsad score` refuse what would give a silently wrong or lost result (issue 16).

Items 1 (an absent --label-column), 3 (an unwritable or occupied fit --out, --force),
4 (score --out onto its input, a directory or an unwritable place) and 8 (a fit that
would save an untrained model). Every refusal is one line and exit status 2.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from deepsad.cli import main
from deepsad.persistence import CONFIG_FILE, weights_path

FAST = ["--epochs", "1", "--batch-size", "32", "--n-networks", "1", "--no-progress"]


@pytest.fixture()
def table(tmp_path: Path) -> Path:
    """A small CSV with four features and a semi-label column ``label`` (three labeled anomalies)."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(60, 4)), columns=["a", "b", "c", "d"])
    frame["label"] = 0
    frame.loc[:2, "label"] = -1
    path = tmp_path / "train.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture()
def model(tmp_path: Path, table: Path) -> Path:
    """A model directory fitted on ``table``."""
    directory = tmp_path / "model"
    assert main(["fit", str(table), "--out", str(directory), *FAST]) == 0
    return directory


@pytest.fixture()
def read_only_dir(tmp_path: Path):
    """An existing directory in which no file can be created, even by root."""
    directory = tmp_path / "read-only"
    directory.mkdir()
    directory.chmod(0o555)
    try:
        if not _can_create_a_file_in(directory):
            yield directory
            return
        # root ignores permission bits: fall back to a kernel file system that refuses new files
        for candidate in (Path("/sys"), Path("/proc")):
            if candidate.is_dir() and not _can_create_a_file_in(candidate):
                yield candidate
                return
        pytest.skip("no directory here refuses new files (running as root without /sys or /proc)")
    finally:
        directory.chmod(0o755)


def _can_create_a_file_in(directory: Path) -> bool:
    probe = directory / f".probe-{uuid.uuid4().hex}"
    try:
        probe.touch(exist_ok=False)
    except OSError:
        return False
    probe.unlink()
    return True


@pytest.fixture()
def no_training(monkeypatch):
    """Fail the test if any detector starts training: a refusal must come before it."""

    def must_not_train(self, *args, **kwargs):
        pytest.fail(f"{type(self).__name__}.fit ran although the command should have been refused first")

    from deepsad.baselines import CAE
    from deepsad.detectors import DeepSAD, DeepSVDD

    for cls in (DeepSAD, DeepSVDD, CAE):
        monkeypatch.setattr(cls, "fit", must_not_train)


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("deepsad: error:"), err
    return err[0]


def _stray_temporary_files(*directories: Path) -> list[Path]:
    return [path for directory in directories if directory.is_dir() for path in directory.glob(".*tmp*")]


# ---------------------------------------------------------------- 1: --label-column


def test_an_explicit_label_column_that_is_absent_is_an_error(tmp_path, table, capsys, no_training):
    assert main(["fit", str(table), "--out", str(tmp_path / "m"), "--label-column", "lbl", *FAST]) == 2
    message = _one_line_error(capsys)
    assert "'lbl'" in message and str(table) in message and "label" in message  # names the columns there
    assert not (tmp_path / "m").exists()


def test_an_explicit_label_column_on_a_file_without_named_columns_is_an_error(tmp_path, capsys, no_training):
    path = tmp_path / "train.npy"
    np.save(path, np.random.default_rng(0).normal(size=(40, 3)))
    assert main(["fit", str(path), "--out", str(tmp_path / "m"), "--label-column", "label", *FAST]) == 2
    assert "'label'" in _one_line_error(capsys)


def test_the_default_label_column_stays_optional(tmp_path, table, capsys):
    frame = pd.read_csv(table).drop(columns="label")
    unlabeled = tmp_path / "unlabeled.csv"
    frame.to_csv(unlabeled, index=False)
    assert main(["fit", str(unlabeled), "--out", str(tmp_path / "m"), *FAST]) == 0
    from deepsad import load

    assert load(tmp_path / "m").n_features_in_ == 4


def test_an_explicit_label_column_that_exists_is_used(tmp_path, table):
    frame = pd.read_csv(table).rename(columns={"label": "y"})
    renamed = tmp_path / "renamed.csv"
    frame.to_csv(renamed, index=False)
    assert main(["fit", str(renamed), "--out", str(tmp_path / "m"), "--label-column", "y", *FAST]) == 0
    from deepsad import load

    assert load(tmp_path / "m").n_features_in_ == 4


# ---------------------------------------------------------------- 3: fit --out


def test_fit_out_on_an_existing_file_is_refused_before_training(tmp_path, table, capsys, no_training):
    target = tmp_path / "notes.txt"
    target.write_text("keep me\n")
    assert main(["fit", str(table), "--out", str(target), *FAST]) == 2
    assert str(target) in _one_line_error(capsys)
    assert target.read_text() == "keep me\n"


def test_fit_out_below_an_existing_file_is_refused_before_training(tmp_path, table, capsys, no_training):
    target = tmp_path / "notes.txt"
    target.write_text("keep me\n")
    assert main(["fit", str(table), "--out", str(target / "model"), *FAST]) == 2
    assert str(target) in _one_line_error(capsys)
    assert target.read_text() == "keep me\n"


def test_fit_out_in_a_read_only_place_is_refused_before_training(table, capsys, no_training, read_only_dir):
    target = read_only_dir / f"deepsad-model-{uuid.uuid4().hex}"
    assert main(["fit", str(table), "--out", str(target), *FAST]) == 2
    assert str(read_only_dir) in _one_line_error(capsys)
    assert not target.exists()


def test_fit_out_on_a_non_empty_directory_without_a_model_is_refused(tmp_path, table, capsys, no_training):
    target = tmp_path / "results"
    target.mkdir()
    (target / "keep.csv").write_text("x\n1\n")
    for extra in ([], ["--force"]):  # --force replaces models only, never other files
        assert main(["fit", str(table), "--out", str(target), *FAST, *extra]) == 2
        assert str(target) in _one_line_error(capsys)
    assert sorted(p.name for p in target.iterdir()) == ["keep.csv"]


def test_fit_out_on_an_empty_directory_is_fine(tmp_path, table):
    target = tmp_path / "empty"
    target.mkdir()
    assert main(["fit", str(table), "--out", str(target), *FAST]) == 0
    assert (target / CONFIG_FILE).is_file()


def test_an_existing_model_is_kept_without_force(model, table, capsys, monkeypatch):
    before = {path: path.read_bytes() for path in (model / CONFIG_FILE, weights_path(model))}
    capsys.readouterr()
    from deepsad.detectors import DeepSAD

    monkeypatch.setattr(DeepSAD, "fit", lambda self, *a, **k: pytest.fail("trained before refusing"))
    assert main(["fit", str(table), "--out", str(model), *FAST, "--seed", "1"]) == 2
    message = _one_line_error(capsys)
    assert str(model) in message and "--force" in message
    assert {path: path.read_bytes() for path in before} == before


def test_force_replaces_an_existing_model(model, table):
    from deepsad import load

    assert load(model).random_state == 0
    assert main(["fit", str(table), "--out", str(model), *FAST, "--seed", "1", "--force"]) == 0
    assert load(model).random_state == 1
    assert not _stray_temporary_files(model)


# ---------------------------------------------------------------- 4: score --out


def test_score_out_onto_the_input_data_is_refused(model, table, capsys):
    before = table.read_bytes()
    capsys.readouterr()
    for spelling in (table, table.parent / "." / table.name, Path(os.path.relpath(table))):
        assert main(["score", str(model), str(table), "--out", str(spelling)]) == 2
        assert "input" in _one_line_error(capsys)
    assert table.read_bytes() == before


def test_score_out_onto_a_model_file_is_refused(model, table, capsys):
    from deepsad import load

    capsys.readouterr()
    assert main(["score", str(model), str(table), "--out", str(model / CONFIG_FILE)]) == 2
    assert CONFIG_FILE in _one_line_error(capsys)
    load(model)  # still intact


def test_score_out_on_a_directory_is_refused_without_leftovers(tmp_path, model, table, capsys):
    target = tmp_path / "scores"
    target.mkdir()
    capsys.readouterr()
    assert main(["score", str(model), str(table), "--out", str(target)]) == 2
    assert str(target) in _one_line_error(capsys)
    assert list(target.iterdir()) == []
    assert not _stray_temporary_files(tmp_path, target)


def test_score_out_in_a_read_only_place_is_refused_without_leftovers(tmp_path, model, table, capsys, read_only_dir):
    target = read_only_dir / f"scores-{uuid.uuid4().hex}.csv"
    capsys.readouterr()
    assert main(["score", str(model), str(table), "--out", str(target)]) == 2
    assert str(read_only_dir) in _one_line_error(capsys)
    assert not target.exists()
    assert not _stray_temporary_files(tmp_path, read_only_dir)


def test_score_out_below_a_file_is_refused(tmp_path, model, table, capsys):
    capsys.readouterr()
    assert main(["score", str(model), str(table), "--out", str(table / "scores.csv")]) == 2
    assert str(table) in _one_line_error(capsys)


# ---------------------------------------------------------------- 8: untrained models


@pytest.mark.parametrize(
    "method, options",
    [
        ("deepsad", ["--epochs", "0", "--pretrain-epochs", "0"]),
        ("deepsad", ["--epochs", "0"]),  # tabular data: no pretraining unless asked for
        ("deepsad", ["--epochs", "0", "--pretrain", "--pretrain-epochs", "0"]),
        ("deepsad", ["--param", "epochs=0"]),
        ("deepsvdd", ["--epochs", "0", "--no-pretrain"]),
        ("cae", ["--epochs", "0"]),
        ("supervised", ["--epochs", "0"]),
        ("ssdgm", ["--epochs", "0"]),
        ("devnet", ["--epochs", "0"]),
        ("hybrid-iforest", ["--epochs", "0"]),
    ],
)
def test_a_fit_that_would_save_an_untrained_model_is_refused(tmp_path, table, capsys, no_training, method, options):
    assert main(["fit", str(table), "--out", str(tmp_path / "m"), "--method", method, *options, "--no-progress"]) == 2
    assert "untrained" in _one_line_error(capsys)
    assert not (tmp_path / "m").exists()


def test_zero_epochs_after_pretraining_trains_with_a_warning(tmp_path, table, caplog):
    options = ["--epochs", "0", "--pretrain", "--pretrain-epochs", "1", "--batch-size", "32", "--n-networks", "1"]
    with caplog.at_level("WARNING"):
        assert main(["fit", str(table), "--out", str(tmp_path / "m"), *options, "--no-progress"]) == 0
    assert any("0 training epochs" in record.getMessage() for record in caplog.records)


def test_zero_pretraining_epochs_with_training_is_fine(tmp_path, table):
    assert main(["fit", str(table), "--out", str(tmp_path / "m"), *FAST, "--pretrain-epochs", "0"]) == 0
