"""The paper's claims, recomputed: numbers that follow from the bundled networks and Section 3.1's algebra."""

from __future__ import annotations

import pytest

from hwsim import api
from hwsim.cli import main
from hwsim.studies import claims


def test_hairnet_is_four_percent_of_alexnet():
    claim = claims.parameter_share(api.load_network("hairnet"), api.load_network("alexnet"))
    assert claim.hwsim == pytest.approx(2_431_192 / 60_965_224)
    assert claim.hwsim == pytest.approx(0.04, abs=0.001)


def test_dense_head_adds_a_classes_by_classes_layer_not_thirty_percent():
    dense, plain = api.load_network("hairnet-dense"), api.load_network("hairnet")
    claim = claims.dense_head_ratio(dense, plain)
    assert dense.params - plain.params == 1000 * 1000 + 1000
    assert claim.hwsim == pytest.approx(1.4117, abs=1e-4) and claim.paper == 1.3


def test_separable_over_standard_is_exactly_one_over_n_plus_one_over_k_squared_per_stage():
    table = claims.separable_vs_standard(api.load_network("hairnet"), api.load_network("hairnet-standard"))
    assert table.stage.tolist() == ["stage1", "stage2", "stage3", "stage4", "stage5"]
    assert table.filters_N.tolist() == [64, 128, 256, 512, 1000]
    assert table.ratio.tolist() == pytest.approx(table["paper_1/N+1/K^2"].tolist(), rel=1e-12)
    # stage1 by hand: 112x112 maps, blocks 32->64 and 64->64
    separable = 112 * 112 * (9 * 32 + 32 * 64 + 9 * 64 + 64 * 64)
    standard = 112 * 112 * 9 * (32 * 64 + 64 * 64)
    assert table.separable_macs[0] == separable and table.standard_macs[0] == standard


def test_claims_command_prints_and_writes_markdown(runner, tmp_path, workdir):
    result = runner.invoke(main, ["claims", "-o", "claims.md"])
    assert result.exit_code == 0, result.output
    text = open("claims.md", encoding="utf-8").read()
    assert "0.03988" in result.output and "1.412" in result.output and "stage5" in result.output
    assert "| HairNet parameters / AlexNet parameters |" in text and "| stage1 " in text
