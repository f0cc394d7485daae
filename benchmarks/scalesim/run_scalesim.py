"""SCALE-Sim v3 reference cycles for hwsim's networks: topology files from hwsim's graphs, configs, runs, CSVs.

SCALE-Sim is a cycle-accurate systolic-array simulator (PyPI ``scalesim``; needs ``numpy<2.4``). It is
not a dependency of hwsim: run this script in a virtual environment of its own that has both
(README.md beside this file has the commands). Three steps, each rerunnable alone:

``topologies``  writes ``topologies/<network>.csv`` (SCALE-Sim's conv format) from hwsim's graph, and
                ``topologies/<network>-distinct.csv``: each distinct layer shape once, a depthwise
                layer as the single-channel layer SCALE-Sim makes of each of its channels.
``configs``     writes ``configs/<array>-<dataflow>.cfg`` for every array shape and dataflow.
``run``         runs SCALE-Sim on a network's distinct topology for one config (or all, one after
                another) and writes ``results/<network>_<config>.csv``: one row per hwsim layer, with
                how many SCALE-Sim layers it stands for (C for a depthwise layer, else 1) and
                SCALE-Sim's COMPUTE_REPORT figures for one of them. ``--full`` runs the whole
                topology instead (every channel of every depthwise layer; up to 16x the cycles on MobileNet)
                and writes ``results/<network>_<config>_full.csv``, one row per SCALE-Sim layer.

SCALE-Sim simulates every layer on its own (a fresh operand, compute and memory model per layer), so
equal layers give equal figures; ``check_closed_forms.py`` confirms that on the full runs committed.

SCALE-Sim has no padding: a layer's ifmap is given as the rows and columns its windows really read,
(out - 1) * stride + kernel, so its output shape and MACs equal hwsim's. A depthwise layer is written
with ``DP`` in its name, C channels and the multiplier's filters; SCALE-Sim then simulates C
single-channel layers of that many filters.
A dense layer is a 1x1 convolution on a 1x1 map.
"""

from __future__ import annotations

import argparse
import csv
import gc
import sys
import tempfile
import time
from dataclasses import astuple, dataclass, replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
NETWORKS = ("mobilenet-v1", "resnet18")
ARRAYS = ((32, 32), (16, 64))
DATAFLOWS = ("os", "ws", "is")
TOPOLOGY_HEADER = "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,"
LAYOUT_HEADER = "Layer name,"  # an empty layout file: custom layouts are off, so SCALE-Sim never reads one
TOPOLOGY_FIELDS = ["ifmap_h", "ifmap_w", "filter_h", "filter_w", "channels", "filters", "stride"]
COMPUTE_COLUMNS = [
    "total_cycles_incl_prefetch",
    "compute_cycles",
    "stall_cycles",
    "overall_util_pct",
    "mapping_efficiency_pct",
    "compute_util_pct",
]


@dataclass(frozen=True)
class TopologyRow:
    """One line of a SCALE-Sim conv topology, and the hwsim layer it stands for."""

    name: str
    layer: str
    ifmap_h: int
    ifmap_w: int
    filter_h: int
    filter_w: int
    channels: int
    filters: int
    stride: int

    def line(self) -> str:
        return ", ".join([self.name, *map(str, shape(self))]) + ","


