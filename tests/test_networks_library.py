"""The bundled networks and hardware added for comparisons load, and have the shapes their comments promise."""

from __future__ import annotations

import pytest

from hwsim import api, bundled
from hwsim.ops import Op


@pytest.mark.parametrize("name", ["edge-npu", "mobile-gpu", "datacenter-gpu"])
def test_hardware_profiles_load_and_cite_their_sources(name):
    hardware = api.load_hardware(name)
    assert set(hardware.compute) == {"matrix", "vector"}
    text = (bundled.bundled_dir("hardware") / f"{name}.yaml").read_text()
    assert "Sources" in text and text.count(".com") + text.count(".io") + text.count(".jp") >= 2


def test_datacenter_gpu_is_an_h100_sxm():
    h100 = api.load_hardware("datacenter-gpu")
    assert h100.memory.external.bandwidth == 3.35e12 and h100.memory.internal.capacity == 50e6
    assert h100.compute["matrix"].throughput == pytest.approx(989.4e12)


def test_dense_variant_is_hairnet_plus_one_dense_layer():
    plain, dense = api.load_network("hairnet"), api.load_network("hairnet-dense")
    assert [layer.name for layer in dense.layers] == [*(layer.name for layer in plain.layers[:-1]), "head", "softmax"]
    assert dense.layer("head").op is Op.DENSE and dense.output.output_shape == (1, 1, 1000)


def test_standard_variant_has_one_3x3_conv_per_separable_block():
    plain, standard = api.load_network("hairnet"), api.load_network("hairnet-standard")
    pointwise = [layer.output_shape for layer in plain.layers if layer.name.endswith(".pw")]
    convs = [layer for layer in standard.layers if layer.name.endswith(".conv")]
    assert [layer.output_shape for layer in convs] == pointwise
    assert all(layer.attrs.kernel == (3, 3) and layer.attrs.groups == 1 for layer in convs)
    assert not any(layer.op is Op.DWCONV for layer in standard.layers)


def test_cifar10_variant_runs_its_stages_at_32_to_2_pixels_into_10_classes():
    graph = api.load_network("hairnet-cifar10")
    assert graph.input_shape == (32, 32, 3) and graph.output.output_shape == (1, 1, 10)
    first_dw = {
        layer.name.split(".")[0]: layer.input_shape[0] for layer in graph.layers if layer.name.endswith("block1.dw")
    }
    assert first_dw == {"stage1": 32, "stage2": 16, "stage3": 8, "stage4": 4, "stage5": 2}
