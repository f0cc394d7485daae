"""The paper's claims about HairNet's size and cost, recomputed from the bundled networks.

- Section 1 and Table 1: HairNet has "4% of the parameters" of AlexNet;
- Section 3.1: a depthwise separable convolution costs 1/N + 1/K^2 of a standard one;
- Section 3.3: "Adding a dense layer increased the number of parameters by 1.3x".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.table import Table

from hwsim.cost.inference import EXACT
from hwsim.model.expand import bundled_network
from hwsim.model.graph import Graph
from hwsim.ops import ConvAttrs, Op

if TYPE_CHECKING:
    import pandas as pd

    from hwsim.report.terminal import Screen


@dataclass(frozen=True)
class Claim:
    """What the paper says, what hwsim computes, and the command that shows it."""

    name: str
    paper: float
    hwsim: float
    how: str

    @property
    def hwsim_over_paper(self) -> float:
        return self.hwsim / self.paper


def parameter_share(hairnet: Graph, alexnet: Graph) -> Claim:
    return Claim(
        "HairNet parameters / AlexNet parameters",
        0.04,
        hairnet.params / alexnet.params,
        f"{hairnet.params:,} / {alexnet.params:,}",
    )


def dense_head_ratio(dense: Graph, plain: Graph) -> Claim:
    return Claim(
        "parameters with a dense head / without",
        1.3,
        dense.params / plain.params,
        f"{dense.params:,} / {plain.params:,}",
    )


def _stage(layer_name: str) -> str:
    return layer_name.split(".", 1)[0]


def _conv_macs_by_stage(graph: Graph) -> dict[str, int]:
    """MACs of the convolutions inside ``stageN`` blocks, per stage (exact counting, batch 1)."""
    macs: dict[str, int] = {}
    for layer in graph.layers:
        if layer.op in (Op.CONV, Op.DWCONV) and "." in layer.name:
            stage = _stage(layer.name)
            macs[stage] = macs.get(stage, 0) + EXACT.rule(layer.op)(layer, 1)[0]
    return macs


def separable_vs_standard(separable: Graph, standard: Graph) -> pd.DataFrame:
    """Stage by stage: MACs of the depthwise separable blocks over those of standard 3x3 convolutions,
    beside the paper's 1/N + 1/K^2 (N: the stage's filters, K: the depthwise kernel)."""
    import pandas as pd

    sep, std = _conv_macs_by_stage(separable), _conv_macs_by_stage(standard)
    rows = []
    for stage, sep_macs in sep.items():
        dw = next(layer for layer in separable.layers if _stage(layer.name) == stage and layer.op is Op.DWCONV)
        assert isinstance(dw.attrs, ConvAttrs)
        k = dw.attrs.kernel[0]
        filters = next(
            layer for layer in separable.layers if _stage(layer.name) == stage and layer.op is Op.CONV
        ).output_shape[2]
        rows.append(
            {
                "stage": stage,
                "filters_N": filters,
                "kernel_K": k,
                "separable_macs": sep_macs,
                "standard_macs": std[stage],
                "ratio": sep_macs / std[stage],
                "paper_1/N+1/K^2": 1 / filters + 1 / k**2,
            }
        )
    return pd.DataFrame(rows)


def all_claims() -> tuple[list[Claim], pd.DataFrame]:
    """The scalar claims and the stage-by-stage table, from the bundled networks."""
    hairnet = bundled_network("hairnet")
    scalars = [
        parameter_share(hairnet, bundled_network("alexnet")),
        dense_head_ratio(bundled_network("hairnet-dense"), hairnet),
    ]
    return scalars, separable_vs_standard(hairnet, bundled_network("hairnet-standard"))


def render(claims: list[Claim], stages: pd.DataFrame, console: Screen) -> None:
    table = Table(title="The paper's claims, recomputed", header_style="bold", pad_edge=False)
    for column in ("claim", "paper", "hwsim", "hwsim / paper", "from"):
        table.add_column(column, justify="left" if column in ("claim", "from") else "right")
    for c in claims:
        table.add_row(c.name, f"{c.paper:.4g}", f"{c.hwsim:.4g}", f"{c.hwsim_over_paper:.3f}", c.how)
    console.print(table)
    per_stage = Table(
        title="Depthwise separable vs standard 3x3 convolution, MACs per stage", header_style="bold", pad_edge=False
    )
    for column in stages.columns:
        per_stage.add_column(column, justify="left" if column == "stage" else "right")
    for row in stages.itertuples(index=False):
        per_stage.add_row(
            row[0], str(row[1]), str(row[2]), f"{row[3]:,}", f"{row[4]:,}", f"{row[5]:.5f}", f"{row[6]:.5f}"
        )
    console.print(per_stage)


def to_markdown(claims: list[Claim], stages: pd.DataFrame) -> str:
    import pandas as pd

    scalars = pd.DataFrame(
        [(c.name, c.paper, c.hwsim, c.hwsim_over_paper, c.how) for c in claims],
        columns=["claim", "paper", "hwsim", "hwsim / paper", "from"],
    )
    return (
        scalars.to_markdown(index=False, floatfmt=".4g")
        + "\n\n"
        + stages.to_markdown(index=False, floatfmt=".5f", intfmt=",")
        + "\n"
    )
