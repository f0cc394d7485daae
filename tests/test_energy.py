"""The energy and area model: the YAML sections, the published defaults, and the properties of the event walk."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from schedule_helpers import hardware, networks

from hwsim import api
from hwsim.errors import InputError
from hwsim.model.graph import Graph
from hwsim.schedule import scheduled_costs, slices
from hwsim.schedule.base import (
    COMPUTE,
    LOAD,
    STORE,
    CapacityError,
    Direction,
    Region,
    map_of,
    unrolled,
    weights_of,
)
from hwsim.schedule.energy import EnergyParts, schedule_energy
from hwsim.spec.energy import (
    DEFAULT_MAC_AREA_M2,
    SRAM_READ_64BIT,
    area_mm2,
    energy_table,
    sram_read_j_per_byte,
)
from hwsim.spec.hardware import HardwareSpec
from hwsim.studies import sweep
from hwsim.units import parse_physical

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PJ = 1e-12

# --- units -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("3.7 pJ", "energy", 3.7e-12),
        ("1.3 nJ", "energy", 1.3e-9),
        ("20 pJ/B", "energy_per_byte", 20e-12),
        ("8 pJ/bit", "energy_per_byte", 64e-12),
        ("50 mW", "power", 0.05),
        (0, "power", 0.0),
        ("65 nm", "length", 65e-9),
        ("0.01 mm2", "area", 1e-8),
        ("4000 µm²", "area", 4e-9),
    ],
)
def test_parses_energy_power_and_area_as_people_write_them(text: object, kind: str, value: float) -> None:
    assert parse_physical(text, kind) == pytest.approx(value)


@pytest.mark.parametrize(
    ("text", "kind", "message"),
    [
        ("-1 pJ", "energy", "must not be negative"),
        ("3 pB", "energy", "unknown unit 'pB'"),
        ("1 pJ/b", "energy_per_byte", "unknown unit"),
        ("hot", "power", "expected a power"),
        (True, "energy", "expected an energy"),
        ("1e400 pJ", "energy", "must be finite"),
    ],
)
def test_rejects_bad_physical_quantities(text: object, kind: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_physical(text, kind)


# --- the YAML sections ---------------------------------------------------------------------------------------

BASE = {
    "name": "t",
    "memory": {"internal": {"capacity": "1 MB"}, "external": {"bandwidth": "1 GB/s"}},
    "compute": {"matrix": {"throughput": "1 TFLOPS"}, "vector": {"throughput": "10 GFLOPS"}},
}


def profile(**sections: object) -> HardwareSpec:
    return HardwareSpec.model_validate({**BASE, **sections})


def test_a_profile_without_the_sections_gets_the_published_45nm_defaults() -> None:
    table = energy_table(profile(), "fp32")
    assert table.mac_j["matrix"] == pytest.approx((3.7 + 0.9) * PJ)  # Horowitz: fp32 multiply + add
    assert table.op_j["vector"] == pytest.approx(3.7 * PJ)
    assert table.internal_read_j_per_byte == pytest.approx(100 * PJ / 8)  # a 64-bit read of a 1 MB SRAM
    assert table.external_j_per_byte == pytest.approx(1.3e-9 / 8)  # a 64-bit DRAM access, low end
    assert table.static_w == 0
    assert math.isnan(area_mm2(profile(), "fp32"))


def test_values_a_profile_gives_replace_the_defaults_one_by_one() -> None:
    hw = profile(
        energy={
            "compute": {"matrix": {"int8": {"mac": "0.5 pJ"}}},
            "internal": {"read": "2 pJ/B"},
            "external": {"type": "hbm2"},
            "static": "50 mW",
        }
    )
    int8, fp32 = energy_table(hw, "int8"), energy_table(hw, "fp32")
    assert int8.mac_j["matrix"] == pytest.approx(0.5 * PJ)
    assert fp32.mac_j["matrix"] == pytest.approx(4.6 * PJ)  # not given for fp32: the default
    assert int8.op_j["matrix"] == pytest.approx(0.2 * PJ)
    assert int8.internal_read_j_per_byte == int8.internal_write_j_per_byte == pytest.approx(2 * PJ)
    assert int8.external_j_per_byte == pytest.approx(3.9 * 8 * PJ)  # HBM2 per bit, per byte
    assert int8.static_w == pytest.approx(0.05)


@pytest.mark.parametrize(
    ("energy", "message"),
    [
        ({"compute": {"tensor": {"fp32": {"mac": "1 pJ"}}}}, "names unit 'tensor'"),
        ({"compute": {"matrix": {"fp64": {"mac": "1 pJ"}}}}, "unknown precision 'fp64'"),
        ({"external": {"type": "ddr4"}}, "external.type"),
        ({"external": {"type": "ddr3", "transfer": "9 pJ/bit"}}, "either type or transfer"),
        ({"static": "-1 W"}, "must not be negative"),
    ],
)
def test_a_bad_energy_section_is_one_located_error(tmp_path, energy: dict, message: str) -> None:
    path = tmp_path / "hw.yaml"
    path.write_text(yaml.safe_dump({**BASE, "energy": energy}))
    with pytest.raises(InputError, match=message) as caught:
        api.load_hardware(path)
    assert str(caught.value).startswith(f"{path}:")


def test_sram_energy_goes_through_horowitz_points_and_is_log_linear_between_them() -> None:
    for size, per_64_bits in SRAM_READ_64BIT:
        assert sram_read_j_per_byte(size) == pytest.approx(per_64_bits / 8)
    # halfway between 8 KB and 32 KB on a log scale: the geometric mean of 10 and 20 pJ
    assert sram_read_j_per_byte(16 * 1024) == pytest.approx(math.sqrt(10 * 20) * PJ / 8)
    sizes = np.geomspace(1e3, 1e8, 50)
    assert np.all(np.diff(sram_read_j_per_byte(sizes)) > 0)


def test_sram_energy_of_an_array_is_each_capacity_computed_alone_as_numpy_interpolates() -> None:
    """A sweep's capacities (an array) get the bits an estimate of each gets (a float, without NumPy), and the
    interpolation is NumPy's: up to the last exp, which NumPy computes differently on AVX-512 hardware."""
    joints = [float(size) for size, _ in SRAM_READ_64BIT]
    sizes = np.array([[1.0, 100.0, *joints, 5e4, 3e7], [8192.5, 3e4, 5e5, 1048575.5, 8191.5, 1048576.5, 2e6]])
    energies = sram_read_j_per_byte(sizes)
    assert isinstance(sram_read_j_per_byte(2e6), float) and energies.shape == sizes.shape
    assert energies.tolist() == [[sram_read_j_per_byte(size) for size in row] for row in sizes.tolist()]
    logs = np.log(joints), np.log([energy / 8 for _, energy in SRAM_READ_64BIT])
    inside = np.interp(np.log(sizes[1, :4]), *logs)
    assert [math.log(e) for e in energies[1, :4]] == pytest.approx(inside.tolist(), rel=1e-15)
    assert energies[0, 2:5].tolist() == pytest.approx([energy / 8 for _, energy in SRAM_READ_64BIT], rel=1e-15)


