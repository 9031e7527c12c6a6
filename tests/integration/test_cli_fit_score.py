"""`deepsad fit` / `deepsad score` / `deepsad demo` end to end, in-process."""

from __future__ import annotations

import csv

import numpy as np
import pandas as pd
import pytest

from deepsad.cli import main
from deepsad.persistence import weights_path

FAST = ["--epochs", "2", "--pretrain-epochs", "2", "--batch-size", "32", "--no-progress"]


@pytest.fixture()
def table(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 4))
    X[:5] += 6
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    frame["label"] = 0
    frame.loc[:2, "label"] = -1
    path = tmp_path / "train.csv"
    frame.to_csv(path, index=False)
    return path, frame


def test_fit_then_score_writes_one_row_per_input_row(tmp_path, table, capsys):
    path, frame = table
    assert main(["fit", str(path), "--out", str(tmp_path / "model"), *FAST]) == 0
    assert "saved to" in capsys.readouterr().out
    out = tmp_path / "scores.csv"
    assert main(["score", str(tmp_path / "model"), str(path), "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == len(frame)
    assert set(rows[0]) == {"anomaly_score", "is_anomaly"}
    scores = np.array([float(r["anomaly_score"]) for r in rows])
    assert scores[:5].mean() > np.median(scores)


@pytest.mark.parametrize("suffix", [".npy", ".parquet"])
def test_other_formats_and_deepsvdd(tmp_path, table, suffix):
    _, frame = table
    path = tmp_path / f"train{suffix}"
    if suffix == ".npy":
        np.save(path, frame.drop(columns="label").to_numpy())
    else:
        frame.to_parquet(path)
    args = ["fit", str(path), "--out", str(tmp_path / "m"), "--method", "deepsvdd", "--objective", "soft-boundary", *FAST]
    assert main(args) == 0
    assert main(["score", str(tmp_path / "m"), str(path), "--out", str(tmp_path / "s.csv")]) == 0


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("deepsad: error:"), err
    assert "Traceback" not in err[0]
    return err[0]


def test_user_mistakes_give_one_line_and_exit_2(tmp_path, table, capsys):
    path, frame = table
    assert main(["fit", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "m"), *FAST]) == 2
    assert "not found" in _one_line_error(capsys)

    bad_labels = frame.copy()
    bad_labels.loc[0, "label"] = 7
    bad_path = tmp_path / "bad.csv"
    bad_labels.to_csv(bad_path, index=False)
    assert main(["fit", str(bad_path), "--out", str(tmp_path / "m"), *FAST]) == 2
    assert "other than -1" in _one_line_error(capsys)

    nan = frame.copy()
    nan.loc[3, "a"] = np.nan
    nan.to_csv(bad_path, index=False)
    assert main(["fit", str(bad_path), "--out", str(tmp_path / "m"), *FAST]) == 2
    assert "NaN" in _one_line_error(capsys)

    assert main(["fit", str(path), "--out", str(tmp_path / "m"), *FAST]) == 0
    capsys.readouterr()
    frame.drop(columns=["a"]).to_csv(bad_path, index=False)
    assert main(["score", str(tmp_path / "m"), str(bad_path), "--out", str(tmp_path / "s.csv")]) == 2
    assert "features" in _one_line_error(capsys)
    assert not (tmp_path / "s.csv").exists()

    assert main(["score", str(tmp_path / "nowhere"), str(path), "--out", str(tmp_path / "s.csv")]) == 2
    assert "not found" in _one_line_error(capsys)

    weights = weights_path(tmp_path / "m")
    weights.write_bytes(weights.read_bytes()[:-3] + b"xyz")
    assert main(["score", str(tmp_path / "m"), str(path), "--out", str(tmp_path / "s.csv")]) == 2
    assert "checksum" in _one_line_error(capsys)


def test_help_on_every_command(capsys):
    for command in (["--help"], ["fit", "--help"], ["score", "--help"], ["demo", "--help"], ["data", "--help"]):
        with pytest.raises(SystemExit) as exit_info:
            main(command)
        assert exit_info.value.code == 0
    assert "usage" in capsys.readouterr().out


def test_demo_prints_an_auc_table(capsys):
    assert main(["demo", "--epochs", "3", "--classes", "0", "1"]) == 0
    out = capsys.readouterr().out
    assert "Deep SAD AUC" in out and "mean" in out


# every method of the registry, with settings small enough for a unit run
_METHOD_OPTIONS = {
    "deepsad": FAST,
    "deepsvdd": FAST,
    "cae": ["--epochs", "2", "--batch-size", "32", "--no-progress"],
    "supervised": ["--epochs", "2", "--batch-size", "32", "--no-progress"],
    "ssdgm": ["--epochs", "2", "--batch-size", "32", "--no-progress"],
    "devnet": ["--epochs", "2", "--batch-size", "32", "--param", "hidden_sizes=[8]", "--no-progress"],
    "ocsvm": ["--nu", "0.1", "--gamma", "0.5"],
    "iforest": ["--n-estimators", "20"],
    "kde": ["--bandwidth", "1.0"],
    "ssad": ["--gamma", "0.5"],
    "hybrid-ocsvm": ["--epochs", "2", "--batch-size", "32", "--nu", "0.1", "--no-progress"],
    "hybrid-iforest": ["--epochs", "2", "--batch-size", "32", "--n-estimators", "20", "--no-progress"],
    "hybrid-kde": ["--epochs", "2", "--batch-size", "32", "--bandwidth", "1.0", "--no-progress"],
    "hybrid-ssad": ["--epochs", "2", "--batch-size", "32", "--gamma", "scale", "--no-progress"],
}


def test_method_table_covers_the_registry():
    from deepsad.methods import method_names

    assert set(_METHOD_OPTIONS) == set(method_names())


@pytest.mark.parametrize("method", sorted(_METHOD_OPTIONS))
def test_every_method_fits_saves_and_scores_from_the_cli(tmp_path, table, capsys, method):
    from deepsad.methods import detector_class

    path, frame = table
    model = tmp_path / "model"
    assert main(["fit", str(path), "--out", str(model), "--method", method, *_METHOD_OPTIONS[method]]) == 0
    assert f"({method})" in capsys.readouterr().out
    out = tmp_path / "scores.csv"
    assert main(["score", str(model), str(path), "--out", str(out)]) == 0
    scores = pd.read_csv(out)
    assert len(scores) == len(frame) and np.isfinite(scores["anomaly_score"]).all()
    from deepsad import load

    assert isinstance(load(model), detector_class(method))


def test_an_option_the_method_does_not_have_is_refused_by_name(tmp_path, table, capsys):
    path, _ = table
    assert main(["fit", str(path), "--out", str(tmp_path / "m"), "--method", "ocsvm", "--epochs", "3"]) == 2
    assert "--epochs does not apply to --method ocsvm" in _one_line_error(capsys)
    assert main(["fit", str(path), "--out", str(tmp_path / "m"), "--method", "deepsad", "--gamma", "0.1"]) == 2
    assert "--gamma does not apply to --method deepsad" in _one_line_error(capsys)
    assert main(["fit", str(path), "--out", str(tmp_path / "m"), "--method", "kde", "--param", "bandwith=2"]) == 2
    assert "--param bandwith does not apply" in _one_line_error(capsys)
    assert not (tmp_path / "m").exists()


def test_standardization_is_on_by_default_for_tabular_data_and_can_be_turned_off(tmp_path, table):
    from deepsad import load

    path, _ = table
    assert main(["fit", str(path), "--out", str(tmp_path / "on"), "--method", "ocsvm"]) == 0
    assert main(["fit", str(path), "--out", str(tmp_path / "off"), "--method", "ocsvm", "--no-standardize"]) == 0
    assert load(tmp_path / "on").scaler_mean_ is not None
    assert load(tmp_path / "off").scaler_mean_ is None
