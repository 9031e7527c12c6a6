"""Reports of experiment results: summaries, Wilcoxon tests, tables and figures.

Every test builds a small results frame by hand in the result store's export format, so the
expected numbers can be worked out on paper.
"""

from __future__ import annotations

import io
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy.stats import wilcoxon

from deepsad.errors import DeepSADError, InvalidInputError
from deepsad.experiments import figures
from deepsad.experiments.report import (
    REQUIRED_COLUMNS,
    compare_best,
    paired_aucs,
    render_table,
    report_frame,
    summarize,
    validate_results,
    wilcoxon_test,
    write_report,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def task(method: str, setup: int, auc: float | None, *, experiment: str = "table3", dataset: str = "mnist",
         parameter: str = "gamma_l", value: float = 0.05, status: str = "done") -> dict:
    """One row of the store's export; ``auc=None`` is a failed task."""
    failed = auc is None or status == "failed"
    return {
        "experiment": experiment,
        "dataset": dataset,
        "parameter": parameter,
        "value": value,
        "method": method,
        "setup_key": f"normal={setup}|known=1|seed=0",
        "seed": 0,
        "status": "failed" if failed else status,
        "auc": math.nan if auc is None else auc,
        "average_precision": math.nan if failed else 0.5,
        "fit_seconds": 1.0,
        "score_seconds": 0.1,
    }


def frame(*rows: dict) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=list(REQUIRED_COLUMNS))


def two_methods(best: list[float], second: list[float], **where) -> pd.DataFrame:
    """Deep SAD (``best``) and SSAD (``second``) on the same setups of one table row."""
    rows = [task("deepsad", i, a, **where) for i, a in enumerate(best)]
    rows += [task("ssad", i, a, **where) for i, a in enumerate(second)]
    return frame(*rows)


# The differences below are distinct on purpose: with tied differences scipy switches from its
# exact null distribution to a permutation test over 2**n sign flips, which is slow.
# 10 setups where Deep SAD wins every time: exact two-sided p = 2 / 2**10 < 0.05
CLEAR_WIN = ([0.90, 0.91, 0.92, 0.93, 0.94, 0.95, 0.96, 0.97, 0.98, 0.99],
             [0.805, 0.82, 0.84, 0.86, 0.88, 0.81, 0.83, 0.85, 0.87, 0.885])
# Deep SAD still has the better mean, but the differences change sign: no evidence
COIN_FLIP = ([0.90, 0.70, 0.95, 0.60, 0.85, 0.75],
             [0.80, 0.78, 0.84, 0.66, 0.81, 0.72])


# --------------------------------------------------------------------------- summaries


def test_summary_means_and_stds_by_hand():
    results = frame(
        task("deepsad", 0, 0.90), task("deepsad", 1, 0.80), task("deepsad", 2, 0.70),
        task("deepsad", 3, None),
        task("ocsvm", 0, 0.60), task("ocsvm", 1, 0.70),
    )
    summary = summarize(results).set_index("method")
    assert summary.loc["deepsad", "auc_mean"] == pytest.approx(80.0)
    assert summary.loc["deepsad", "auc_std"] == pytest.approx(10.0)  # sample std of 90, 80, 70
    assert summary.loc["deepsad", "n_done"] == 3
    assert summary.loc["deepsad", "n_failed"] == 1
    assert summary.loc["ocsvm", "auc_mean"] == pytest.approx(65.0)
    assert summary.loc["ocsvm", "auc_std"] == pytest.approx(math.sqrt(50.0))
    population = summarize(results, ddof=0).set_index("method")
    assert population.loc["deepsad", "auc_std"] == pytest.approx(math.sqrt(200.0 / 3.0))
    # the paper's column order: OC-SVM before Deep SAD
    assert summarize(results)["method"].tolist() == ["ocsvm", "deepsad"]


def test_failed_tasks_are_counted_but_left_out_of_the_means():
    stale = task("deepsad", 2, 0.10)
    stale["status"] = "failed"  # a failed task with a stale number must not count
    results = frame(task("deepsad", 0, 0.80), task("deepsad", 1, 0.90), stale, task("deepsad", 3, None))
    row = summarize(results).iloc[0]
    assert row["auc_mean"] == pytest.approx(85.0)
    assert (row["n_done"], row["n_failed"]) == (2, 2)


