"""Bundled networks: shapes and parameter counts against the paper's Table 1 and AlexNet's known totals."""

from __future__ import annotations

from collections import Counter

import pytest

from hwsim import api
from hwsim.ops import Op


def stage_params(name: str) -> Counter:
    params: Counter = Counter()
    for layer in api.load_network(name).layers:
        params[layer.name.split(".")[0]] += layer.params
    return params


def test_hairnet_stage_parameters_follow_its_block_structure() -> None:
    params = stage_params("hairnet")
    # stem: 3x3x3x32 conv + BN gamma/beta = Table 1's 928; stage1 = Table 1's 7,456
    assert params["stem"] + params["stem_bn"] == 928
    assert params["stage1"] == 7456
    # Table 1 prints 44,736 / 171,392 / 670,464: 4*F lower than its own blocks give (erratum 4)
    assert params["stage2"] == 44736 + 4 * 128
    assert params["stage3"] == 171392 + 4 * 256
    assert params["stage4"] == 670464 + 4 * 512
    # 1000 filters as listed; Table 1's 1,593,856 is the count for 1024
    assert params["stage5"] == 1532632


def test_hairnet_total_parameters_and_shapes() -> None:
    graph = api.load_network("hairnet")
    assert graph.params == 2431192  # "2.4M parameters"
    assert graph.layer("stage2.block1.dw").input_shape == (56, 56, 64)
    assert graph.layer("stage5.block2.pw").output_shape == (7, 7, 1000)
    assert graph.output.output_shape == (1, 1, 1000)
    bn = graph.layer("stem_bn")
    assert (bn.params, bn.state) == (64, 64)


def test_alexnet_totals() -> None:
    graph = api.load_network("alexnet")
    assert graph.params == 60965224
    assert sum(layer.params for layer in graph.layers if layer.op is Op.DENSE) == 58631144
    assert graph.layer("conv1").output_shape == (55, 55, 96)
    assert graph.layer("pool5").output_shape == (6, 6, 256)


def test_hairnet_paper_lists_the_appendix_layers() -> None:
    graph = api.load_network("hairnet-paper")
    pools = [layer for layer in graph.layers if layer.op is Op.MAXPOOL]
    assert len(pools) == 1 + 2 * 4 + 1
    # the duplicated pool reads the same map as the first copy, and GAP reads the un-pooled map
    assert graph.layer("pool2_again").inputs == graph.layer("pool2").inputs
    assert graph.layer("gap").inputs == ("stage5.block2.pw_relu",)


@pytest.mark.parametrize("name", ["hairnet", "hairnet-paper", "alexnet"])
def test_every_bundled_network_estimates_on_the_default_hardware(name: str) -> None:
    estimate = api.estimate(api.load_network(name), api.load_hardware("paper-accelerator"))
    assert estimate.schedule.total_s > 0
    assert {step.layers[0] for step in estimate.schedule.steps} <= {layer.name for layer in estimate.graph.layers}
