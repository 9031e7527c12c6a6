"""Deep SAD and Deep SVDD: pretraining transfer, centre, conventions, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from deepsad import DeepSAD, DeepSVDD, LeNetSpec, MLPSpec
from deepsad.errors import InvalidInputError

FAST = dict(pretrain=True, n_networks=1, epochs=2, pretrain_epochs=2, batch_size=64, random_state=0)


@pytest.fixture(scope="module")
def tabular():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(240, 6)).astype(np.float32)
    X[:12] += 4.0  # a small cluster of anomalies
    y = np.zeros(240, dtype=np.int64)
    y[:4] = -1
    y[20:30] = 1
    return X, y


def _state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_pretrained_encoder_weights_are_transferred_to_phi(tabular):
    X, y = tabular
    est = DeepSAD(pretrain=True, n_networks=1, epochs=0, pretrain_epochs=3, batch_size=64, random_state=0).fit(X, y)
    encoder_state = est.autoencoder_.encoder.state_dict()
    phi_state = est.network_.state_dict()
    assert phi_state.keys() == encoder_state.keys()
    for key in phi_state:
        assert torch.equal(phi_state[key], encoder_state[key]), key
    # a copy, not shared storage: training phi must not move the autoencoder
    first = next(iter(est.network_.parameters()))
    assert first.data_ptr() != next(iter(est.autoencoder_.encoder.parameters())).data_ptr()


def test_transferred_weights_differ_from_a_fresh_initialisation(tabular):
    X, y = tabular
    pretrained = DeepSAD(pretrain=True, n_networks=1, epochs=0, pretrain_epochs=3, batch_size=64, random_state=0).fit(X, y)
    fresh = DeepSAD(epochs=0, pretrain=False, batch_size=64, random_state=0).fit(X, y)
    weights = [k for k in pretrained.network_.state_dict() if k.endswith("weight")]
    assert weights
    for key in weights:
        assert not torch.allclose(pretrained.network_.state_dict()[key], fresh.network_.state_dict()[key]), key


def test_training_starts_from_the_encoder_and_moves_away(tabular):
    X, y = tabular
    est = DeepSAD(pretrain=True, n_networks=1, epochs=3, pretrain_epochs=3, batch_size=64, random_state=0).fit(X, y)
    changed = [
        not torch.equal(est.network_.state_dict()[k], est.autoencoder_.encoder.state_dict()[k])
        for k in est.network_.state_dict()
        if k.endswith("weight")
    ]
    assert all(changed)
    assert len(est.loss_history_) == 3 and len(est.pretrain_loss_history_) == 3


@pytest.mark.parametrize(
    "network, shape",
    [("auto", (6,)), (MLPSpec(hidden_sizes=(16, 8), rep_dim=4), (6,)), (LeNetSpec("mnist"), (1, 28, 28))],
)
def test_phi_has_no_bias_and_no_affine_batchnorm(network, shape):
    rng = np.random.default_rng(1)
    X = rng.random((40, *shape)).astype(np.float32)
    est = DeepSVDD(pretrain=True, n_networks=1, network=network, epochs=1, pretrain_epochs=1, batch_size=20, random_state=0).fit(X)
    names = [name for name, _ in est.network_.named_parameters()]
    assert not [n for n in names if n.endswith("bias")]
    for module in est.network_.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            assert module.affine is False and module.weight is None and module.bias is None
            assert module.eps == pytest.approx(1e-4)


def test_same_random_state_gives_identical_scores_on_cpu(tabular):
    X, y = tabular
    a = DeepSAD(**FAST).fit(X, y).anomaly_score(X)
    b = DeepSAD(**FAST).fit(X, y).anomaly_score(X)
    assert np.array_equal(a, b)
    c = DeepSAD(**{**FAST, "random_state": 1}).fit(X, y).anomaly_score(X)
    assert not np.array_equal(a, c)


def test_centre_is_the_mean_over_samples_that_are_not_labeled_anomalies(tabular):
    X, y = tabular
    est = DeepSAD(pretrain=True, n_networks=1, epochs=0, pretrain_epochs=2, batch_size=64, random_state=0).fit(X, y)
    z = est.embed(X)
    expected = z[y != -1].mean(axis=0)
    expected = np.where(np.abs(expected) < 0.1, np.where(expected < 0, -0.1, 0.1), expected)
    np.testing.assert_allclose(est.center_, expected, rtol=1e-5, atol=1e-6)
    including_anomalies = z.mean(axis=0)
    assert not np.allclose(est.center_, including_anomalies, atol=1e-6)


def test_small_centre_coordinates_are_pushed_to_a_tenth():
    X = np.zeros((30, 4), dtype=np.float32)  # phi(0) = 0 for a bias-free network
    est = DeepSVDD(epochs=0, pretrain=False, random_state=0).fit(X)
    assert np.all(np.abs(est.center_) == pytest.approx(0.1))


def test_anomaly_score_is_the_distance_to_the_centre(tabular):
    X, y = tabular
    est = DeepSAD(**FAST).fit(X, y)
    z = est.embed(X)
    np.testing.assert_allclose(est.anomaly_score(X), np.linalg.norm(z - est.center_, axis=1), rtol=1e-5)


def test_labeled_anomalies_end_up_further_from_the_centre(tabular):
    X, y = tabular
    est = DeepSAD(pretrain=True, n_networks=1, epochs=30, pretrain_epochs=10, batch_size=64, lr=1e-3, random_state=0).fit(X, y)
    scores = est.anomaly_score(X)
    assert scores[y == -1].min() > np.median(scores[y == 0])


def test_sklearn_score_conventions_and_contamination(tabular):
    X, y = tabular
    est = DeepSAD(**FAST, contamination=0.2).fit(X, y)
    scores = est.anomaly_score(X)
    np.testing.assert_allclose(est.score_samples(X), -scores)
    np.testing.assert_allclose(est.decision_function(X), -scores - est.offset_)
    predicted = est.predict(X)
    assert set(np.unique(predicted)) == {-1, 1}
    assert np.mean(predicted == -1) == pytest.approx(0.2, abs=0.01)
    assert np.array_equal(predicted == -1, scores > est.threshold_)


def test_torch_tensor_input_gives_the_same_scores(tabular):
    X, y = tabular
    est = DeepSAD(**FAST).fit(torch.from_numpy(X), torch.from_numpy(y))
    np.testing.assert_array_equal(est.anomaly_score(torch.from_numpy(X)), est.anomaly_score(X))


def test_image_input_with_the_default_lenet():
    rng = np.random.default_rng(0)
    X = rng.random((30, 1, 28, 28)).astype(np.float32)
    est = DeepSAD(pretrain=True, n_networks=1, epochs=1, pretrain_epochs=1, batch_size=16, random_state=0).fit(X)
    assert est.spec_ == LeNetSpec("mnist")
    assert est.output_activation_ == "sigmoid"
    assert est.anomaly_score(X).shape == (30,)
    assert est.embed(X).shape == (30, 32)
    # (n, h, w) is read as single-channel images
    np.testing.assert_allclose(est.anomaly_score(X[:, 0]), est.anomaly_score(X), rtol=1e-6)


def test_custom_network_module_with_decoder():
    encoder = nn.Sequential(nn.Linear(6, 5, bias=False), nn.LeakyReLU(0.1), nn.Linear(5, 3, bias=False))
    decoder = nn.Sequential(nn.Linear(3, 5), nn.LeakyReLU(0.1), nn.Linear(5, 6))
    X = np.random.default_rng(0).normal(size=(50, 6)).astype(np.float32)
    est = DeepSAD(pretrain=True, n_networks=1, network=encoder, decoder=decoder, epochs=1, pretrain_epochs=1, random_state=0).fit(X)
    assert est.center_.shape == (3,)
    assert est.network_ is not encoder  # the user's module is not modified
    with pytest.raises(InvalidInputError, match="decoder"):
        DeepSAD(pretrain=True, n_networks=1, network=encoder, epochs=1, pretrain_epochs=1).fit(X)


class _ViewFlattenEncoder(nn.Module):
    """A user's conv encoder written like the reference code: ``x.view(n, -1)`` after the convs."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.fc = nn.Linear(4 * 8 * 8, 5, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.nn.functional.leaky_relu(self.conv(x), 0.1)
        return self.fc(x.view(x.size(0), -1))  # fails on channels_last maps


