"""Specs: defaults per input shape, validation, and the dict round trip."""

from __future__ import annotations

import json

import pytest

from deepsad.errors import InvalidInputError
from deepsad.models import LeNetSpec, MLPSpec, default_spec, spec_from_dict, spec_to_dict


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ((1, 28, 28), LeNetSpec("mnist")),
        ((3, 32, 32), LeNetSpec("cifar10")),
        ((274,), MLPSpec(hidden_sizes=(128, 64), rep_dim=32)),  # arrhythmia
        ((101,), MLPSpec(hidden_sizes=(128, 64), rep_dim=32)),
        ((100,), MLPSpec(hidden_sizes=(32, 16), rep_dim=8)),
        ((21,), MLPSpec(hidden_sizes=(32, 16), rep_dim=8)),  # cardio
        ((6,), MLPSpec(hidden_sizes=(32, 16), rep_dim=8)),
        ((1,), MLPSpec()),
    ],
)
def test_default_spec(shape, expected):
    assert default_spec(shape) == expected


def test_default_spec_accepts_lists_and_numpy_ints():
    np = pytest.importorskip("numpy")
    assert default_spec([np.int64(1), 28, 28]) == LeNetSpec("mnist")


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3)])
def test_default_spec_flags_channel_last(shape):
    with pytest.raises(InvalidInputError, match="channel-last") as info:
        default_spec(shape)
    message = str(info.value)
    assert str(shape) in message
    assert "transpose" in message and "(n, c, h, w)" in message
    assert "network=" in message


@pytest.mark.parametrize("shape", [(2, 28, 28), (3, 64, 64), (1, 2, 3, 4)])
def test_default_spec_unsupported_shape(shape):
    with pytest.raises(InvalidInputError) as info:
        default_spec(shape)
    message = str(info.value)
    assert str(shape) in message
    assert "(1, 28, 28)" in message and "(3, 32, 32)" in message and "(d,)" in message
    assert "network=" in message
    assert "channel-last" not in message


def test_default_spec_hints_missing_channel_axis():
    with pytest.raises(InvalidInputError, match=r"\(n, 1, 28, 28\)"):
        default_spec((28, 28))


@pytest.mark.parametrize("shape", [(), (0,), (3, 0, 32), (2.0,), (True,), "abc", None])
def test_default_spec_rejects_malformed_shapes(shape):
    with pytest.raises(InvalidInputError):
        default_spec(shape)


def test_lenet_rep_dim_defaults():
    assert LeNetSpec("mnist").resolved_rep_dim == 32
    assert LeNetSpec("fmnist").resolved_rep_dim == 64
    assert LeNetSpec("cifar10").resolved_rep_dim == 128
    assert LeNetSpec("cifar10", rep_dim=16).resolved_rep_dim == 16


def test_specs_are_frozen_and_hashable():
    spec = MLPSpec(hidden_sizes=[64, 32], rep_dim=4)  # a list is normalised to a tuple
    assert spec.hidden_sizes == (64, 32)
    assert hash(spec) == hash(MLPSpec(hidden_sizes=(64, 32), rep_dim=4))
    with pytest.raises(AttributeError):
        spec.rep_dim = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"rep_dim": 0},
        {"rep_dim": 2.5},
        {"rep_dim": True},
        {"hidden_sizes": (32, 0)},
        {"hidden_sizes": "32"},
        {"hidden_sizes": 32},
        {"negative_slope": -0.1},
        {"negative_slope": float("nan")},
        {"bn_eps": 0.0},
        {"bn_eps": "1e-4"},
    ],
)
def test_mlp_spec_validation(kwargs):
    with pytest.raises(InvalidInputError):
        MLPSpec(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [{"variant": "MNIST"}, {"variant": "svhn"}, {"variant": "mnist", "rep_dim": 0}, {"variant": "mnist", "bn_eps": -1}],
)
def test_lenet_spec_validation(kwargs):
    with pytest.raises(InvalidInputError):
        LeNetSpec(**kwargs)


