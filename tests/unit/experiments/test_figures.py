"""Figures fit for a paper: PNG, PDF and SVG of every kind, AUC axes within [0, 100], and a
colour and marker per method that no other method of the figure shares."""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
import pytest

from deepsad.errors import InvalidInputError
from deepsad.experiments import figures
from deepsad.experiments.cd_diagram import draw_cd_diagram, write_cd_diagram
from deepsad.experiments.figures import (
    FIGURE_FORMATS,
    MARKERS,
    PALETTE,
    MethodStyle,
    draw_best_vs_second,
    draw_parameter_curves,
    method_styles,
    plot_best_vs_second,
    plot_parameter_curves,
    save_figure,
)
from deepsad.experiments.ranking import compare_methods
from deepsad.experiments.report import REQUIRED_COLUMNS
from deepsad.methods import method_names

matplotlib.use("Agg")  # the figures draw on Agg anyway; no window, whatever the session selected

SIGNATURES = {"png": b"\x89PNG\r\n\x1a\n", "pdf": b"%PDF", "svg": b"<?xml"}
PEERS = ("deepod-deepsad", "pyod-ecod")  # not in method_names(): styled after the paper's methods
METHODS = (*method_names(), *PEERS)


def results(methods=METHODS, *, near: float = 0.0) -> pd.DataFrame:
    """Table 3 rows for every method on two datasets, 3 setups per gamma_l, AUCs in [0, 1].

    ``near`` pushes the AUCs towards 1 (or 0 for a negative value) with a wide spread, so that a
    mean ± std band would leave [0, 100]."""
    rng = np.random.default_rng(0)
    rows = []
    for dataset in ("mnist", "cifar10"):
        for value in (0.0, 0.01, 0.05):
            for m, method in enumerate(methods):
                for setup in range(3):
                    auc = 0.6 + 0.02 * m / len(methods) + rng.uniform(0.0, 0.05)
                    if near > 0:
                        auc = [0.999, 0.93, 1.0][setup]
                    elif near < 0:
                        auc = [0.001, 0.07, 0.0][setup]
                    rows.append({
                        "experiment": "table3", "dataset": dataset, "parameter": "gamma_l", "value": value,
                        "method": method, "setup_key": f"normal={setup}|known=1|seed=0", "seed": 0,
                        "status": "done", "auc": auc, "average_precision": 0.5, "fit_seconds": 1.0,
                        "score_seconds": 0.1,
                    })
    return pd.DataFrame(rows, columns=list(REQUIRED_COLUMNS))


def method_lines(figure) -> dict[str, list[tuple[str, str, str]]]:
    """method (gid) -> [(colour, marker, line style)] of its lines in every panel of a figure."""
    drawn: dict[str, list[tuple[str, str, str]]] = {}
    for axes in figure.axes:
        for line in axes.lines:
            gid = line.get_gid()
            if gid and not gid.startswith("line:"):
                drawn.setdefault(gid, []).append(
                    (matplotlib.colors.to_hex(line.get_color()), line.get_marker(), line.get_linestyle()))
    return drawn


def assert_distinct_styles(drawn: dict[str, list[tuple[str, str, str]]], methods) -> None:
    assert set(drawn) == set(methods)
    styles = {}
    for method, looks in drawn.items():
        assert len({look[:2] for look in looks}) == 1, f"{method} changes its style between panels"
        styles[method] = looks[0][:2]
    assert len(set(styles.values())) == len(styles), "two methods share a colour and marker"


def assert_written(paths, stems) -> None:
    assert [p.name for p in paths] == [f"{stem}.{fmt}" for stem in stems for fmt in FIGURE_FORMATS]
    for path in paths:
        data = path.read_bytes()
        assert len(data) > 1000, path
        assert data.startswith(SIGNATURES[path.suffix[1:]]), path


# --------------------------------------------------------------------------- files


def test_parameter_curves_are_written_as_png_pdf_and_svg(tmp_path):
    paths = plot_parameter_curves(results(), "table3", tmp_path / "fig")
    assert_written(paths, ["table3_auc-vs-gamma_l"])


def test_best_vs_second_is_written_as_png_pdf_and_svg(tmp_path):
    paths = plot_best_vs_second(results(), "table3", tmp_path)
    assert_written(paths, ["table3_mnist_best-vs-second", "table3_cifar10_best-vs-second"])


def test_cd_diagram_is_written_as_png_pdf_and_svg(tmp_path):
    rng = np.random.default_rng(1)
    scores = pd.DataFrame(rng.uniform(0.5, 1.0, (8, len(METHODS))), columns=list(METHODS))
    assert_written(write_cd_diagram(compare_methods(scores), tmp_path, "cd_clean"), ["cd_clean"])


