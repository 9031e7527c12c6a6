"""ONNX export: one graph from raw features to the anomaly score, equal to ``anomaly_score`` under onnxruntime."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

onnxruntime = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from deepsad import DeepSAD, DeepSVDD, load  # noqa: E402
from deepsad.errors import InvalidInputError  # noqa: E402
from deepsad.onnx_export import DEFAULT_OPSET, INPUT_NAME, OUTPUT_NAME, export_onnx  # noqa: E402

RTOL = 1e-4
TABULAR_FAST = dict(epochs=2, batch_size=64, random_state=0)


def _onnx_scores(path, X: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(X, dtype=np.float32)})[0]


def _assert_same_scores(path, est, X: np.ndarray) -> None:
    expected = est.anomaly_score(X)
    # the batch axis is dynamic: one sample, and all of them, through the same graph
    np.testing.assert_allclose(_onnx_scores(path, X[:1]), expected[:1], rtol=RTOL, atol=1e-6)
    np.testing.assert_allclose(_onnx_scores(path, X), expected, rtol=RTOL, atol=1e-6)


@pytest.fixture(scope="module")
def tabular():
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(160, 6)) * [1, 2, 5, 0.5, 10, 1] + [0, 3, -2, 1, 50, 0]).astype(np.float32)
    X[:8] += 6.0
    y = np.zeros(160, dtype=np.int64)
    y[:3] = -1
    y[20:30] = 1
    # unseen samples: new draws of the same distribution, and far-away points
    X_new = np.concatenate([
        (rng.normal(size=(30, 6)) * [1, 2, 5, 0.5, 10, 1] + [0, 3, -2, 1, 50, 0]),
        rng.normal(size=(10, 6)) * 20,
    ]).astype(np.float32)
    return X, y, X_new


@pytest.fixture(scope="module")
def single(tabular):
    X, y, _ = tabular
    return DeepSAD(n_networks=1, standardize=True, **TABULAR_FAST).fit(X, y)


@pytest.mark.parametrize(
    "params",
    [
        pytest.param(dict(n_networks=1, standardize=True), id="single-standardized"),
        pytest.param(dict(n_networks=1, standardize=False), id="single-raw"),
        pytest.param(dict(n_networks=3, standardize=True), id="ensemble-standardized"),
    ],
)
def test_mlp_deep_sad_scores_equal_anomaly_score(tabular, tmp_path, params):
    X, y, X_new = tabular
    est = DeepSAD(**params, **TABULAR_FAST).fit(X, y)
    assert (est.scaler_mean_ is not None) == params["standardize"]
    assert est.n_networks_ == params["n_networks"]
    path = export_onnx(est, tmp_path / "model.onnx")
    assert path == tmp_path / "model.onnx"
    _assert_same_scores(path, est, np.concatenate([X_new, X]))


def test_deep_svdd_ensemble_with_batchnorm_scores_equal_anomaly_score(tabular, tmp_path):
    X, _, X_new = tabular
    # the objective changes training and the threshold, not the score: one suffices here
    est = DeepSVDD(n_networks=2, **TABULAR_FAST).fit(X)
    assert any("BatchNorm" in type(m).__name__ for m in est.network_.modules())  # eval-mode running stats
    path = est.export_onnx(tmp_path / "svdd.onnx")
    _assert_same_scores(path, est, X_new)


def test_lenet_with_fused_layers_scores_equal_anomaly_score(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.random((32, 1, 28, 28), dtype=np.float32)
    X_new = rng.random((7, 1, 28, 28), dtype=np.float32)
    est = DeepSAD(network="paper", n_networks=1, epochs=1, pretrain_epochs=1, batch_size=16, random_state=0).fit(X)
    fused = {type(m).__name__ for m in est.network_.modules()}
    assert "BatchNormLeakyMaxPool2d" in fused  # the exporter must see its stock form
    path = export_onnx(est, tmp_path / "lenet.onnx")
    _assert_same_scores(path, est, X_new)
    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert {"Conv", "MaxPool", "LeakyRelu"} <= ops


def test_file_passes_the_checker_with_a_dynamic_batch_and_metadata(single, tabular, tmp_path):
    path = export_onnx(single, tmp_path / "m.onnx")
    onnx.checker.check_model(str(path), full_check=True)
    model = onnx.load(str(path))
    (graph_input,) = model.graph.input
    (graph_output,) = model.graph.output
    assert (graph_input.name, graph_output.name) == (INPUT_NAME, OUTPUT_NAME)
    in_dims = graph_input.type.tensor_type.shape.dim
    assert in_dims[0].dim_param and not in_dims[0].dim_value  # symbolic batch
    assert [d.dim_value for d in in_dims[1:]] == [6]
    assert len(graph_output.type.tensor_type.shape.dim) == 1
    assert {o.domain: o.version for o in model.opset_import}[""] == DEFAULT_OPSET
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["estimator"] == "DeepSAD"
    assert float(meta["threshold"]) == single.threshold_
    assert json.loads(meta["input_shape"]) == [6]


def test_feature_names_are_kept_in_the_metadata(tabular, tmp_path):
    pd = pytest.importorskip("pandas")
    X, y, X_new = tabular
    columns = ["a", "b", "c", "d", "e", "f"]
    est = DeepSAD(n_networks=1, **TABULAR_FAST).fit(pd.DataFrame(X, columns=columns), y)
    path = export_onnx(est, tmp_path / "named.onnx")
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert json.loads(meta["feature_names"]) == columns
    expected = est.anomaly_score(pd.DataFrame(X_new, columns=columns))
    np.testing.assert_allclose(_onnx_scores(path, X_new), expected, rtol=RTOL, atol=1e-6)


def test_loaded_model_exports_the_same_scores(single, tabular, tmp_path):
    _, _, X_new = tabular
    single.save(tmp_path / "model")
    loaded = load(tmp_path / "model", device="cpu")
    path = loaded.export_onnx(tmp_path / "loaded.onnx")
    np.testing.assert_allclose(_onnx_scores(path, X_new), single.anomaly_score(X_new), rtol=RTOL, atol=1e-6)


def test_other_opset_and_bad_opset(single, tabular, tmp_path):
    _, _, X_new = tabular
    path = export_onnx(single, tmp_path / "o13.onnx", opset=13)
    assert {o.domain: o.version for o in onnx.load(str(path)).opset_import}[""] == 13
    np.testing.assert_allclose(_onnx_scores(path, X_new), single.anomaly_score(X_new), rtol=RTOL, atol=1e-6)
    for bad in (7, 99, "17", True):
        with pytest.raises(InvalidInputError, match="opset"):
            export_onnx(single, tmp_path / "bad.onnx", opset=bad)


def test_shallow_model_is_refused_naming_its_class(tabular, tmp_path):
    from deepsad.baselines import IsolationForestDetector

    X, _, _ = tabular
    forest = IsolationForestDetector(random_state=0).fit(X)
    with pytest.raises(InvalidInputError, match="not supported for IsolationForestDetector"):
        export_onnx(forest, tmp_path / "forest.onnx")
    assert not (tmp_path / "forest.onnx").exists()


def test_unfitted_detector_is_refused(tmp_path):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        export_onnx(DeepSAD(), tmp_path / "x.onnx")


def test_destination_that_is_a_directory_or_in_a_missing_folder_is_refused(single, tmp_path):
    with pytest.raises(InvalidInputError, match="is a directory"):
        export_onnx(single, tmp_path)
    with pytest.raises(InvalidInputError, match="does not exist"):
        export_onnx(single, tmp_path / "missing" / "m.onnx")
    (tmp_path / "afile").write_text("x")
    with pytest.raises(InvalidInputError, match="not a folder"):
        export_onnx(single, tmp_path / "afile" / "m.onnx")


def test_a_graph_that_scores_differently_is_never_written(single, tmp_path, monkeypatch):
    target = tmp_path / "m.onnx"
    target.write_bytes(b"old")
    # stand-in for an exporter bug: the estimator's scores no longer match the graph
    monkeypatch.setattr(single, "anomaly_score", lambda X: np.ones(len(X)), raising=False)
    with pytest.raises(InvalidInputError, match="does not reproduce"):
        export_onnx(single, target)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]  # no temporary file left


def test_missing_onnx_says_how_to_install(single, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # makes `import onnx` raise ImportError
    with pytest.raises(ImportError, match=r"pip install 'deepsad\[onnx\]'"):
        export_onnx(single, tmp_path / "m.onnx")


def test_importing_deepsad_and_the_export_command_imports_neither_onnx_nor_torch():
    # the command module is imported by `deepsad --help`, which must stay light
    code = (
        "import sys, deepsad, deepsad.cli.export\n"
        "print([m for m in ('onnx', 'onnxruntime', 'onnxscript', 'torch') if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("module", ["deepsad.onnx_export", "deepsad.detectors.deep_base"])
def test_onnx_packages_are_imported_only_when_exporting(module):
    # statically, not in a subprocess: importing torch afresh costs seconds on a busy machine
    import ast
    import importlib

    tree = ast.parse(Path(importlib.import_module(module).__file__).read_text())
    top_level = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    names = [alias.name for node in top_level if isinstance(node, ast.Import) for alias in node.names]
    names += [node.module or "" for node in top_level if isinstance(node, ast.ImportFrom)]
    optional = ("onnx", "onnxruntime", "onnxscript")
    assert not [n for n in names if n.split(".")[0] in optional or n == "deepsad.onnx_export"]


# --------------------------------------------------------------------------- the command
# (`deepsad export` is registered in deepsad.cli by add_export_command)


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("deepsad: error:"), err
    return err[0]


def test_cli_export_writes_a_graph_with_the_scores_of_deepsad_score(single, tabular, tmp_path, capsys):
    from deepsad.cli import main

    _, _, X_new = tabular
    single.save(tmp_path / "model")
    out = tmp_path / "model.onnx"
    assert main(["export", str(tmp_path / "model"), "--format", "onnx", "--out", str(out)]) == 0
    assert f"to {out}" in capsys.readouterr().out
    np.testing.assert_allclose(_onnx_scores(out, X_new), single.anomaly_score(X_new), rtol=RTOL, atol=1e-6)

    # refusals: one line, exit 2, nothing written or destroyed
    assert main(["export", str(tmp_path / "model"), "--out", str(tmp_path)]) == 2
    assert "is a directory" in _one_line_error(capsys)
    assert main(["export", str(tmp_path / "model"), "--out", str(tmp_path / "nowhere" / "m.onnx")]) == 2
    assert "does not exist" in _one_line_error(capsys)
    config = tmp_path / "model" / "model.json"
    before = config.read_bytes()
    assert main(["export", str(tmp_path / "model"), "--out", str(config)]) == 2
    assert "file of the model" in _one_line_error(capsys)
    assert config.read_bytes() == before
    assert main(["export", str(tmp_path / "no-model"), "--out", str(tmp_path / "x.onnx")]) == 2
    _one_line_error(capsys)


def test_cli_export_refuses_a_shallow_model_in_one_line(tabular, tmp_path, capsys):
    from deepsad.baselines import IsolationForestDetector
    from deepsad.cli import main

    X, _, _ = tabular
    IsolationForestDetector(random_state=0).fit(X).save(tmp_path / "forest")
    assert main(["export", str(tmp_path / "forest"), "--out", str(tmp_path / "f.onnx")]) == 2
    assert "not supported for IsolationForestDetector" in _one_line_error(capsys)
    assert not (tmp_path / "f.onnx").exists()