class _ViewUnflattenDecoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(5, 3 * 8 * 8)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.fc(z)).view(z.size(0), 3, 8, 8)


def test_custom_image_modules_keep_the_default_layout():
    """Only deepsad's own LeNets go channels_last; a user's module gets the layout it was written for."""
    X = np.random.default_rng(0).random((40, 3, 8, 8)).astype(np.float32)
    est = DeepSAD(network=_ViewFlattenEncoder(), decoder=_ViewUnflattenDecoder(), epochs=1, pretrain_epochs=1,
                  batch_size=16, random_state=0).fit(X)
    assert est.anomaly_score(X).shape == (40,)
    assert est.embed(X).shape == (40, 5)
    lenet = DeepSAD(pretrain=True, n_networks=1, epochs=1, pretrain_epochs=1, batch_size=16, random_state=0).fit(
        np.random.default_rng(1).random((30, 1, 28, 28)).astype(np.float32)
    )
    assert lenet.network_.features[0].weight.is_contiguous(memory_format=torch.channels_last)


def test_soft_boundary_radius_and_threshold(tabular):
    X, _ = tabular
    est = DeepSVDD(objective="soft-boundary", nu=0.1, radius_warmup_epochs=1, lr=1e-3, **{**FAST, "epochs": 5}).fit(X)
    assert est.radius_ > 0
    assert est.threshold_ == est.radius_
    outside = np.mean(est.anomaly_score(X) > est.radius_)
    assert 0.0 < outside < 0.35