def test_area_counts_mac_units_and_sram_at_the_stated_node() -> None:
    hw = profile(area={"node": "40 nm", "compute": {"matrix": {"units": 100}}, "sram_per_mb": "2 mm2"})
    assert area_mm2(hw, "int8") == pytest.approx(100 * DEFAULT_MAC_AREA_M2["int8"] / 1e-6 + 2.0)
    shrunk = profile(area={"node": "20 nm", "compute": {"matrix": {"units": 100}}, "sram_per_mb": "2 mm2"})
    assert area_mm2(shrunk, "int8") - 2.0 == pytest.approx((area_mm2(hw, "int8") - 2.0) / 4)  # (20/40)^2


def test_eyeriss_v1_can_be_written_as_a_profile() -> None:
    """168 16-bit PEs and a 108 KB buffer at 65 nm (Chen et al., JSSC 2017); its published core is 12.25 mm².

    Not a validation (that is `hwsim validate`'s): the model counts MAC units and SRAM only, so it must come
    out below the core area, which also holds scratch pads, the network on chip and control.
    """
    eyeriss = HardwareSpec.model_validate(
        {
            "name": "eyeriss-v1",
            "memory": {"internal": {"capacity": "108 KiB"}, "external": {"bandwidth": "1.6 GB/s"}},
            "compute": {"matrix": {"throughput": "67.2 GOPS"}, "vector": {"throughput": "67.2 GOPS"}},
            "energy": {"compute": {"matrix": {"int16": {"mac": "1 pJ"}}}, "external": {"type": "lpddr4"}},
            "area": {"node": "65 nm", "compute": {"matrix": {"units": 168}}},
        }
    )
    assert energy_table(eyeriss, "int16").mac_j["matrix"] == pytest.approx(1 * PJ)
    assert 0 < area_mm2(eyeriss, "int16") < 12.25


