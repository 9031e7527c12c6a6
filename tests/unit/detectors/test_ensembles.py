"""Ensembles (n_networks > 1) and the data-dependent defaults of Deep SAD / Deep SVDD."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import deepsad
from deepsad import DeepSAD, DeepSVDD
from deepsad.detectors.deep_base import member_seed
from deepsad.detectors.recipe import PAPER_SETTINGS
from deepsad.persistence import FORMAT_VERSION
from deepsad.detectors.stacked import fit_stacked
from deepsad.errors import InvalidInputError
from deepsad.models import LeNetSpec, MLPSpec

FAST = dict(epochs=3, batch_size=64, device="cpu")


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(150, 6)).astype(np.float32) * 2 + 1
    y = np.zeros(150, dtype=np.int64)
    y[:4] = -1
    return X, y


def _distance(network: torch.nn.Module, center: np.ndarray, X: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        z = network.eval()(torch.from_numpy(X)).numpy()
    return np.linalg.norm(z - center, axis=1)


def test_tabular_defaults_train_five_fresh_networks_without_pretraining(data):
    X, y = data
    est = DeepSAD(**FAST, random_state=0).fit(X, y)
    assert est.n_networks_ == 5 and len(est.networks_) == 5 and est.centers_.shape == (5, 8)
    assert est.autoencoder_ is None and est.pretrain_loss_history_ == []
    assert est.spec_ == MLPSpec(hidden_sizes=(32, 16), rep_dim=8, batch_norm=False, init_gain=0.5)
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in est.network_.modules())
    assert est.scaler_mean_ is not None  # tabular data are standardized by default
    assert est._train_config().milestones == ()  # constant learning rate for vectors


def test_deep_svdd_tabular_default_is_the_same_recipe_with_batchnorm(data):
    X, y = data
    est = DeepSVDD(**FAST, random_state=0).fit(X)
    assert est.n_networks_ == 5 and est.autoencoder_ is None
    assert est.spec_ == MLPSpec(hidden_sizes=(32, 16), rep_dim=8, batch_norm=True, init_gain=0.5)
    assert any(isinstance(m, torch.nn.BatchNorm1d) for m in est.network_.modules())
    assert est._train_config().milestones == ()
    # the runner's autoencoder cache keys a pretrained single network by the resolved spec
    from deepsad.experiments.runner import autoencoder_settings
    from deepsad.models import spec_from_dict

    def cached_spec(estimator, labels):
        return spec_from_dict(autoencoder_settings(estimator, X.shape[1:], labels)["network"])

    assert cached_spec(DeepSVDD(pretrain=True, n_networks=1), None).batch_norm is True
    assert cached_spec(DeepSAD(pretrain=True, n_networks=1), y).batch_norm is False
    assert cached_spec(DeepSAD(pretrain=True, n_networks=1), np.zeros_like(y)).batch_norm is True


@pytest.mark.filterwarnings("ignore::deepsad.validation.SemiLabelConventionWarning")  # 10 labeled normals
@pytest.mark.parametrize("labels", ["none", "unlabeled", "labeled normals"])
def test_deep_sad_without_labeled_anomalies_takes_deep_svdds_recipe(data, labels):
    """No labeled anomaly: Deep SAD's objective is Deep SVDD's, and so is its "auto" network."""
    X, y = data
    semi = {"none": None, "unlabeled": np.zeros_like(y), "labeled normals": np.where(np.arange(len(y)) < 10, 1, 0)}[labels]
    without = DeepSAD(**FAST, random_state=0).fit(X, semi)
    assert without.spec_.batch_norm is True
    assert DeepSAD(**FAST, random_state=0).fit(X, y).spec_.batch_norm is False  # y holds labeled anomalies
    # and it is then the same model as Deep SVDD's default (the one-class objective, the same seeds)
    svdd = DeepSVDD(**FAST, random_state=0).fit(X)
    if labels != "labeled normals":
        np.testing.assert_allclose(without.anomaly_score(X), svdd.anomaly_score(X), rtol=1e-5, atol=1e-6)


def test_image_defaults_keep_the_papers_recipe():
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(40, 1, 28, 28)).astype(np.float32)
    est = DeepSAD(epochs=1, pretrain_epochs=1, batch_size=20, device="cpu", random_state=0).fit(X)
    assert est.n_networks_ == 1 and est.spec_ == LeNetSpec("mnist")
    assert est.autoencoder_ is not None and est.scaler_mean_ is None
    assert est._train_config().milestones == (50,)


def test_paper_preset_is_the_papers_settings(data):
    X, y = data
    est = DeepSAD.paper(epochs=2, pretrain_epochs=2, random_state=0)
    params = est.get_params()
    for key, value in PAPER_SETTINGS.items():
        if key not in ("epochs", "pretrain_epochs"):
            assert params[key] == value, key
    est.fit(X, y)
    assert est.n_networks_ == 1 and est.autoencoder_ is not None
    assert est.spec_ == MLPSpec(hidden_sizes=(32, 16), rep_dim=8)  # BatchNorm, Glorot gain 1
    assert DeepSVDD.paper().network == "paper"


def test_each_network_of_an_ensemble_is_a_single_network_fit(data):
    """Stacked ensemble training equals fitting the networks one by one."""
    X, y = data
    ensemble = DeepSAD(**FAST, n_networks=3, random_state=7).fit(X, y)
    X_std = (X - ensemble.scaler_mean_) / ensemble.scaler_scale_
    scaled = []
    for k in range(3):
        single = DeepSAD(**FAST, n_networks=1, random_state=member_seed(7, k)).fit(X, y)
        np.testing.assert_allclose(ensemble.centers_[k], single.center_, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(
            _distance(ensemble.networks_[k], ensemble.centers_[k], X_std), single.anomaly_score(X), rtol=1e-4, atol=1e-5
        )
        # X is the training set: each network's distances in units of its median training distance
        median = np.median(single.anomaly_score(X))
        np.testing.assert_allclose(ensemble.distance_scales_[k], median, rtol=1e-4)
        scaled.append(single.anomaly_score(X) / median)
    np.testing.assert_allclose(ensemble.anomaly_score(X), np.mean(scaled, axis=0), rtol=1e-4, atol=1e-5)
    assert DeepSAD(**FAST, n_networks=1, random_state=0).fit(X, y).distance_scales_ is None
    assert len(ensemble.loss_history_) == FAST["epochs"]


def test_first_network_equals_the_single_network_model_with_the_same_seed(data):
    X, y = data
    ensemble = DeepSAD(**FAST, n_networks=2, random_state=3).fit(X, y)
    single = DeepSAD(**FAST, n_networks=1, random_state=3).fit(X, y)
    np.testing.assert_allclose(ensemble.embed(X, network=0), single.embed(X), rtol=1e-4, atol=1e-5)
    with pytest.raises(InvalidInputError, match="network must be an index"):
        ensemble.embed(X, network=2)


def test_unstackable_ensembles_train_one_by_one(data):
    X, _ = data
    est = DeepSVDD(**FAST, n_networks=2, objective="soft-boundary", radius_warmup_epochs=0, random_state=0).fit(X)
    single = DeepSVDD(**FAST, n_networks=1, objective="soft-boundary", radius_warmup_epochs=0,
                      random_state=member_seed(0, 1)).fit(X)
    X_std = (X - est.scaler_mean_) / est.scaler_scale_
    np.testing.assert_allclose(_distance(est.networks_[1], est.centers_[1], X_std), single.anomaly_score(X), rtol=1e-5)
    assert est.radius_ is not None


def test_pretrained_ensemble_pretrains_one_autoencoder_per_network(data):
    X, y = data
    est = DeepSAD(**FAST, n_networks=2, pretrain=True, pretrain_epochs=2, random_state=0).fit(X, y)
    assert len(est.autoencoders_) == 2 and est.autoencoder_ is est.autoencoders_[0]
    for autoencoder, network in zip(est.autoencoders_, est.networks_):
        assert not torch.equal(next(autoencoder.encoder.parameters()), next(network.parameters()))
    with pytest.raises(InvalidInputError, match="n_networks=1 to reuse"):
        DeepSAD(**FAST, n_networks=2).fit(X, y, autoencoder=est.autoencoder_)


def test_ensemble_save_load_round_trip(tmp_path, data):
    X, y = data
    est = DeepSAD(**FAST, n_networks=3, pretrain=True, pretrain_epochs=1, random_state=0).fit(X, y)
    est.save(tmp_path / "m")
    loaded = deepsad.load(tmp_path / "m")
    assert loaded.n_networks_ == 3 and len(loaded.autoencoders_) == 3
    np.testing.assert_array_equal(loaded.distance_scales_, est.distance_scales_)
    np.testing.assert_array_equal(loaded.anomaly_score(X), est.anomaly_score(X))
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))
    content = json.loads((tmp_path / "m" / "model.json").read_text())
    assert content["format_version"] == FORMAT_VERSION and content["fitted"]["n_networks"] == 3


def test_single_network_files_of_format_2_keep_their_settings(tmp_path, data):
    """A format-2 file (no n_networks; network 'auto' meant the paper's MLP) loads as it was trained."""
    X, y = data
    est = DeepSAD.paper(epochs=1, pretrain_epochs=1, random_state=0).fit(X, y)
    est.save(tmp_path / "m")
    config_path = tmp_path / "m" / "model.json"
    content = json.loads(config_path.read_text())
    content["format_version"] = 2
    content["params"]["network"] = "auto"
    for key in ("n_networks",):
        del content["params"][key]
    for key in ("n_networks", "n_autoencoders"):
        del content["fitted"][key]
    del content["content_sha256"]
    from deepsad.persistence import _canonical, _sha256  # the writer's own canonical form

    content["content_sha256"] = _sha256(_canonical(content).encode())
    config_path.write_text(_canonical(content))
    loaded = deepsad.load(tmp_path / "m")
    assert loaded.n_networks == 1 and loaded.network == "paper"
    np.testing.assert_array_equal(loaded.anomaly_score(X), est.anomaly_score(X))


def test_fit_stacked_takes_ensembles(data):
    X, y = data
    X2 = X[::-1].copy()
    models = fit_stacked([DeepSAD(**FAST, n_networks=2, random_state=s) for s in (0, 1)], [X, X2], [y, y[::-1].copy()])
    for model, seed, X_k, y_k in zip(models, (0, 1), (X, X2), (y, y[::-1].copy())):
        plain = DeepSAD(**FAST, n_networks=2, random_state=seed).fit(X_k, y_k)
        assert model.n_networks_ == 2
        np.testing.assert_allclose(model.anomaly_score(X), plain.anomaly_score(X), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"n_networks": 0}, "n_networks"),
        ({"n_networks": "many"}, "n_networks"),
        ({"pretrain": "sometimes"}, "pretrain must be"),
        ({"standardize": "yes"}, "standardize must be"),
        ({"lr_milestones": "later"}, "lr_milestones"),
        ({"network": "papers"}, "network must be"),
    ],
)
def test_bad_recipe_parameters_are_refused(data, params, message):
    X, y = data
    with pytest.raises(InvalidInputError, match=message):
        DeepSAD(**FAST, **params).fit(X, y)


def test_a_custom_module_is_one_network(data):
    X, y = data
    module = torch.nn.Sequential(torch.nn.Linear(6, 4, bias=False))
    assert DeepSAD(**FAST, network=module, random_state=0).fit(X, y).n_networks_ == 1
    with pytest.raises(InvalidInputError, match="custom module is one network"):
        DeepSAD(**FAST, network=module, n_networks=3).fit(X, y)