def test_standardize_learns_training_statistics(tabular):
    X, y = tabular
    shifted = X * 50 + 1000
    est = DeepSAD(**FAST, standardize=True).fit(shifted, y)
    np.testing.assert_allclose(est.scaler_mean_, shifted.mean(axis=0), rtol=1e-4)
    plain = DeepSAD(**FAST).fit((shifted - est.scaler_mean_) / est.scaler_scale_, y)
    np.testing.assert_allclose(est.anomaly_score(shifted), plain.anomaly_score((shifted - est.scaler_mean_) / est.scaler_scale_), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "X, y, message",
    [
        (np.array([[1.0, np.nan], [0.0, 1.0]]), None, "NaN"),
        (np.array([[1.0, np.inf], [0.0, 1.0]]), None, "infinity|inf"),
        (np.zeros(5), None, "2D array"),
        (np.zeros((0, 3)), None, "0 sample"),
        (np.zeros((2, 2, 2, 2, 2)), None, "dimensions"),
        (np.zeros((4, 3)), np.zeros(3), "3 labels but X has 4"),
        (np.zeros((4, 3)), np.array([0, 1, 2, -1]), "other than -1"),
        (np.zeros((4, 3)), np.array([0.0, np.nan, 1.0, 0.0]), "NaN"),
        (np.zeros((4, 3)), np.array(["a", "b", "c", "d"]), "numbers"),
    ],
)
def test_bad_training_input_names_the_problem(X, y, message):
    with pytest.raises(ValueError, match=message):
        DeepSAD(**FAST).fit(X, y)