def test_one_format_or_another_and_the_same_bytes_twice(tmp_path):
    data = results(METHODS[:3])
    first = save_figure(draw_parameter_curves(data, "table3"), tmp_path / "a", "x", formats=("svg", "pdf"))
    assert [p.name for p in first] == ["x.svg", "x.pdf"]
    # the same figure drawn again writes the same bytes: no dates, SVG ids from a fixed salt
    again = save_figure(draw_parameter_curves(data, "table3"), tmp_path / "b", "x", formats=("svg", "pdf"))
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in first]
    with pytest.raises(InvalidInputError, match="unknown figure format"):
        save_figure(draw_parameter_curves(data, "table3"), tmp_path, "x", formats=("jpg",))
    with pytest.raises(InvalidInputError, match="unknown figure format"):
        write_cd_diagram(compare_methods(pd.DataFrame(np.eye(4), columns=list("abcd"))), tmp_path / "no", "x",
                         formats=())
    assert not (tmp_path / "no").exists()


def test_saving_leaves_the_callers_matplotlib_settings_alone(tmp_path):
    before = matplotlib.rcParams["svg.hashsalt"]
    save_figure(draw_parameter_curves(results(METHODS[:2]), "table3"), tmp_path, "x")
    assert matplotlib.rcParams["svg.hashsalt"] == before


# --------------------------------------------------------------------------- AUC axes


@pytest.mark.parametrize("near", [0.0, 1.0, -1.0])
def test_the_curves_auc_axis_stays_within_0_and_100(near):
    figure = draw_parameter_curves(results(METHODS[:4], near=near), "table3")
    for axes in figure.axes:
        low, high = axes.get_ylim()
        assert 0.0 <= low < high <= 100.0
        assert axes.get_ylabel() == "AUC (%)"
        # the lines are in percent and inside the axis
        for line in axes.lines:
            y = np.asarray(line.get_ydata(), dtype=float)
            assert np.all((y >= low) & (y <= high))
        # the ±std bands are cut at 0 and 100 as well
        for band in axes.collections:
            ys = np.concatenate([path.vertices[:, 1] for path in band.get_paths()])
            assert ys.min() >= 0.0 and ys.max() <= 100.0
    if near > 0:  # mean ~97.6, std ~4: the band would reach past 100
        assert figure.axes[0].get_ylim()[1] == 100.0
    if near < 0:
        assert figure.axes[0].get_ylim()[0] == 0.0


@pytest.mark.parametrize("near", [0.0, 1.0])
def test_the_best_vs_second_axes_are_in_percent_within_0_and_100(near):
    for figure in draw_best_vs_second(results(METHODS[:3], near=near), "table3").values():
        for axes in figure.axes:
            for low, high in (axes.get_xlim(), axes.get_ylim()):
                assert 0.0 <= low < high == 100.0
            (points,) = axes.collections
            xy = points.get_offsets()
            assert xy.min() >= low and xy.max() <= 100.0 and xy.max() > 1.0  # percent, not fractions
            assert "AUC (%)" in axes.get_xlabel() and "AUC (%)" in axes.get_ylabel()


# --------------------------------------------------------------------------- styles


def test_no_two_methods_of_the_curves_share_a_colour_and_marker():
    figure = draw_parameter_curves(results(), "table3")
    drawn = method_lines(figure)
    assert_distinct_styles(drawn, METHODS)
    assert {look[2] for looks in drawn.values() for look in looks} == {"-"}  # our results: solid lines
    # the legend shows each method once, in the style of its lines
    (legend,) = figure.legends
    assert len(legend.get_lines()) == len(METHODS)


def test_no_two_methods_of_the_cd_diagram_share_a_colour_and_marker():
    rng = np.random.default_rng(2)
    scores = pd.DataFrame(rng.uniform(0.5, 1.0, (8, len(METHODS))), columns=list(METHODS))
    assert_distinct_styles(method_lines(draw_cd_diagram(compare_methods(scores))), METHODS)


def test_a_method_keeps_its_style_across_figures():
    curves = method_lines(draw_parameter_curves(results(), "table3"))
    few = method_lines(draw_parameter_curves(results(("deepsad", "ocsvm", "ssad")), "table3"))
    scores = pd.DataFrame(np.random.default_rng(3).uniform(0.5, 1.0, (8, 3)), columns=["ssad", "deepsad", "ocsvm"])
    cd = method_lines(draw_cd_diagram(compare_methods(scores)))
    for method in ("deepsad", "ocsvm", "ssad"):
        assert curves[method][0][:2] == few[method][0][:2] == cd[method][0][:2]


def test_the_paper_methods_have_fixed_distinct_colours_and_markers():
    styles = method_styles(method_names())
    assert styles["ocsvm"] == MethodStyle(PALETTE[0], MARKERS[0])
    assert len({s.color for s in styles.values()}) == len({s.marker for s in styles.values()}) == len(styles)
    # the same style whatever else is drawn, and in whatever order the methods come
    assert method_styles(["zz", "deepsad", "aa"])["deepsad"] == styles["deepsad"]
    assert method_styles(["zz", "deepsad", "aa"]) == method_styles(["aa", "zz", "deepsad"])
    # a peer never takes one of the paper's methods' exact styles
    peers = method_styles([*method_names(), *PEERS])
    assert not {peers[p] for p in PEERS} & set(styles.values())


