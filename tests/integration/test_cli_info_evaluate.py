"""`deepsad info` and `deepsad evaluate` on a saved model, in-process."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

from deepsad import DeepSAD
from deepsad.baselines import IsolationForestDetector
from deepsad.cli import main


@pytest.fixture(scope="module")
def labeled(tmp_path_factory):
    """A model trained on named columns, and a test table with 0/1 ground truth in column y."""
    rng = np.random.default_rng(0)
    folder = tmp_path_factory.mktemp("info")
    columns = ["a", "b", "c", "d"]
    train = pd.DataFrame(rng.normal(size=(150, 4)), columns=columns)
    semi = np.zeros(150, dtype=np.int64)
    train.iloc[:4] += 5
    semi[:4] = -1
    model = DeepSAD(epochs=3, n_networks=2, batch_size=50, random_state=0).fit(train, semi)
    model.save(folder / "model")
    test = pd.DataFrame(rng.normal(size=(100, 4)), columns=columns)
    test.iloc[:10] += 5
    test["y"] = 0
    test.loc[:9, "y"] = 1
    path = folder / "test.csv"
    test.to_csv(path, index=False)
    return folder, model, test, path


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_info_shows_the_model_as_text_and_json(labeled, capsys):
    folder, model, _, _ = labeled
    assert main(["info", str(folder / "model")]) == 0
    text = capsys.readouterr().out
    assert "DeepSAD (2 networks)" in text and "a, b, c, d" in text and "4 labeled anomalies" in text
    assert "epochs, loss" in text and " s\n" in text  # the training line ends with the fit time
    assert main(["info", str(folder / "model"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["class"] == "DeepSAD" and info["n_networks"] == 2
    assert info["feature_names"] == ["a", "b", "c", "d"] and info["input_shape"] == [4]
    assert info["labels"] == {"labeled_normal": 0, "labeled_anomaly": 4}
    assert info["threshold"] == pytest.approx(model.threshold_)
    assert info["training"]["epochs_run"] == 3 and info["training"]["loss_last"] == pytest.approx(model.loss_history_[-1])
    assert info["training"]["fit_seconds"] == pytest.approx(model.fit_seconds_, abs=1e-3) and model.fit_seconds_ > 0
    assert info["params"]["epochs"] == 3 and info["versions"]["deepsad"]
    assert all(len(value) == 64 for value in info["files"].values())


def test_info_of_a_shallow_model_and_of_a_missing_one(tmp_path, capsys):
    X = np.random.default_rng(1).normal(size=(60, 3))
    IsolationForestDetector(random_state=0).fit(X).save(tmp_path / "forest")
    assert main(["info", str(tmp_path / "forest"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["class"] == "IsolationForestDetector" and info["feature_names"] is None
    assert main(["info", str(tmp_path / "nowhere")]) == 2
    assert "not found" in _error_line(capsys)


def test_evaluate_gives_sklearns_metrics_at_the_models_threshold(labeled, capsys):
    folder, model, test, path = labeled
    assert main(["evaluate", str(folder / "model"), str(path), "--label-column", "y", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    scores = model.anomaly_score(test[["a", "b", "c", "d"]])
    truth = test["y"].to_numpy()
    assert metrics["roc_auc"] == pytest.approx(roc_auc_score(truth, scores))
    assert metrics["average_precision"] == pytest.approx(average_precision_score(truth, scores))
    assert metrics["f1"] == pytest.approx(f1_score(truth, (scores > model.threshold_).astype(int)))
    assert metrics["n_anomalies"] == 10 and metrics["roc_auc"] > 0.9
    assert main(["evaluate", str(folder / "model"), str(path), "--label-column", "y"]) == 0
    assert "ROC AUC" in capsys.readouterr().out


def test_evaluate_matches_columns_by_name(labeled, tmp_path, capsys):
    folder, _, test, path = labeled
    assert main(["evaluate", str(folder / "model"), str(path), "--label-column", "y", "--json"]) == 0
    expected = json.loads(capsys.readouterr().out)
    test[["y", "d", "c", "b", "a"]].to_csv(tmp_path / "reordered.csv", index=False)
    assert main(["evaluate", str(folder / "model"), str(tmp_path / "reordered.csv"), "--label-column", "y", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == expected
    test.drop(columns=["b"]).assign(e=1.0).to_csv(tmp_path / "other.csv", index=False)
    assert main(["evaluate", str(folder / "model"), str(tmp_path / "other.csv"), "--label-column", "y"]) == 2
    line = _error_line(capsys)
    assert "missing 'b'" in line and "not seen in training 'e'" in line


def test_evaluate_refuses_ground_truth_it_would_misread(labeled, tmp_path, capsys):
    folder, _, test, _ = labeled
    semi = test.assign(y=np.where(test["y"] == 1, -1, 0))  # -1 = anomaly, another convention
    semi.to_csv(tmp_path / "semi.csv", index=False)
    assert main(["evaluate", str(folder / "model"), str(tmp_path / "semi.csv"), "--label-column", "y"]) == 2
    assert "--anomaly-label" in _error_line(capsys)
    assert main(["evaluate", str(folder / "model"), str(tmp_path / "semi.csv"), "--label-column", "y",
                 "--anomaly-label", "-1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_anomalies"] == 10
    test.assign(y=0).to_csv(tmp_path / "normal.csv", index=False)
    assert main(["evaluate", str(folder / "model"), str(tmp_path / "normal.csv"), "--label-column", "y"]) == 2
    assert "only normal samples" in _error_line(capsys)
    assert main(["evaluate", str(folder / "model"), str(tmp_path / "normal.csv"), "--label-column", "truth"]) == 2
    assert "truth" in _error_line(capsys)
