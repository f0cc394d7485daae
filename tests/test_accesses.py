"""Below the schedule's events: SRAM reads as a dataflow streams them, PE registers and links, and their energy."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import scalesim_shapes as shapes
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from schedule_helpers import graph_from

from hwsim import api
from hwsim.cost.accesses import layer_accesses, view_accesses
from hwsim.cost.cycles import MatrixView, matrix_view
from hwsim.cost.inference import graph_costs
from hwsim.errors import InputError
from hwsim.schedule.energy import EnergyParts, schedule_energy
from hwsim.spec.energy import ACCESS_LADDER, energy_table
from hwsim.spec.hardware import SYSTOLIC, ComputeUnit, Dataflow, HardwareSpec

SCALESIM = Path(__file__).resolve().parents[1] / "benchmarks" / "scalesim"
COUNTS = list(csv.DictReader(open(SCALESIM / "accesses.csv")))
PJ = 1e-12

views = st.builds(
    MatrixView,
    groups=st.integers(1, 3),
    pixels=st.integers(1, 2000),
    window=st.integers(1, 600),
    filters=st.integers(1, 300),
)
sides = st.integers(1, 48)


def _per_group(network: str, layer: str) -> MatrixView:
    costs = {c.name: c for c in graph_costs(api.load_network(network), api.load_hardware("paper-accelerator"))}
    view = matrix_view(costs[layer].layer, 1)
    assert view is not None
    return MatrixView(1, view.pixels, view.window, view.filters)


def test_the_committed_counts_cover_both_networks_two_arrays_and_three_dataflows() -> None:
    assert {r["network"] for r in COUNTS} == {"mobilenet-v1", "resnet18"}
    assert {r["config"] for r in COUNTS} == {f"{a}-{d}" for a in ("32x32", "16x64") for d in ("os", "ws", "is")}
    assert len(COUNTS) == 6 * (20 + 12)  # every distinct layer shape of each network, in every config


@pytest.mark.parametrize("config", sorted({r["config"] for r in COUNTS}))
def test_every_layer_reads_and_writes_what_scalesim_counts(config: str) -> None:
    """SCALE-Sim's compute model counts each operand value it sends into the array and each output it writes
    (benchmarks/scalesim/access_counts.py). hwsim's reads are SCALE-Sim's exactly; so are its writes under ws and is.
    Under os SCALE-Sim also adds, per fold, the height and width of the fold's output block to its write count
    (``ofmap_writes += shape[0] + shape[1]`` after flipping the block): bookkeeping, not writes, so hwsim leaves it out.
    """
    array, dataflow = config.split("-")
    rows, cols = map(int, array.split("x"))
    for row in (r for r in COUNTS if r["config"] == config):
        view = _per_group(row["network"], row["layer"])
        mine = view_accesses(view, rows, cols, Dataflow(dataflow))
        assert (mine.ifmap_reads, mine.filter_reads) == (int(row["ifmap_reads"]), int(row["filter_reads"])), row
        folds = math.ceil(view.pixels / rows) * math.ceil(view.filters / cols)
        bookkeeping = folds * (rows + cols) if dataflow == "os" else 0
        assert mine.output_writes + bookkeeping == int(row["ofmap_writes"]), row


@pytest.mark.parametrize("run", shapes.SHAPE_RUNS, ids=[p.stem for p in shapes.SHAPE_RUNS])
def test_small_layers_read_and_write_what_scalesim_counts(run: Path) -> None:
    """The small layers of benchmarks/scalesim/shapes (1-wide dimensions, groups, depthwise, batches) on arrays
    from 1 x 1 to 128 x 128: SCALE-Sim's counts per run, times the runs, are hwsim's (os writes less the same
    per-fold bookkeeping as above)."""
    unit = shapes.array_of(run.stem)
    assert unit.array is not None and unit.dataflow is not None
    rows, cols = unit.array
    for row in shapes.rows_of(run):
        cost = shapes.case_cost(shapes.CASES[row["case"]])
        mine, runs = layer_accesses(cost, unit), int(row["runs"])
        assert (mine.ifmap_reads, mine.filter_reads) == (
            runs * int(row["ifmap_reads"]),
            runs * int(row["filter_reads"]),
        )
        view = shapes.scalesim_view(row)
        folds = math.ceil(view.pixels / rows) * math.ceil(view.filters / cols)
        bookkeeping = folds * (rows + cols) if unit.dataflow is Dataflow.OS else 0
        assert mine.output_writes + runs * bookkeeping == runs * int(row["ofmap_writes"]), row


def test_a_pointwise_conv_on_a_small_array_as_counted_by_hand() -> None:
    """P = 16 pixels, W = 3, F = 8 filters on 4 x 4 PEs. os: 2 column folds re-read the ifmap (2 x 48), 4 row folds
    the filters (4 x 24); ws reads the filters once and the ifmap once per column fold; is reads the ifmap once and
    the filters once per column fold of pixels (4 x 24). One row fold of the window: no partial sums read back."""
    view = MatrixView(1, 16, 3, 8)
    os_, ws, is_ = (view_accesses(view, 4, 4, d) for d in (Dataflow.OS, Dataflow.WS, Dataflow.IS))
    assert (os_.ifmap_reads, os_.filter_reads, os_.output_writes) == (96, 96, 128)
    assert (ws.ifmap_reads, ws.filter_reads, ws.output_writes, ws.psum_reads) == (96, 24, 128, 0)
    assert (is_.ifmap_reads, is_.filter_reads, is_.output_writes, is_.psum_reads) == (48, 96, 128, 0)
    assert os_.register == 2 * 384 and ws.register == 384 + 24 and is_.register == 384 + 48
    # each streaming value hops to every PE of its row or column but the first: MACs less the values read
    assert os_.inter_pe == (384 - 96) + (384 - 96)
    assert ws.inter_pe == (384 - 96) + (384 - 128)


def test_a_window_deeper_than_the_array_reads_its_partial_sums_back() -> None:
    """W = 10 on 4 rows: 3 row folds, each writing a partial sum of all P x F outputs; the 2 later folds read the
    earlier sums back to add to them."""
    acc = view_accesses(MatrixView(1, 5, 10, 2), 4, 4, Dataflow.WS)
    assert (acc.output_writes, acc.psum_reads) == (3 * 10, 2 * 10)


@settings(max_examples=200, deadline=None)
@given(view=views, rows=sides, cols=sides)
def test_the_dataflow_that_keeps_an_operand_stationary_reads_it_least(view, rows, cols) -> None:
    """ws reads every weight once and is every ifmap value once, which no other dataflow beats; os writes every
    output once. A dataflow that reuses an operand in the array reads the SRAM less for it."""
    acc = {d: view_accesses(view, rows, cols, d) for d in SYSTOLIC}
    g = view.groups
    assert acc[Dataflow.WS].filter_reads == g * view.window * view.filters == min(a.filter_reads for a in acc.values())
    assert acc[Dataflow.IS].ifmap_reads == g * view.pixels * view.window == min(a.ifmap_reads for a in acc.values())
    assert acc[Dataflow.OS].output_writes == g * view.pixels * view.filters
    assert acc[Dataflow.OS].psum_reads == 0


@settings(max_examples=200, deadline=None)
@given(view=views, rows=sides, cols=sides, dataflow=st.sampled_from(SYSTOLIC), grow=st.integers(1, 8))
def test_a_larger_array_never_reads_the_sram_more(view, rows, cols, dataflow, grow) -> None:
    """More PEs keep more of a streaming operand in the array: SRAM traffic never grows with the array."""
    small, large = view_accesses(view, rows, cols, dataflow), view_accesses(view, rows * grow, cols * grow, dataflow)
    assert large.sram_reads <= small.sram_reads and large.output_writes <= small.output_writes


@settings(max_examples=200, deadline=None)
@given(view=views, rows=sides, cols=sides, dataflow=st.sampled_from(SYSTOLIC))
def test_register_and_link_traffic_scale_with_the_macs(view, rows, cols, dataflow) -> None:
    """Every MAC reads its stationary operand from a register (os: reads and writes its partial sum), and takes each
    streaming value from a neighbour unless it came from the SRAM: between 1 and 2 register accesses and at most 2
    hops per MAC, whatever the layer."""
    acc = view_accesses(view, rows, cols, dataflow)
    assert acc.macs == view.macs
    assert acc.macs <= acc.register <= 2 * acc.macs
    assert 0 <= acc.inter_pe <= 2 * acc.macs
    if dataflow is Dataflow.OS:
        assert acc.register == 2 * acc.macs


def test_an_op_without_a_matrix_view_moves_nothing_below_its_events() -> None:
    graph = graph_from({"name": "pool", "input": [8, 8, 4], "layers": [{"op": "maxpool", "size": 2}]})
    cost = graph_costs(graph, api.load_hardware("paper-accelerator"))[0]
    assert layer_accesses(cost, ComputeUnit(array=(4, 4), dataflow="ws", clock=1e9)).sram_reads == 0


# --- energy ---------------------------------------------------------------------------------------------------

ARRAY_PROFILE = {
    "name": "array",
    "memory": {"internal": {"capacity": "64 KiB"}, "external": {"bandwidth": "1 GB/s"}},
    "compute": {
        "matrix": {"array": [8, 8], "dataflow": "ws", "clock": "200 MHz"},
        "vector": {"throughput": "1 GOPS"},
    },
    "precision": "int16",
}
NET = graph_from(
    {
        "name": "two convs",
        "input": [24, 24, 8],
        "layers": [
            {"op": "conv", "kernel": 3, "filters": 16},
            {"op": "relu"},
            {"op": "conv", "kernel": 3, "filters": 32, "stride": 2},
        ],
    }
)


def _profile(**energy: object) -> HardwareSpec:
    return HardwareSpec.model_validate({**ARRAY_PROFILE, **({"energy": energy} if energy else {})})


def test_the_ladder_is_iscas_and_the_levels_default_to_it() -> None:
    assert ACCESS_LADDER == {"register": 1.0, "inter_pe": 2.0, "buffer": 6.0, "dram": 200.0}
    table = energy_table(_profile(compute={"matrix": {"int16": {"mac": "1.5 pJ"}}}, array={}), "int16")
    assert table.register_j == {"matrix": pytest.approx(1.5 * PJ)}
    assert table.inter_pe_j == {"matrix": pytest.approx(3.0 * PJ)}
    assert energy_table(_profile(array={"register_file": "0.2 pJ"}), "int16").register_j["matrix"] == 0.2 * PJ
    assert energy_table(_profile(), "int16").register_j == {}  # no array section: nothing below the events


@pytest.mark.parametrize("policy", ["paper", "strict", "optimized"])
def test_without_an_array_section_the_energy_is_the_event_walks_alone(policy: str) -> None:
    e = api.estimate(NET, _profile(), policy)
    costs = e.scheduled_costs
    assert e.step_energy == schedule_energy(e.schedule, costs, energy_table(e.hardware, "int16"))


@pytest.mark.parametrize(("policy", "batch"), [("paper", 1), ("strict", 3), ("optimized", 2)])
def test_each_layer_below_the_events_is_charged_once_whatever_the_schedule_cuts_it_into(
    policy: str, batch: int
) -> None:
    """Bands, chunks and sub-batches each pay their ops' share of their layer's register, link and SRAM energy: the
    run pays exactly the layers' sum on top of the event walk."""
    hw = _profile(array={})
    e = api.estimate(NET, hw, policy, batch=batch)
    events = sum(schedule_energy(e.schedule, e.scheduled_costs, energy_table(hw, "int16")), EnergyParts())
    below = sum(e.below_events_energy.values(), EnergyParts())
    assert e.energy.compute_j - events.compute_j == pytest.approx(below.compute_j, rel=1e-9)
    assert e.energy.internal_j - events.internal_j == pytest.approx(below.internal_j, rel=1e-9)
    assert e.energy.external_j == events.external_j and below.compute_j > 0


