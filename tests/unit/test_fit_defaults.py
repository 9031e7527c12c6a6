"""`deepsad fit` and the Python API build the same Deep SAD / Deep SVDD by default."""

from __future__ import annotations

import pytest

from deepsad import DeepSAD, DeepSVDD
from deepsad.cli import build_parser
from deepsad.cli.fit import detector_params
from deepsad.detectors.recipe import PAPER_SETTINGS
from deepsad.methods import make_detector

#: what the CLI sets from its run options (--seed, --device, progress, --contamination)
RUN_SETTINGS = {"random_state", "device", "verbose", "contamination"}


def _cli_params(method: str, *options: str, tabular: bool = True) -> dict:
    args = build_parser().parse_args(["fit", "data.csv", "--out", "m", "--method", method, *options])
    return detector_params(method, args, tabular=tabular)


@pytest.mark.parametrize(("method", "cls"), [("deepsad", DeepSAD), ("deepsvdd", DeepSVDD)])
@pytest.mark.parametrize("tabular", [True, False])
def test_cli_and_api_defaults_are_equal(method, cls, tabular):
    from_cli = make_detector(method, _cli_params(method, tabular=tabular)).get_params()
    api = cls().get_params()
    differing = {k for k in api if k not in RUN_SETTINGS and repr(api[k]) != repr(from_cli[k])}
    assert differing == set()


def test_cli_paper_option_gives_the_paper_preset_and_explicit_options_win():
    params = _cli_params("deepsad", "--paper", "--epochs", "7")
    paper = DeepSAD.paper().get_params()
    assert {k: params[k] for k in PAPER_SETTINGS if k != "epochs"} == {k: paper[k] for k in PAPER_SETTINGS if k != "epochs"}
    assert params["epochs"] == 7


def test_cli_recipe_options():
    params = _cli_params("deepsad", "--n-networks", "3", "--pretrain", "--network", "paper")
    assert (params["n_networks"], params["pretrain"], params["network"]) == (3, True, "paper")
    assert _cli_params("deepsad", "--no-standardize")["standardize"] is False
    with pytest.raises(SystemExit):  # argparse: not both
        _cli_params("deepsad", "--pretrain", "--no-pretrain")