def test_a_cell_where_everything_failed():
    results = frame(task("deepsad", 0, 0.8), task("ssad", 0, None), task("ssad", 1, None))
    summary = summarize(results).set_index("method")
    assert math.isnan(summary.loc["ssad", "auc_mean"])
    assert summary.loc["ssad", "n_done"] == 0
    test = compare_best(results).iloc[0]
    assert test["best_method"] == "deepsad"
    assert test["second_method"] is None
    assert not test["significant"]
    text = render_table(results, "table3", with_paper=False)
    assert "| MNIST | 0.05 | failed | **80.0** |" in text
    assert "SSAD Raw: 2 of 2 failed" in text


def test_cells_are_separate_per_dataset_and_value():
    results = frame(task("deepsad", 0, 0.9, value=0.01), task("deepsad", 0, 0.7, value=0.2),
                    task("deepsad", 0, 0.5, dataset="cifar10", value=0.01))
    summary = summarize(results)
    assert summary[["dataset", "value", "auc_mean"]].values.tolist() == [
        ["mnist", 0.01, pytest.approx(90.0)],
        ["mnist", 0.2, pytest.approx(70.0)],
        ["cifar10", 0.01, pytest.approx(50.0)],
    ]


# --------------------------------------------------------------------------- best, second, Wilcoxon


def test_best_and_second_best_by_mean():
    results = frame(
        task("ocsvm", 0, 0.70), task("ocsvm", 1, 0.72),
        task("ssad", 0, 0.80), task("ssad", 1, 0.84),
        task("deepsad", 0, 0.90), task("deepsad", 1, 0.80),
    )
    test = compare_best(results).iloc[0]
    assert (test["best_method"], test["second_method"]) == ("deepsad", "ssad")
    assert test["best_auc_mean"] == pytest.approx(85.0)
    assert test["second_auc_mean"] == pytest.approx(82.0)


def test_a_tie_goes_to_the_method_first_in_the_paper_order():
    results = frame(task("deepsad", 0, 0.8), task("ocsvm", 0, 0.8))
    assert compare_best(results).iloc[0]["best_method"] == "ocsvm"


@pytest.mark.parametrize("values", [CLEAR_WIN, COIN_FLIP], ids=["clear-win", "coin-flip"])
def test_p_value_is_scipys_on_the_setups_both_completed(values):
    best, second = values
    results = two_methods(best, second)
    # a setup only Deep SAD completed and one only SSAD ran must not enter the pairing
    results = pd.concat([results, frame(task("deepsad", 50, 0.99), task("ssad", 50, None),
                                        task("ssad", 51, 0.1))], ignore_index=True)
    test = compare_best(results).iloc[0]
    expected = wilcoxon(best, second)
    assert test["n_pairs"] == len(best)
    assert test["p_value"] == pytest.approx(expected.pvalue, rel=1e-12)
    assert test["statistic"] == pytest.approx(expected.statistic)
    assert test["significant"] == (expected.pvalue < 0.05)
    pairs = paired_aucs(results, experiment="table3", dataset="mnist", parameter="gamma_l", value=0.05,
                        methods=("deepsad", "ssad"))
    assert len(pairs) == len(best)
    assert pairs["deepsad"].tolist() == pytest.approx(best)


def test_the_pairing_follows_the_setup_key_not_the_row_order():
    best, second = CLEAR_WIN
    rows = [task("deepsad", i, a) for i, a in enumerate(best)]
    rows += [task("ssad", i, a) for i, a in reversed(list(enumerate(second)))]
    test = compare_best(frame(*rows)).iloc[0]
    assert test["p_value"] == pytest.approx(wilcoxon(best, second).pvalue)


