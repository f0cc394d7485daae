"""SCALE-Sim v3's own count of what each layer reads from and writes to its SRAMs: the reference for
``hwsim.cost.accesses``.

SCALE-Sim's compute model (``compute/systolic_compute_{os,ws,is}.py``) counts, while it builds a layer's
demand matrices, every ifmap and filter operand it reads from the SRAMs into the array's edge
(``get_ifmap_requests``, ``get_filter_requests``) and every output it writes back
(``get_ofmap_requests``). These counts come from the compute model alone: this script builds the
operand and demand matrices of every distinct layer of ``topologies/<network>-distinct.csv``, exactly
as ``single_layer_sim.run`` does (steps 1.1 to 1.4), and skips the memory system, which the counts do
not depend on; a layer takes a second or two instead of minutes.

Run it in SCALE-Sim's own virtual environment (README.md), from this folder:

    python access_counts.py        # writes accesses.csv, one row per (network, config, layer shape)
"""

from __future__ import annotations

import csv
from pathlib import Path

from run_scalesim import ARRAYS, DATAFLOWS, HERE, NETWORKS, config_file, config_name

COLUMNS = ["network", "config", "layer", "ifmap_reads", "filter_reads", "ofmap_writes"]


def layer_counts(config_path: Path, topology: Path) -> list[tuple[str, int, int, int]]:
    """(layer, ifmap reads, filter reads, ofmap writes) of every layer of ``topology`` under a config file."""
    from scalesim.layout_utils import layouts
    from scalesim.scale_config import scale_config
    from scalesim.single_layer_sim import single_layer_sim
    from scalesim.topology_utils import topologies

    conf = scale_config()
    conf.read_conf_file(str(config_path))
    topo = topologies()
    topo.load_arrays(topofile=str(topology), mnk_inputs=False)
    layout = layouts()
    layout.load_arrays(layoutfile=str(HERE / "topologies" / "layout.csv"), mnk_inputs=False)
    rows = []
    for layer_id in range(topo.get_num_layers()):
        sim = single_layer_sim()
        sim.set_params(layer_id=layer_id, config_obj=conf, topology_obj=topo, layout_obj=layout, verbose=False)
        _, ifmap = sim.op_mat_obj.get_ifmap_matrix()
        _, filters = sim.op_mat_obj.get_filter_matrix()
        _, ofmap = sim.op_mat_obj.get_ofmap_matrix()
        compute = sim.compute_system
        if sim.dataflow == "ws":
            compute.set_params(
                config_obj=conf,
                ifmap_op_mat=ifmap,
                filter_op_mat=filters,
                ofmap_op_mat=ofmap,
                sparsity_ratio_N=sim.sparsity_ratio_N,
                sparsity_ratio_M=sim.sparsity_ratio_M,
                ifmap_op_mat_original=sim.op_mat_obj.ifmap_addr_matrix_original,
                sparsity_filter_array=sim.op_mat_obj.sparse_filter_array,
            )
        else:
            compute.set_params(config_obj=conf, ifmap_op_mat=ifmap, filter_op_mat=filters, ofmap_op_mat=ofmap)
        compute.get_demand_matrices()
        name = topo.get_layer_name(layer_id).strip()
        rows.append((name, compute.get_ifmap_requests(), compute.get_filter_requests(), compute.get_ofmap_requests()))
    return rows


def main() -> None:
    out = HERE / "accesses.csv"
    with open(out, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        for network in NETWORKS:
            for rows, cols in ARRAYS:
                for dataflow in DATAFLOWS:
                    config = config_name(rows, cols, dataflow)
                    for name, ifmap, filters, ofmap in layer_counts(
                        config_file(config), HERE / "topologies" / f"{network}-distinct.csv"
                    ):
                        writer.writerow([network, config, name, int(ifmap), int(filters), int(ofmap)])
                    print(f"{network} {config}: done", flush=True)
    print(f"-> {out.relative_to(HERE)}")


if __name__ == "__main__":
    main()