def test_the_palette_and_markers_are_large_enough():
    assert len(set(PALETTE)) == len(PALETTE) >= 12
    assert len(set(MARKERS)) == len(MARKERS) >= 12


@pytest.mark.parametrize("n", [1, 12, 15, 60, len(PALETTE) * len(MARKERS)])
def test_more_methods_than_colours_combine_colour_and_marker(n):
    styles = method_styles([f"user-{i}" for i in range(n)])
    assert len({(s.color, s.marker) for s in styles.values()}) == n
    assert len({s.color for s in styles.values()}) == min(n, len(PALETTE))
    if n <= len(PALETTE):
        assert len({s.marker for s in styles.values()}) == n


def test_too_many_methods_for_distinct_styles_are_refused():
    with pytest.raises(InvalidInputError, match="at most 210"):
        method_styles([f"user-{i}" for i in range(len(PALETTE) * len(MARKERS) + 1)])


def test_styles_that_repeat_a_pair_are_refused():
    styles = method_styles(["deepsad", "ocsvm", "ssad"])
    styles["ssad"] = styles["ocsvm"]
    with pytest.raises(InvalidInputError, match="share a colour and marker"):
        draw_parameter_curves(results(("deepsad", "ocsvm", "ssad")), "table3", styles=styles)
    with pytest.raises(InvalidInputError, match="no style for method"):
        figures.write_figures(results(("deepsad", "ocsvm", "ssad")), "unused", styles={"deepsad": styles["deepsad"]})


def test_write_figures_gives_a_method_one_style_in_every_figure(tmp_path, monkeypatch):
    saved = {}

    def record(figure, out_dir, stem, *, formats):  # drawing is what is tested here, not writing
        saved[stem] = figure
        return [tmp_path / f"{stem}.{fmt}" for fmt in formats]

    monkeypatch.setattr(figures, "save_figure", record)
    data = pd.concat([results(("deepsad", "pyod-ecod", "ocsvm")),
                      results(("pyod-ecod", "zz-peer")).assign(experiment="table4", parameter="gamma_p")])
    paths = figures.write_figures(data, tmp_path)
    assert len(paths) == 3 * len(saved) and "table4_auc-vs-gamma_p" in saved
    # a peer's style comes from all the methods of the report, not from each figure's own
    everyone = method_styles(["deepsad", "pyod-ecod", "ocsvm", "zz-peer"])
    assert everyone["pyod-ecod"] != method_styles(["pyod-ecod", "zz-peer"])["pyod-ecod"]  # the test can fail
    for stem in ("table3_auc-vs-gamma_l", "table4_auc-vs-gamma_p"):
        for method, looks in method_lines(saved[stem]).items():
            assert looks[0][:2] == (everyone[method].color, everyone[method].marker)


# --------------------------------------------------------------------------- the paper's points


def test_the_paper_curve_is_drawn_dashed_in_the_method_style_over_its_whole_sweep():
    from deepsad.experiments.paper_tables import paper_results

    # ours on MNIST at gamma_l = 0 and .05 only; the paper ran 0, .01, .05, .1, .2
    ours = results(("deepsad", "deepsvdd", "deepod-deepsad"))
    ours = ours[(ours["dataset"] == "mnist") & ours["value"].isin([0.0, 0.05])]
    figure = draw_parameter_curves(ours, "table3", with_paper=True)
    (axes,) = figure.axes
    lines = {line.get_gid(): line for line in axes.lines}
    paper = paper_results("table3")
    for method in ("deepsad", "deepsvdd"):
        published = paper[(paper["dataset"] == "mnist") & (paper["method"] == method)].sort_values("value")
        line = lines[f"{method} (paper)"]
        assert line.get_linestyle() == "--" and line.get_color() == lines[method].get_color()
        assert line.get_marker() == lines[method].get_marker() and line.get_markerfacecolor() == "none"
        np.testing.assert_allclose(line.get_ydata(), published["auc_mean"])
        assert lines[method].get_linestyle() == "-"
    # the x axis holds the paper's values; ours sit at their own two positions
    ticks = [label.get_text() for label in axes.get_xticklabels()]
    assert ticks == ["0", "0.01", "0.05", "0.1", "0.2"]
    np.testing.assert_array_equal(lines["deepsad"].get_xdata(), [0, 2])
    assert "deepod-deepsad (paper)" not in lines  # a peer has no paper numbers
    assert not any(gid.endswith("(paper)") for gid in method_lines(draw_parameter_curves(ours, "table3")))