@pytest.mark.parametrize(
    ("values", "alpha"),
    [(CLEAR_WIN, 0.05), (COIN_FLIP, 0.05), (CLEAR_WIN, 0.001),
     (([0.9, 0.91, 0.92, 0.93, 0.94], [0.8, 0.8, 0.8, 0.8, 0.8]), 0.05),   # p = 0.0625: not below .05
     (([0.9, 0.91, 0.92, 0.93, 0.94], [0.8, 0.8, 0.8, 0.8, 0.8]), 0.07)],
)
def test_the_marker_appears_exactly_when_the_difference_is_significant(values, alpha):
    """The paper's captions: a star marks a significant (p < alpha) difference between 1st and 2nd."""
    best, second = values
    p_value = wilcoxon(best, second).pvalue
    results = two_methods(best, second)
    markdown = render_table(results, "table3", "md", with_paper=False, alpha=alpha)
    latex = render_table(results, "table3", "latex", with_paper=False, alpha=alpha)
    best_cell = f"**{np.mean(best) * 100:.1f}±{np.std(np.array(best) * 100, ddof=1):.1f}**"
    assert best_cell in markdown
    assert (best_cell + "⋆" in markdown) == (p_value < alpha)
    assert (r"$^\star$ &" in latex or r"$^\star$ \\" in latex) == (p_value < alpha)


def test_wilcoxon_without_pairs_is_nan():
    assert all(math.isnan(x) for x in wilcoxon_test([], []))


# --------------------------------------------------------------------------- rendering


def test_markdown_table_with_paper_rows():
    best, second = CLEAR_WIN
    text = render_table(two_methods(best, second), "table3", "md")
    lines = text.splitlines()
    assert "| Data | γl | source | SSAD Raw | Deep SAD |" in lines
    assert "| MNIST | 0.05 | ours | 84.5±2.9 | **94.5±3.0**⋆ |" in lines
    # Table 3, MNIST, gamma_l = .05: SSAD Raw 93.3±3.6, Deep SAD 96.7±2.4 (bold: the better of the two)
    assert "| MNIST | 0.05 | paper | 93.3±3.6 | **96.7±2.4** |" in lines
    assert lines.index("| MNIST | 0.05 | paper | 93.3±3.6 | **96.7±2.4** |") == lines.index(
        "| MNIST | 0.05 | ours | 84.5±2.9 | **94.5±3.0**⋆ |") + 1
    without = render_table(two_methods(best, second), "table3", "md", with_paper=False)
    assert "paper |" not in without
    assert "| MNIST | 0.05 | 84.5±2.9 | **94.5±3.0**⋆ |" in without


def test_latex_table():
    best, second = CLEAR_WIN
    text = render_table(two_methods(best, second), "table3", "latex")
    assert r"\begin{tabular}{lllrr}" in text
    assert r"Data & $\gamma_l$ & source & SSAD Raw & Deep SAD \\" in text
    assert r"MNIST & 0.05 & ours & 84.5$\pm$2.9 & \textbf{94.5$\pm$3.0}$^\star$ \\" in text
    assert r"MNIST & 0.05 & paper & 93.3$\pm$3.6 & \textbf{96.7$\pm$2.4} \\" in text
    assert "(%)" not in text  # a bare % would comment out the rest of the caption line


def test_csv_is_the_tidy_summary_with_the_paper_joined():
    best, second = CLEAR_WIN
    text = render_table(two_methods(best, second), "table3", "csv")
    table = pd.read_csv(io.StringIO(text), keep_default_na=False, na_values=[""])
    assert table["method"].tolist() == ["ssad", "deepsad"]
    deep = table.set_index("method").loc["deepsad"]
    assert deep["auc_mean"] == pytest.approx(94.5)
    assert deep["n_done"] == 10
    assert bool(deep["is_best"]) and bool(deep["significant"])
    assert deep["paper_auc_mean"] == pytest.approx(96.7)
    assert deep["paper_auc_std"] == pytest.approx(2.4)
    plain = pd.read_csv(io.StringIO(render_table(two_methods(best, second), "table3", "csv", with_paper=False)))
    assert "paper_auc_mean" not in plain.columns