# --- the event walk -----------------------------------------------------------------------------------------

HAIRNET = api.load_network("hairnet")
PAPER_ACCELERATOR = api.load_hardware("paper-accelerator")
POLICIES = ("paper", "strict", "optimized")


@pytest.fixture(scope="module")
def hairnet() -> dict[str, api.Estimate]:
    return {p: api.estimate(HAIRNET, PAPER_ACCELERATOR, p) for p in POLICIES}


def _estimate(graph: Graph, hw: HardwareSpec, policy: str, **options: object) -> api.Estimate:
    try:
        return api.estimate(graph, hw, policy, **options)
    except CapacityError:
        assume(False)  # not even one row fits: a refusal, not an energy
        raise


@pytest.mark.parametrize("policy", POLICIES)
def test_external_energy_is_the_bytes_moved_at_the_profiles_price(hairnet, policy: str) -> None:
    e = hairnet[policy]
    per_byte = energy_table(PAPER_ACCELERATOR, "fp32").external_j_per_byte
    assert e.summary()["energy_external_j"] == pytest.approx(e.schedule.bytes_moved * per_byte, rel=1e-12)


@pytest.mark.parametrize(
    "policy", [pytest.param(p, marks=pytest.mark.slow) if p == "optimized" else p for p in POLICIES]
)  # optimized's compact schedule unrolled takes 1.7 s: with the slow tests
def test_a_steps_energy_is_its_unrolled_events_priced_one_by_one(policy: str) -> None:
    # docs/energy.md's rules applied to every event a compact schedule stands for, none of them repeated
    e = api.estimate(HAIRNET, hardware(200_000), policy, batch=2)
    table = energy_table(e.hardware, e.schedule.precision)
    costs = {c.name: c for c in e.scheduled_costs}
    cells = {}
    for c in costs.values():
        h, _, ch = c.layer.output_shape
        cells[map_of(c.name)] = c.output_bytes / (h * ch) / c.batch  # a map's cell, per image
        cells[weights_of(c.name)] = c.weight_bytes / ch  # weights: shared by the images
        if slices.passable(c):  # and laid out by input channel: an output channel's weights over its column's rows
            cells[slices.by_input(c.name)] = c.weight_bytes / ch / slices.column(c).height
        for name, shape, size in zip(c.layer.inputs, c.layer.input_shapes, c.input_bytes):
            cells.setdefault(map_of(name), size / (shape[0] * shape[2]) / c.batch)

    def bytes_of(region: Region, images: tuple[int, int] | None) -> float:
        count = (region.rows[1] - region.rows[0]) * (region.channels[1] - region.channels[0])
        if region.tensor.weights:
            return count * cells[region.tensor]
        return count * cells[region.tensor] * (images[1] - images[0] if images is not None else 2)

    repeated = any(event.instances > 1 for step in e.schedule.steps for event in step.events)
    assert repeated or policy == "paper"  # strict and optimized keep repeated rows compactly: counted too
    for step, parts in zip(e.schedule.steps, e.step_energy):
        compute = internal = external = 0.0
        for event in (one for compact in step.events for one in unrolled(compact)):
            if event.action in (LOAD, STORE):
                internal += event.bytes * (
                    table.internal_write_j_per_byte if event.action is LOAD else table.internal_read_j_per_byte
                )
                external += event.bytes * table.external_j_per_byte
            elif event.action is COMPUTE:
                cost = costs[event.layer]
                macs = event.ops * cost.macs / cost.ops
                compute += macs * table.mac_j[event.unit] + (event.ops - 2 * macs) * table.op_j[event.unit]
                internal += sum(bytes_of(r, event.images) for r in event.reads) * table.internal_read_j_per_byte
                internal += bytes_of(event.region, event.images) * table.internal_write_j_per_byte
        assert parts.compute_j == pytest.approx(compute, rel=1e-9, abs=1e-18)
        assert parts.internal_j == pytest.approx(internal, rel=1e-9, abs=1e-18)
        assert parts.external_j == pytest.approx(external, rel=1e-9, abs=1e-18)
        assert parts.static_j == table.static_w * step.total_s