def topology_rows(network: str) -> list[TopologyRow]:
    """conv, dwconv and dense layers of a bundled hwsim network as SCALE-Sim rows, in graph order."""
    from hwsim import api
    from hwsim.ops import ConvAttrs, Op

    rows = []
    for layer in api.load_network(network).layers:
        if layer.op is Op.DENSE:
            rows.append(TopologyRow(layer.name, layer.name, 1, 1, 1, 1, layer.input_shape[2], layer.output_shape[2], 1))
            continue
        if layer.op not in (Op.CONV, Op.DWCONV):
            continue
        a = layer.attrs
        assert isinstance(a, ConvAttrs)
        (kh, kw), (sh, sw) = a.kernel, a.stride
        ho, wo, co = layer.output_shape
        if sh != sw:
            raise ValueError(f"{layer.name}: SCALE-Sim takes one stride for both axes, got {a.stride}")
        read_h, read_w = (ho - 1) * sh + kh, (wo - 1) * sw + kw
        ci = layer.input_shape[2]
        if layer.op is Op.DWCONV:  # SCALE-Sim keeps a DP row's filters per channel: the multiplier
            rows.append(TopologyRow(f"{layer.name}.DP", layer.name, read_h, read_w, kh, kw, ci, co // ci, sh))
        elif a.groups == 1:
            rows.append(TopologyRow(layer.name, layer.name, read_h, read_w, kh, kw, ci, co, sh))
        else:
            raise ValueError(f"{layer.name}: grouped convolutions (groups {a.groups}) are not written yet")
        assert "DP" not in layer.name, "SCALE-Sim reads DP in a name as depthwise"
    return rows


def single_channel(row: TopologyRow) -> TopologyRow:
    """What SCALE-Sim simulates for each channel of a DP row (topology_utils.load_arrays_conv sets Channels to 1)."""
    return replace(row, name=row.name.removesuffix(".DP"), channels=1)


def shape(row: TopologyRow) -> tuple[int, ...]:
    return astuple(row)[2:]


def distinct_rows(rows: list[TopologyRow]) -> list[TopologyRow]:
    """Each layer shape SCALE-Sim would simulate, once, in order of first appearance (depthwise: one channel)."""
    seen: dict[tuple[int, ...], TopologyRow] = {}
    for row in rows:
        simulated = single_channel(row) if "DP" in row.name else row
        seen.setdefault(shape(simulated), simulated)
    return list(seen.values())


def write_topology(path: Path, rows: list[TopologyRow]) -> None:
    path.write_text("\n".join([TOPOLOGY_HEADER, *(row.line() for row in rows)]) + "\n")


def write_topologies() -> None:
    folder = HERE / "topologies"
    folder.mkdir(exist_ok=True)
    for network in NETWORKS:
        rows = topology_rows(network)
        write_topology(folder / f"{network}.csv", rows)
        write_topology(folder / f"{network}-distinct.csv", distinct_rows(rows))
    (folder / "layout.csv").write_text(LAYOUT_HEADER + "\n")


def config_name(rows: int, cols: int, dataflow: str) -> str:
    return f"{rows}x{cols}-{dataflow}"


def config_text(rows: int, cols: int, dataflow: str) -> str:
    """SCALE-Sim's own example config (configs/scale.cfg in its repository) with the array and dataflow set.

    CALC bandwidth: SCALE-Sim sizes the DRAM interface to what the array demands, so the reported
    compute cycles are the array's, without memory stalls.
    """
    return f"""[general]
run_name = {config_name(rows, cols, dataflow)}

[architecture_presets]
ArrayHeight:    {rows}
ArrayWidth:     {cols}
IfmapSramSzkB:   64
FilterSramSzkB:  64
OfmapSramSzkB:   64
IfmapOffset:    0
FilterOffset:   10000000
OfmapOffset:    20000000
Bandwidth : 10
Dataflow : {dataflow}
MemoryBanks:   1
ReadRequestBuffer: 32
WriteRequestBuffer: 32

[layout]
IfmapCustomLayout: False
IfmapSRAMBankBandwidth: 10
IfmapSRAMBankNum: 10
IfmapSRAMBankPort: 2
FilterCustomLayout: False
FilterSRAMBankBandwidth: 10
FilterSRAMBankNum: 10
FilterSRAMBankPort: 2

[sparsity]
SparsitySupport : false
SparseRep : ellpack_block
OptimizedMapping : false
BlockSize : 8
RandomNumberGeneratorSeed : 40

[run_presets]
InterfaceBandwidth: CALC
UseRamulatorTrace: False
"""


def config_file(config: str) -> Path:
    return HERE / "configs" / f"{config}.cfg"


def write_configs() -> None:
    folder = HERE / "configs"
    folder.mkdir(exist_ok=True)
    for rows, cols in ARRAYS:
        for dataflow in DATAFLOWS:
            (folder / f"{config_name(rows, cols, dataflow)}.cfg").write_text(config_text(rows, cols, dataflow))


def expanded(rows: list[TopologyRow]) -> list[tuple[TopologyRow, int | None]]:
    """SCALE-Sim's layers in its order: a DP row becomes one layer per channel (channel index beside it)."""
    return [(row, c) for row in rows for c in (range(row.channels) if "DP" in row.name else [None])]


def simulate(topology: Path, config_file: Path) -> tuple[list[list[str]], float]:
    """SCALE-Sim's COMPUTE_REPORT rows (layer id and six figures) for one topology, traces off; and the seconds.

    The config's run name must be its file's stem (``config_text`` writes it so): SCALE-Sim reports there."""
    from scalesim.scale_sim import scalesim

    with tempfile.TemporaryDirectory(prefix="scalesim-") as scratch:
        start = time.perf_counter()
        sim = scalesim(
            save_disk_space=True,
            verbose=False,
            config=str(config_file),
            topology=str(topology),
            layout=str(HERE / "topologies" / "layout.csv"),
            input_type_gemm=False,
        )
        sim.run_scale(top_path=scratch)
        seconds = time.perf_counter() - start
        with open(Path(scratch) / config_file.stem / "COMPUTE_REPORT.csv") as f:
            report = [[cell.strip() for cell in line][:7] for line in csv.reader(f)][1:]
    del sim
    gc.collect()
    return report, seconds


def run(network: str, config: str) -> Path:
    """SCALE-Sim on the distinct layers; every hwsim layer gets the figures of the shape it has."""
    rows = topology_rows(network)
    distinct = distinct_rows(rows)
    report, seconds = simulate(HERE / "topologies" / f"{network}-distinct.csv", config_file(config))
    if len(report) != len(distinct):
        raise RuntimeError(f"SCALE-Sim reported {len(report)} layers for {len(distinct)} distinct ones")
    figures = {shape(row): line[1:] for row, line in zip(distinct, report)}
    out = HERE / "results" / f"{network}_{config}.csv"
    out.parent.mkdir(exist_ok=True)
    with open(out, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["layer", "scalesim_layer", "simulated_as", *TOPOLOGY_FIELDS, "runs", *COMPUTE_COLUMNS])
        for row in rows:
            simulated = single_channel(row) if "DP" in row.name else row
            runs = row.channels if "DP" in row.name else 1
            writer.writerow([row.layer, row.name, simulated.name, *shape(simulated), runs, *figures[shape(simulated)]])
    print(
        f"{network} {config}: {len(distinct)} distinct SCALE-Sim layers in {seconds:.0f} s -> {out.relative_to(HERE)}"
    )
    return out


def run_full(network: str, config: str) -> Path:
    """SCALE-Sim on the whole topology, as its own command line would run it: one row per SCALE-Sim layer."""
    layers = expanded(topology_rows(network))
    report, seconds = simulate(HERE / "topologies" / f"{network}.csv", config_file(config))
    if len(report) != len(layers):
        raise RuntimeError(f"SCALE-Sim reported {len(report)} layers, the topology expands to {len(layers)}")
    out = HERE / "results" / f"{network}_{config}_full.csv"
    out.parent.mkdir(exist_ok=True)
    with open(out, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["scalesim_layer_id", "layer", "channel", *COMPUTE_COLUMNS])
        for line, (row, channel) in zip(report, layers):
            writer.writerow([line[0], row.layer, "" if channel is None else channel, *line[1:]])
    print(f"{network} {config} (full): {len(report)} SCALE-Sim layers in {seconds:.0f} s -> {out.relative_to(HERE)}")
    return out


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=["topologies", "configs", "run"])
    parser.add_argument("--network", choices=NETWORKS, help="run: one network (default: all)")
    parser.add_argument("--config", help="run: one config name such as 32x32-os (default: all)")
    parser.add_argument("--full", action="store_true", help="run: the whole topology, every depthwise channel")
    args = parser.parse_args(argv)
    if args.step == "topologies":
        write_topologies()
    elif args.step == "configs":
        write_configs()
    else:
        configs = [args.config] if args.config else [p.stem for p in sorted((HERE / "configs").glob("*.cfg"))]
        for network in [args.network] if args.network else NETWORKS:
            for config in configs:
                (run_full if args.full else run)(network, config)


if __name__ == "__main__":
    main(sys.argv[1:])