def test_scoring_with_a_different_feature_count_is_refused(tabular):
    X, y = tabular
    est = DeepSAD(**FAST).fit(X, y)
    with pytest.raises(ValueError, match="6 features"):
        est.anomaly_score(X[:, :5])
    with pytest.raises(ValueError, match="NaN"):
        est.anomaly_score(np.full((2, 6), np.nan))


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(epochs=-1), "epochs"),
        (dict(batch_size=0), "batch_size"),
        (dict(lr=0.0), "lr"),
        (dict(contamination=0.7), "contamination"),
        (dict(lr_milestones=(50, 10)), "lr_milestones"),
        (dict(network="resnet"), "network"),
        (dict(eta=-1.0), "eta"),
        (dict(device="tpu"), "device"),
    ],
)
def test_bad_parameters_name_the_parameter(tabular, params, message):
    X, y = tabular
    with pytest.raises(InvalidInputError, match=message):
        DeepSAD(**{**FAST, **params}).fit(X, y)


def test_unknown_svdd_objective_is_refused(tabular):
    with pytest.raises(InvalidInputError, match="objective"):
        DeepSVDD(objective="hard").fit(tabular[0])


@pytest.mark.parametrize("detector", [DeepSAD, DeepSVDD])
def test_a_given_autoencoder_replaces_pretraining_with_the_same_result(tabular, detector):
    X, y = tabular
    own = detector(**FAST).fit(X, y)
    reused = detector(**FAST).fit(X, y, autoencoder=own.autoencoder_)
    assert reused.autoencoder_reused_ and not own.autoencoder_reused_
    assert reused.autoencoder_ is own.autoencoder_
    assert reused.pretrain_loss_history_ == []
    np.testing.assert_array_equal(reused.anomaly_score(X), own.anomaly_score(X))


def test_deep_sad_and_deep_svdd_pretrain_the_same_autoencoder(tabular):
    # the same network (their "auto" MLPs differ in BatchNorm, the paper's do not)
    X, y = tabular
    sad = DeepSAD(**FAST, network="paper").fit(X, y)
    svdd = DeepSVDD(**FAST, network="paper").fit(X)
    for key, value in sad.autoencoder_.state_dict().items():
        assert torch.equal(value, svdd.autoencoder_.state_dict()[key]), key


def test_an_autoencoder_of_another_architecture_is_refused(tabular):
    X, y = tabular
    other = DeepSAD(network=MLPSpec(hidden_sizes=(8,), rep_dim=4), **FAST).fit(X, y)
    with pytest.raises(InvalidInputError, match="does not match the network"):
        DeepSAD(**FAST).fit(X, y, autoencoder=other.autoencoder_)
    with pytest.raises(InvalidInputError, match="must be a deepsad.models.Autoencoder"):
        DeepSAD(**FAST).fit(X, y, autoencoder=nn.Linear(6, 6))


def test_fit_trains_with_the_callers_threads_and_tuned_threads_picks_one_for_small_mlps(tabular, monkeypatch):
    from deepsad.training import training_threads, tuned_threads

    X, y = tabular
    seen = []
    import deepsad.detectors.deep_base as deep_base
    import deepsad.training.pretraining as pretraining

    original = deep_base.train

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return original(*args, **kwargs)

    # pretraining runs the loop through pretrain_autoencoders, phi's training directly
    monkeypatch.setattr(pretraining, "train", spy)
    monkeypatch.setattr(deep_base, "train", spy)
    outer = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        DeepSAD(**FAST).fit(X, y)
        assert seen == [2, 2]  # pretraining and training, as the caller set
        seen.clear()
        with tuned_threads():
            DeepSAD(**FAST).fit(X, y)
        assert seen == [1, 1]
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(outer)
    wide = DeepSAD(**FAST, network=MLPSpec(hidden_sizes=(512, 256), rep_dim=32)).fit(X, y)
    assert training_threads(wide.spec_, wide.input_shape_, torch.device("cpu")) is None


def test_read_only_input_is_accepted_without_warnings(tabular):
    import warnings

    X, y = tabular
    frozen = X.copy()
    frozen.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warns when it gets a non-writable array
        est = DeepSAD(**FAST).fit(frozen, y)
        scores = est.anomaly_score(frozen)
    np.testing.assert_array_equal(scores, DeepSAD(**FAST).fit(X, y).anomaly_score(X))