@SETTINGS
@given(networks(), st.sampled_from([8_000, 32_000, 1e6]), st.sampled_from(POLICIES), st.sampled_from([1, 2, 3]))
def test_energy_is_additive_over_layers(graph: Graph, capacity: float, policy: str, batch: int) -> None:
    e = _estimate(graph, hardware(capacity), policy, batch=batch)
    summary = e.summary()
    parts = ("energy_compute_j", "energy_internal_j", "energy_external_j", "energy_static_j")
    assert sum(summary[p] for p in parts) == pytest.approx(summary["energy_j"], rel=1e-12)
    assert sum(step.total_j for step in e.step_energy) == pytest.approx(summary["energy_j"], rel=1e-12)
    assert len(e.step_energy) == len(e.schedule.steps)


@SETTINGS
@given(networks(), st.sampled_from([2, 3, 4]))
def test_images_add_up_and_share_only_the_weights(graph: Graph, batch: int) -> None:
    """The paper policy runs a batch whole: every image costs what one image costs, except that the batch
    loads every layer's weights once (counted as the paper counts, so a batch norm's ops scale exactly)."""
    hw = hardware(1e6)
    one = _estimate(graph, hw, "paper", counting="paper").summary()
    many = _estimate(graph, hw, "paper", counting="paper", batch=batch).summary()
    assert many["energy_compute_j"] == pytest.approx(batch * one["energy_compute_j"], rel=1e-9)
    weights = sum(c.weight_bytes for c in api.cost_run(graph, hw, "paper", "paper", 1, None)[0])
    shared = (batch - 1) * weights * energy_table(hw, "fp32").external_j_per_byte
    assert many["energy_external_j"] == pytest.approx(batch * one["energy_external_j"] - shared, rel=1e-9)


def test_a_batch_run_in_sub_batches_costs_the_sum_of_its_sub_batches() -> None:
    """Counted as the paper counts, so no op is counted once per batch (a batch norm's per-channel constants)."""
    graph, hw = api.load_network("hairnet-cifar10-narrow"), hardware(2_000)  # room for two images' bands, not four
    four = api.estimate(graph, hw, "strict", counting="paper", batch=4)
    sub = four.schedule.sub_batch
    assert sub == 2
    each = api.estimate(graph, hw, "strict", counting="paper", batch=sub).summary()
    for part in ("energy_j", "energy_compute_j", "energy_internal_j", "energy_external_j"):
        assert four.summary()[part] == pytest.approx(4 // sub * each[part], rel=1e-9)


@pytest.mark.parametrize("policy", POLICIES)
def test_int8_costs_less_than_fp32_on_the_same_schedule(hairnet, policy: str) -> None:
    e = hairnet[policy]
    costs = scheduled_costs(policy, e.costs, PAPER_ACCELERATOR, e.schedule.steps)
    fp32 = sum(schedule_energy(e.schedule, costs, energy_table(PAPER_ACCELERATOR, "fp32")), start=EnergyParts())
    int8 = sum(schedule_energy(e.schedule, costs, energy_table(PAPER_ACCELERATOR, "int8")), start=EnergyParts())
    assert int8.compute_j < fp32.compute_j
    assert (int8.internal_j, int8.external_j) == (fp32.internal_j, fp32.external_j)
    # and run at int8 (a quarter of the bytes moved) it costs less still
    run_int8 = api.estimate(HAIRNET, PAPER_ACCELERATOR, policy, precision="int8").energy
    assert run_int8.total_j < int8.total_j < fp32.total_j


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    networks(),
    st.lists(st.tuples(st.sampled_from([8_000, 32_000, 1e6]), st.sampled_from(POLICIES)), min_size=2, max_size=2),
)
def test_moving_fewer_external_bytes_never_costs_more_external_energy(graph: Graph, runs: list) -> None:
    hw = [hardware(capacity) for capacity, _ in runs]
    a, b = (_estimate(graph, h, policy) for h, (_, policy) in zip(hw, runs))
    if a.schedule.bytes_moved > b.schedule.bytes_moved:
        a, b = b, a
    # equal bytes may be summed in another order: equal to rounding
    assert a.summary()["energy_external_j"] <= b.summary()["energy_external_j"] * (1 + 1e-12)