def test_register_energy_grows_with_the_macs_and_its_price() -> None:
    """Under os every MAC reads and writes its partial sum: doubling the batch doubles the register accesses, and the
    register energy is those accesses at the profile's price."""
    os_array = {**ARRAY_PROFILE["compute"], "matrix": {"array": [8, 8], "dataflow": "os", "clock": "200 MHz"}}
    energy = {"array": {"register_file": "2 pJ", "inter_pe": "0 pJ"}, "internal": {"read": 0, "write": 0}}
    hw = HardwareSpec.model_validate({**ARRAY_PROFILE, "compute": os_array, "energy": energy})
    one, two = (api.estimate(NET, hw, "paper", batch=b) for b in (1, 2))
    assert one.layer_accesses.keys() == two.layer_accesses.keys() == {"conv", "conv2"}
    for name, acc in one.layer_accesses.items():
        assert two.layer_accesses[name].register == 2 * acc.register == 4 * acc.macs
        assert one.below_events_energy[name] == EnergyParts(compute_j=pytest.approx(acc.register * 2 * PJ))


def test_an_array_section_without_an_array_is_one_located_error(tmp_path) -> None:
    doc = {**ARRAY_PROFILE, "compute": {"matrix": {"throughput": "1 TOPS"}, "vector": {"throughput": "1 GOPS"}}}
    path = tmp_path / "hw.yaml"
    path.write_text(yaml.safe_dump({**doc, "energy": {"array": {"register_file": "1 pJ"}}}))
    with pytest.raises(InputError, match="no compute unit has an `array`") as caught:
        api.load_hardware(path)
    assert str(caught.value).startswith(f"{path}:")