@pytest.mark.parametrize(
    "spec",
    [
        MLPSpec(),
        MLPSpec(hidden_sizes=(128, 64), rep_dim=32, negative_slope=0.01, bn_eps=1e-5),
        MLPSpec(hidden_sizes=(), rep_dim=3),
        LeNetSpec("mnist"),
        LeNetSpec("fmnist", rep_dim=16),
        LeNetSpec("cifar10", negative_slope=0.0),
    ],
)
def test_spec_dict_round_trip(spec):
    data = spec_to_dict(spec)
    assert data["type"] in ("mlp", "lenet")
    # through real JSON text, as saved models store it
    restored = spec_from_dict(json.loads(json.dumps(data)))
    assert restored == spec
    assert type(restored) is type(spec)


def test_spec_to_dict_content():
    assert spec_to_dict(MLPSpec()) == {
        "type": "mlp",
        "hidden_sizes": [32, 16],
        "rep_dim": 8,
        "negative_slope": 0.1,
        "bn_eps": 1e-4,
    }
    assert spec_to_dict(LeNetSpec("mnist")) == {
        "type": "lenet",
        "variant": "mnist",
        "rep_dim": None,
        "negative_slope": 0.1,
        "bn_eps": 1e-4,
    }


def test_spec_from_dict_uses_defaults_for_absent_keys():
    assert spec_from_dict({"type": "mlp"}) == MLPSpec()
    assert spec_from_dict({"type": "lenet", "variant": "cifar10"}) == LeNetSpec("cifar10")


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"hidden_sizes": [8]}, "type"),
        ({"type": "resnet"}, "type"),
        ({"type": None}, "type"),
        ({"type": "mlp", "depth": 3}, "depth"),
        ({"type": "lenet", "variant": "mnist", "hidden_sizes": [8]}, "hidden_sizes"),
        ({"type": "lenet"}, "variant"),
        ({"type": "lenet", "variant": "imagenet"}, "variant"),
        ({"type": "mlp", "rep_dim": -1}, "rep_dim"),
        ([("type", "mlp")], "mapping"),
        ("mlp", "mapping"),
    ],
)
def test_spec_from_dict_rejects_bad_dicts(data, match):
    with pytest.raises(InvalidInputError, match=match):
        spec_from_dict(data)


def test_spec_to_dict_rejects_non_specs():
    with pytest.raises(InvalidInputError):
        spec_to_dict({"type": "mlp"})  # type: ignore[arg-type]


def test_batch_norm_and_init_gain_of_mlp_specs():
    import torch

    from deepsad.models import build_encoder, init_weights_

    plain = build_encoder(MLPSpec(hidden_sizes=(16,), rep_dim=4, batch_norm=False), (10,))
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in plain.modules())
    assert any(isinstance(m, torch.nn.BatchNorm1d) for m in build_encoder(MLPSpec(hidden_sizes=(16,), rep_dim=4), (10,)).modules())
    # the gain scales every Glorot draw (same generator state, same draws)
    weights = []
    for gain in (1.0, 0.5):
        encoder = build_encoder(MLPSpec(hidden_sizes=(16,), rep_dim=4), (10,))
        init_weights_(encoder, torch.Generator().manual_seed(0), gain=gain)
        weights.append(encoder.net[0].weight.detach().clone())
    torch.testing.assert_close(weights[1], weights[0] * 0.5)
    with pytest.raises(InvalidInputError, match="init_gain"):
        MLPSpec(init_gain=0)
    with pytest.raises(InvalidInputError, match="batch_norm"):
        MLPSpec(batch_norm="no")


def test_spec_dicts_name_later_fields_only_when_not_default():
    """Specs written before batch_norm / init_gain existed keep their dict form (saved models, hashes)."""
    assert spec_to_dict(MLPSpec()) == {"type": "mlp", "hidden_sizes": [32, 16], "rep_dim": 8,
                                       "negative_slope": 0.1, "bn_eps": 1e-4}
    changed = MLPSpec(batch_norm=False, init_gain=0.5)
    assert spec_to_dict(changed)["batch_norm"] is False and spec_to_dict(changed)["init_gain"] == 0.5
    assert spec_from_dict(spec_to_dict(changed)) == changed


def test_auto_spec_is_the_papers_network_without_batchnorm_for_vectors():
    from deepsad.models import auto_spec, default_spec

    assert auto_spec((300,)) == MLPSpec(hidden_sizes=(128, 64), rep_dim=32, batch_norm=False, init_gain=0.5)
    assert auto_spec((1, 28, 28)) == default_spec((1, 28, 28)) == LeNetSpec("mnist")