def test_table6_rows_match_the_paper_without_a_parameter():
    where = {"experiment": "table6", "dataset": "cardio", "parameter": "", "value": math.nan}
    results = two_methods([0.95, 0.96, 0.94], [0.90, 0.91, 0.92], **where)
    joined = report_frame(results).set_index("method")
    assert joined.loc["deepsad", "paper_auc_mean"] == pytest.approx(95.0)
    assert joined.loc["ssad", "paper_auc_mean"] == pytest.approx(98.8)
    text = render_table(results, "table6")
    assert "| Data | source | SSAD Raw | Deep SAD |" in text
    assert "| cardio | paper | **98.8±0.3** | 95.0±1.6 |" in text


def test_experiments_without_paper_numbers_render_only_our_rows():
    results = two_methods([0.9, 0.8], [0.7, 0.6], experiment="eta", parameter="eta", value=100.0)
    text = render_table(results, "eta")
    assert "| Data | η | source | SSAD Raw | Deep SAD |" in text
    assert "| MNIST | 100 | ours |" in text
    assert "paper |" not in text


def test_write_report_covers_every_experiment(tmp_path, capsys):
    results = pd.concat([
        two_methods(*CLEAR_WIN),
        two_methods([0.95, 0.96, 0.94], [0.90, 0.91, 0.92], experiment="table6", dataset="cardio",
                    parameter="", value=math.nan),
    ], ignore_index=True)
    out = write_report(results, "md", tmp_path / "sub" / "report.md")
    written = (tmp_path / "sub" / "report.md").read_text(encoding="utf-8")
    assert out.text == written and out.path == tmp_path / "sub" / "report.md" and out.figures == ()
    assert written.index("## Table 3") < written.index("## Table 6")
    write_report(results, "latex", None)
    assert capsys.readouterr().out.count(r"\begin{table}") == 2
    stream = io.StringIO()
    write_report(results, "csv", stream)
    table = pd.read_csv(io.StringIO(stream.getvalue()))
    assert set(table["experiment"]) == {"table3", "table6"}


# --------------------------------------------------------------------------- bad input


def test_missing_columns_are_named():
    results = two_methods(*CLEAR_WIN).drop(columns=["setup_key", "auc"])
    with pytest.raises(InvalidInputError, match="setup_key, auc"):
        summarize(results)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda df: df.iloc[0:0], "no rows"),
        (lambda df: df.assign(auc=df["auc"].where(df.index != 0)), "no AUC"),
        (lambda df: df.assign(auc=df["auc"] * 100), r"outside \[0, 1\]"),
        (lambda df: df.assign(value="high"), "'value' must be numeric"),
        (lambda df: df.assign(status="pending"), "no task is done or failed"),
        (lambda df: df.assign(setup_key=None), "missing values in column.* setup_key"),
    ],
    ids=["empty", "done-without-auc", "percent-auc", "text-value", "nothing-finished", "no-setup-key"],
)
def test_invalid_results_are_refused(mutate, message):
    with pytest.raises(InvalidInputError, match=message):
        validate_results(mutate(two_methods(*CLEAR_WIN)))


def test_not_a_dataframe_is_refused():
    with pytest.raises(InvalidInputError, match="pandas DataFrame"):
        summarize({"auc": [0.5]})


def test_unfinished_tasks_are_ignored():
    results = two_methods(*CLEAR_WIN)
    pending = task("deepsad", 99, None)
    pending["status"] = "running"
    assert len(validate_results(pd.concat([results, frame(pending)]))) == len(results)


def test_unknown_format_experiment_and_alpha_are_refused(tmp_path):
    results = two_methods(*CLEAR_WIN)
    with pytest.raises(InvalidInputError, match="unknown report format 'html'"):
        render_table(results, "table3", "html")
    with pytest.raises(InvalidInputError, match="unknown report format 'pdf'"):
        write_report(results, "pdf", tmp_path / "r.pdf")
    assert not (tmp_path / "r.pdf").exists()
    with pytest.raises(InvalidInputError, match="no results for experiment 'table4'.*table3"):
        render_table(results, "table4")
    with pytest.raises(InvalidInputError, match="alpha"):
        compare_best(results, alpha=5)


# --------------------------------------------------------------------------- figures


