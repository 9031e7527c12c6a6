"""Critical-difference diagrams: the files, one colour and marker per method, the clique bars."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from deepsad.errors import DeepSADError, InvalidInputError
from deepsad.experiments.cd_diagram import MethodStyle, draw_cd_diagram, method_styles, write_cd_diagram
from deepsad.experiments.ranking import compare_methods

SIGNATURES = {"png": b"\x89PNG\r\n\x1a\n", "pdf": b"%PDF", "svg": b"<?xml"}


def thirteen_methods() -> pd.DataFrame:
    """The paper's 12 methods plus a peer on 37 datasets, with a clear order and overlaps."""
    methods = ["ocsvm", "hybrid-ocsvm", "iforest", "hybrid-iforest", "kde", "hybrid-kde", "cae", "deepsvdd", "ssad",
               "hybrid-ssad", "ssdgm", "deepsad", "deepod-deepsad"]
    rng = np.random.default_rng(0)
    skill = np.linspace(0.0, 0.1, len(methods))
    return pd.DataFrame(0.7 + skill + rng.normal(0, 0.05, (37, len(methods))), columns=methods)


def method_markers(figure) -> dict[str, tuple[str, str]]:
    """gid -> (colour, marker) of every method's marker in a drawn diagram."""
    (axes,) = figure.axes
    return {line.get_gid(): (line.get_color(), line.get_marker())
            for line in axes.lines if line.get_gid() and not line.get_gid().startswith("line:")}


def test_the_diagram_is_written_as_png_pdf_and_svg(tmp_path):
    result = compare_methods(thirteen_methods())
    paths = write_cd_diagram(result, tmp_path / "fig", "cd clean/γ", title="clean")
    assert [p.name for p in paths] == ["cd-clean.png", "cd-clean.pdf", "cd-clean.svg"]
    for path in paths:
        data = path.read_bytes()
        assert len(data) > 1000
        assert data.startswith(SIGNATURES[path.suffix[1:]])
    assert write_cd_diagram(result, tmp_path / "again", "x", formats=("pdf",), title="clean")[0].read_bytes() == paths[1].read_bytes()


def test_no_two_methods_share_a_colour_or_a_marker():
    result = compare_methods(thirteen_methods())
    drawn = method_markers(draw_cd_diagram(result))
    assert set(drawn) == set(result.average_ranks.index)
    colours = [colour for colour, _ in drawn.values()]
    markers = [marker for _, marker in drawn.values()]
    assert len(set(colours)) == len(colours) == 13
    assert len(set(markers)) == len(markers) == 13


@pytest.mark.parametrize("n", [3, 14, 20, 25])
def test_styles_never_repeat_a_colour_and_marker_pair(n):
    styles = method_styles([f"m{i}" for i in range(n)])
    assert len({(s.color, s.marker) for s in styles.values()}) == n
    assert len({s.color for s in styles.values()}) == min(n, 14)  # the palette's size


def test_one_bar_per_clique_of_two_or_more():
    result = compare_methods(thirteen_methods())
    (axes,) = draw_cd_diagram(result).axes
    bars = [line for line in axes.lines if line.get_linewidth() > 3]
    assert len(bars) == sum(len(group) > 1 for group in result.cliques) > 0


def test_shared_styles_keep_a_method_colour_across_diagrams():
    scores = thirteen_methods()
    styles = method_styles(list(scores.columns))
    first = method_markers(draw_cd_diagram(compare_methods(scores), styles=styles))
    second = method_markers(draw_cd_diagram(compare_methods(scores.iloc[:, ::-1] * 0.9), styles=styles))
    assert first == second
    clash = {**styles, "kde": MethodStyle(styles["ocsvm"].color, "o")}
    with pytest.raises(InvalidInputError, match="share a colour and marker"):
        draw_cd_diagram(compare_methods(scores), styles=clash)


def test_a_missing_matplotlib_gives_an_install_hint(monkeypatch, tmp_path):
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(DeepSADError, match=r"pip install 'deepsad\[report\]'"):
        write_cd_diagram(compare_methods(thirteen_methods()), tmp_path, "cd")
    assert list(tmp_path.iterdir()) == []