def _movement_j(e: api.Estimate) -> float:
    """Energy of the bytes that cross the bus: the bus itself, and writing loads to / reading stores from SRAM."""
    table = energy_table(e.hardware, e.schedule.precision)
    sram = sum(
        t.bytes * (table.internal_write_j_per_byte if t.direction is Direction.LOAD else table.internal_read_j_per_byte)
        for step in e.schedule.steps
        for t in step.transfers
    )
    return e.summary()["energy_external_j"] + sram


def test_optimized_saves_at_least_the_ratio_of_bytes_it_does_not_move(hairnet) -> None:
    """E = movement + rest, where movement is what the bytes crossing the bus cost (bus, SRAM write of a load,
    SRAM read of a store) and rest is the compute share (arithmetic, the computes' own SRAM reads and writes,
    static power). With r = bytes moved by optimized / by paper: movement falls by r exactly, so
    E_optimized <= r * E_paper + rest_optimized: the saving is at least the bytes ratio, within the compute share."""
    paper, optimized = hairnet["paper"], hairnet["optimized"]
    r = optimized.schedule.bytes_moved / paper.schedule.bytes_moved
    assert r < 0.2
    assert _movement_j(optimized) == pytest.approx(r * _movement_j(paper), rel=1e-9)
    rest = optimized.energy.total_j - _movement_j(optimized)
    assert optimized.energy.total_j <= r * paper.energy.total_j + rest
    assert optimized.energy.total_j < paper.energy.total_j


def test_the_paper_sweep_gives_the_energy_of_estimate_exactly() -> None:
    hw = PAPER_ACCELERATOR.model_copy(update={"energy": None})
    axes = [sweep.parse_axis("memory.internal.capacity=64KB..8MB:log:4", hw)]
    rows = sweep.run(HAIRNET, hw, axes, "paper").rows
    for _, row in rows.iterrows():
        point = sweep.variant(hw, {"memory.internal.capacity": row["memory.internal.capacity_bytes"]})
        summary = api.estimate(HAIRNET, point, "paper").summary()
        for column in ("energy_j", "energy_internal_j", "energy_compute_j", "energy_external_j", "edp_js"):
            assert row[column] == pytest.approx(summary[column], rel=1e-9)
    # a larger SRAM costs more per access: internal energy grows with capacity at equal traffic elsewhere
    assert rows["energy_internal_j"].is_monotonic_increasing


def test_compare_rows_carry_the_summarys_energy(hairnet) -> None:
    from hwsim.studies import compare

    rows = compare.summary_table([hairnet[p] for p in POLICIES]).rows
    for i, policy in enumerate(POLICIES):
        summary = hairnet[policy].summary()
        for column in ("energy_j", "energy_external_j", "energy_per_image_j", "edp_js"):
            assert rows[column][i] == summary[column]
    assert rows["area_mm2"].isna().all()  # the paper's accelerator has no area section


def test_reports_carry_energy_per_layer_and_in_the_summary(hairnet) -> None:
    from hwsim.report import tables

    e = hairnet["optimized"]
    document = json.loads(tables.to_json(e))
    assert document["summary"]["area_mm2"] is None  # no area section: null, not NaN
    layers = sum(row["energy_j"] for row in document["layers"])
    assert layers == pytest.approx(document["summary"]["energy_j"], rel=1e-9)
    assert "energy_external_j" in tables.to_csv(e).splitlines()[0]
