"""The paper's appendix, reproduced row by row by the paper policy with the paper's counting."""

from __future__ import annotations

import pytest

from hwsim.cli import main
from hwsim.studies import reproduce


@pytest.fixture(scope="module")
def comparison() -> reproduce.Comparison:
    return reproduce.compare_appendix()


def test_every_appendix_row_is_matched_within_one_percent(comparison: reproduce.Comparison) -> None:
    rows = comparison.rows
    assert len(rows) == 66
    for time in reproduce.TIMES:
        worst = rows[f"{time}_rel_diff"].abs()
        assert worst.max() < 0.01, rows.loc[worst.idxmax(), ["row", "paper_layer", "hwsim_layer"]].to_dict()


def test_total_matches_the_papers_0_177161_s(comparison: reproduce.Comparison) -> None:
    assert comparison.paper_total_s == pytest.approx(0.177161, rel=1e-6)  # the appendix's own sum
    assert comparison.hwsim_total_s == pytest.approx(0.177161, rel=0.005)


def test_placements_and_ops_match_the_appendix(comparison: reproduce.Comparison) -> None:
    rows = comparison.rows
    assert (rows["paper_locs"] == rows["hwsim_locs"]).all()
    # the appendix prints ops with 3 significant digits
    assert ((rows["hwsim_ops"] - rows["paper_ops"]).abs() <= 0.005 * rows["paper_ops"]).all()


def test_errata_each_change_the_total_in_the_right_direction() -> None:
    chain = {c.label: c.total_s for c in reproduce.errata_chain()}
    assert chain["as printed"] == pytest.approx(0.177161, rel=0.005)
    # erratum 1 removes a factor C of depthwise work; 2 makes host compute 10x faster; 3 drops 5 pools
    assert chain["erratum 1"] < chain["as printed"]
    assert chain["erratum 2"] < chain["erratum 1"]
    assert chain["erratum 3"] < chain["erratum 2"]
    assert chain["exact counts"] is not None
    # real capacity costs traffic the paper's rule never paid
    assert chain["erratum 6"] > chain["erratum 4"]


def test_better_schedules_beat_the_appendix_by_an_order_of_magnitude() -> None:
    beyond = reproduce.beyond_the_paper()
    assert beyond.lower_bound_s <= beyond.optimized_s <= beyond.strict_s
    assert beyond.optimized_s * 10 < reproduce.PAPER_TOTAL_S


def test_reproduce_command_prints_both_tables(runner, tmp_path) -> None:
    out = tmp_path / "rows.csv"
    result = runner.invoke(main, ["reproduce", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "dwise_conv0" in result.output and "erratum 3" in result.output and "exact counts" in result.output
    assert "beyond the paper" in result.output
    assert out.read_text().count("\n") == 67
