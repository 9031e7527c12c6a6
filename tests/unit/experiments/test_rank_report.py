"""The multi-dataset ranking report: scenarios, per-dataset tables, extra rows, the CLI.

Rows are built by hand in the result store's export format (or the store itself, for the CLI),
so that every number in the Markdown can be worked out on paper.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from deepsad.cli import main as cli_main
from deepsad.errors import InvalidInputError
from deepsad.experiments.rank_report import (
    combine_rows,
    read_extra_rows,
    scenario_labels,
    validate_rank_rows,
    write_rank_report,
)
from deepsad.experiments.store import ResultStore

# mean AUC per (dataset, method) of the clean scenario; deepsad best everywhere, iforest worst
CLEAN = {
    "cardio": {"deepsad": 0.95, "ssad": 0.90, "iforest": 0.80},
    "thyroid": {"deepsad": 0.99, "ssad": 0.85, "iforest": 0.90},
    "shuttle": {"deepsad": 0.97, "ssad": 0.96, "iforest": 0.95},
    "wine": {"deepsad": 0.71, "ssad": 0.75, "iforest": 0.61},
}


def store_rows(means: dict, *, profile: str = "clean", experiment: str = "quality", seeds: int = 2,
               failed: tuple = ()) -> list[dict]:
    """Store rows whose seeds average to ``means`` (seed AUCs mean ± 0.01); ``failed`` cells fail every seed."""
    rows = []
    for dataset, by_method in means.items():
        for method, mean in by_method.items():
            for seed in range(seeds):
                fails = (dataset, method) in failed
                rows.append({
                    "task_key": f"{experiment}|{profile}|{dataset}|{method}|{seed}",
                    "experiment": experiment, "profile": profile, "dataset": dataset, "parameter": "gamma_l",
                    "value": 0.05, "method": method, "setup_key": f"seed={seed}", "seed": seed,
                    "status": "failed" if fails else "done",
                    "auc": math.nan if fails else mean + (0.01 if seed % 2 else -0.01) * (seeds > 1),
                    "average_precision": 0.5, "fit_seconds": 1.0, "score_seconds": 0.1, "config_hash": "h",
                })
    return rows


def frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows)


def lines_of(text: str) -> list[str]:
    return text.splitlines()


# --------------------------------------------------------------------------- scenarios


def test_scenarios_are_what_differs_between_rows():
    rows = frame(store_rows(CLEAN, profile="clean") + store_rows(CLEAN, profile="polluted"))
    assert set(scenario_labels(rows)) == {"clean", "polluted"}
    by_config = frame(store_rows(CLEAN, experiment="quality_clean", profile="full")
                      + store_rows(CLEAN, experiment="quality_polluted", profile="full"))
    assert set(scenario_labels(by_config)) == {"quality_clean", "quality_polluted"}
    by_value = frame(store_rows(CLEAN, profile="full"))
    by_value = pd.concat([by_value, by_value.assign(parameter="gamma_p", value=0.1)], ignore_index=True)
    assert set(scenario_labels(by_value)) == {"γl=0.05", "γp=0.1"}
    assert set(scenario_labels(frame(store_rows(CLEAN)))) == {"clean"}  # one scenario: its profile


def test_rows_without_status_are_done_when_they_have_an_auc():
    rows = validate_rank_rows(pd.DataFrame({"dataset": ["a", "a"], "method": ["m", "m"], "seed": [0.0, 1],
                                            "auc": [0.7, math.nan]}))
    assert rows["status"].tolist() == ["done", "failed"]
    assert rows["seed"].tolist() == ["0", "1"]
    with pytest.raises(InvalidInputError, match="lacks the column.*auc"):
        validate_rank_rows(pd.DataFrame({"dataset": ["a"], "method": ["m"], "seed": [0]}))
    with pytest.raises(InvalidInputError, match=r"outside \[0, 1\]"):
        validate_rank_rows(pd.DataFrame({"dataset": ["a"], "method": ["m"], "seed": [0], "auc": [70.0]}))


# --------------------------------------------------------------------------- the Markdown


def test_markdown_has_the_auc_table_ranks_and_tests():
    report = write_rank_report(frame(store_rows(CLEAN)), _Sink())
    lines = lines_of(report.text)
    assert "## Scenario: clean" in lines
    # methods in rank order (Deep SAD 1.25, SSAD 2.0, IF 2.75); best of a row in bold; ×100, 1 decimal
    assert "| Dataset | Deep SAD | SSAD Raw | IF Raw |" in lines
    assert "| cardio | **95.0** | 90.0 | 80.0 |" in lines
    assert "| wine | 71.0 | **75.0** | 61.0 |" in lines
    assert "| 1 | Deep SAD | 1.25 | 90.5 | 4/0/0 |" in lines
    assert "| 2 | SSAD Raw | 2.00 | 86.5 | 3/0/1 |" in lines
    assert "| 3 | IF Raw | 2.75 | 81.5 | (reference) |" in lines
    summary = next(line for line in lines if line.startswith("Friedman test"))
    assert "N = 4 datasets and k = 3 methods" in summary
    assert "χ²F = 4.50 (df 2, p = 0.11)" in summary  # 12*4/12 * (1.25² + 2² + 2.75² - 12) = 4.5, p = e^-2.25
    assert "no significant difference" in summary
    assert "CD = 1.66" in summary  # 2.343 sqrt(3 * 4 / 24)
    ranked = report.scenarios[0].result
    assert ranked.average_ranks.to_dict() == pytest.approx({"deepsad": 1.25, "ssad": 2.0, "iforest": 2.75})


class _Sink:
    """A text stream that keeps nothing (the report's text is returned anyway)."""

    def write(self, text: str) -> int:
        return len(text)


def test_failed_cells_leave_their_dataset_out_of_the_ranking(tmp_path):
    rows = frame(store_rows(CLEAN, failed=(("wine", "iforest"),)))
    report = write_rank_report(rows, tmp_path / "quality.md")
    lines = lines_of(report.text)
    assert "| wine † | 71.0 | **75.0** | failed |" in lines
    result = report.scenarios[0].result
    assert result.dropped_datasets == ("wine",) and result.n_datasets == 3
    assert any(line.startswith("† Left out of the ranking (1 of 4 datasets): wine (no result: IF Raw)") for line in lines)
    assert any("wine IF Raw: 2 of 2" in line for line in lines)
    assert (tmp_path / "quality.md").read_text(encoding="utf-8") == report.text


def test_two_scenarios_and_an_extra_peer(tmp_path):
    polluted = {d: {m: v - 0.05 for m, v in by.items()} for d, by in CLEAN.items()}
    results = frame(store_rows(CLEAN, profile="clean") + store_rows(polluted, profile="polluted"))
    extra = tmp_path / "deepod.csv"
    peer = [{"scenario": s, "dataset": d, "method": "deepod-deepsad", "seed": seed, "auc": 0.5}
            for s in ("clean", "polluted") for d in CLEAN for seed in range(3)]
    pd.DataFrame(peer).to_csv(extra, index=False)
    rows = combine_rows(results, [read_extra_rows(extra)])
    report = write_rank_report(rows, tmp_path / "docs" / "quality.md", tmp_path / "docs" / "figures")
    assert [s.scenario for s in report.scenarios] == ["clean", "polluted"]
    for scenario in report.scenarios:
        assert scenario.result.n_methods == 4
        assert scenario.result.average_ranks.index[-1] == "deepod-deepsad"
    lines = lines_of(report.text)
    assert "| cardio | **95.0** | 90.0 | 80.0 | 50.0 |" in lines
    assert "| cardio | **90.0** | 85.0 | 75.0 | 50.0 |" in lines
    names = sorted(p.name for p in report.figures)
    assert names == sorted(f"cd_{s}.{f}" for s in ("clean", "polluted") for f in ("png", "pdf", "svg"))
    assert "![Critical-difference diagram, clean](figures/cd_clean.png) ([PDF](figures/cd_clean.pdf), " \
           "[SVG](figures/cd_clean.svg))" in lines


def test_extra_rows_must_say_which_scenario():
    results = frame(store_rows(CLEAN, profile="clean") + store_rows(CLEAN, profile="polluted"))
    peer = pd.DataFrame({"dataset": ["cardio"], "method": ["peer"], "seed": [0], "auc": [0.5]})
    with pytest.raises(InvalidInputError, match="need a 'scenario' column"):
        combine_rows(results, [peer])
    with pytest.raises(InvalidInputError, match="scenario.*poluted.*no results file"):
        combine_rows(results, [peer.assign(scenario="poluted")])
    one = combine_rows(frame(store_rows(CLEAN)), [peer])  # a single scenario: the rows join it
    assert set(one["scenario"]) == {"clean"}
    with pytest.raises(InvalidInputError, match="'deepsad' comes from two sources"):
        combine_rows(frame(store_rows(CLEAN)), [peer.assign(method="deepsad")])
    with pytest.raises(InvalidInputError, match="repeat.*given twice"):
        combine_rows(frame(store_rows(CLEAN) * 2))


def test_a_scenario_that_cannot_be_ranked_is_reported_not_raised():
    rows = frame(store_rows({"cardio": {"deepsad": 0.9}, "wine": {"deepsad": 0.8}}))
    report = write_rank_report(rows, _Sink(), reference=None)
    assert report.scenarios[0].result is None
    assert any(line.startswith("Not ranked: need at least two methods") for line in lines_of(report.text))


# --------------------------------------------------------------------------- the CLI


def test_cli_rank_writes_the_report_and_figures(tmp_path, capsys):
    clean, polluted = tmp_path / "quality_clean.sqlite", tmp_path / "quality_polluted.sqlite"
    for path, profile in ((clean, "clean"), (polluted, "polluted")):
        with ResultStore(path) as store:
            store.write(store_rows(CLEAN, profile=profile))
    out = tmp_path / "quality.md"
    code = cli_main(["experiment", "rank", str(clean), str(polluted), "--out", str(out),
                     "--figures", str(tmp_path / "fig"), "--reference", "ssad"])
    assert code == 0
    assert f"wrote {out} and 6 figure file(s)" in capsys.readouterr().out
    text = out.read_text(encoding="utf-8")
    assert "## Scenario: clean" in text and "## Scenario: polluted" in text
    assert "vs SSAD Raw W/T/L" in text

    code = cli_main(["experiment", "rank", str(clean), "--scenario-from", "file", "--reference", "none"])
    text = capsys.readouterr().out
    assert code == 0 and "## Scenario: quality_clean" in text and "W/T/L" not in text

    assert cli_main(["experiment", "rank"]) == 2
    assert "nothing to rank" in capsys.readouterr().err


def test_labels_name_the_methods_everywhere():
    rows = frame(store_rows(CLEAN, failed=(("wine", "ssad"),)))
    labels = {"deepsad": "Deep SAD (defaults)", "iforest": "IF"}
    lines = lines_of(write_rank_report(rows, _Sink(), labels=labels).text)
    assert "| Dataset | Deep SAD (defaults) | SSAD Raw | IF |" in lines  # unlabeled: the paper's name
    assert any(line.startswith("| 1 | Deep SAD (defaults) |") for line in lines)
    assert any("vs IF W/T/L" in line for line in lines)
    assert any(line.startswith("Failed tasks") and "wine SSAD Raw: 2 of 2" in line for line in lines)
    assert not any("Deep SAD |" in line or "IF Raw" in line for line in lines)


def test_cli_rank_labels(tmp_path, capsys):
    clean = tmp_path / "quality_clean.sqlite"
    with ResultStore(clean) as store:
        store.write(store_rows(CLEAN))
    assert cli_main(["experiment", "rank", str(clean), "--label", "deepsad=Deep SAD (defaults)"]) == 0
    assert "| 1 | Deep SAD (defaults) | 1.25 |" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["experiment", "rank", str(clean), "--label", "deepsad"])
    assert exit_info.value.code == 2
    assert "--label: invalid METHOD=NAME label value: 'deepsad'" in capsys.readouterr().err