def _figure_results() -> pd.DataFrame:
    rows = []
    for value, shift in ((0.0, 0.0), (0.05, 0.02), (0.2, 0.04)):
        for i in range(4):
            rows += [task("deepsad", i, 0.85 + shift + 0.01 * i, value=value),
                     task("ssad", i, 0.80 + 0.01 * i, value=value),
                     task("ocsvm", i, 0.78, value=value)]
    return frame(*rows)


def _assert_png(path):
    data = path.read_bytes()
    assert len(data) > len(PNG_SIGNATURE)
    assert data.startswith(PNG_SIGNATURE)


def test_figures_are_written_as_png_pdf_and_svg(tmp_path):
    paths = figures.write_figures(_figure_results(), tmp_path / "fig")
    assert [p.name for p in paths] == [f"table3_{kind}.{fmt}" for kind in ("auc-vs-gamma_l", "mnist_best-vs-second")
                                       for fmt in ("png", "pdf", "svg")]
    for path in paths:
        assert path.parent == tmp_path / "fig"
    for path in paths[::3]:
        _assert_png(path)


def test_write_report_draws_and_links_figures(tmp_path):
    out = write_report(_figure_results(), "md", tmp_path / "report.md", figures_dir=tmp_path / "figures")
    assert len(out.figures) == 6
    for path in out.figures[::3]:
        _assert_png(path)
    # the PNG embedded, the PDF and SVG linked beside it
    for stem in ("table3_auc-vs-gamma_l", "table3_mnist_best-vs-second"):
        assert (f"![{stem}](figures/{stem}.png) ([PDF](figures/{stem}.pdf), [SVG](figures/{stem}.svg))"
                in out.text.splitlines())


@pytest.mark.parametrize("with_paper", [True, False])
def test_the_reports_curves_show_the_paper_unless_told_not_to(tmp_path, with_paper):
    out = write_report(_figure_results(), "md", tmp_path / "report.md", figures_dir=tmp_path / "figures",
                       with_paper=with_paper)
    svg = (tmp_path / "figures" / "table3_auc-vs-gamma_l.svg").read_text(encoding="utf-8")
    # the SVG keeps each line's gid as an element id
    for method in ("deepsad", "ocsvm", "ssad"):
        assert (f'id="{method} (paper)"' in svg) is with_paper
        assert f'id="{method}"' in svg
    assert ("| paper |" in out.text) is with_paper


def test_a_missing_matplotlib_gives_an_install_hint(monkeypatch, tmp_path):
    # None in sys.modules makes the import fail as if matplotlib were not installed
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(DeepSADError, match=r"pip install 'deepsad\[report\]'") as error:
        figures.write_figures(_figure_results(), tmp_path)
    assert isinstance(error.value, ImportError)
    assert list(tmp_path.iterdir()) == []


def test_tables_do_not_import_matplotlib():
    # reports without figures must work where matplotlib is absent
    code = (
        "import sys; import pandas as pd; from deepsad.experiments import report; "
        "report.summarize(pd.read_json(sys.stdin, orient='records')); "
        "assert 'matplotlib' not in sys.modules, 'matplotlib was imported'"
    )
    rows = two_methods(*CLEAR_WIN).to_json(orient="records")
    done = subprocess.run([sys.executable, "-c", code], input=rows, text=True, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_a_method_we_have_not_run_in_a_row_keeps_its_paper_numbers():
    # shuttle without our OC-SVM while cardio has one: the shuttle paper row still shows
    # the paper's OC-SVM (Table 6: 99.4±0.9), and our cell stays empty
    table6 = {"experiment": "table6", "parameter": "", "value": math.nan}
    results = frame(
        *[task("ocsvm", s, 0.96, dataset="cardio", **table6) for s in range(3)],
        *[task("deepsad", s, 0.90 + s / 100, dataset="cardio", **table6) for s in range(3)],
        *[task("deepsad", s, 0.99, dataset="shuttle", **table6) for s in range(3)],
    )
    lines = render_table(results, "table6").splitlines()
    assert "| Data | source | OC-SVM Raw | Deep SAD |" in lines
    assert "| shuttle | ours |  | **99.0±0.0** |" in lines
    assert "| shuttle | paper | **99.4±0.9** | 98.4±0.9 |" in lines
    assert "| cardio | paper | **98.5±0.3** | 95.0±1.6 |" in lines
