"""The lower bound of a run: no schedule of these layers on this hardware can be faster.

Every schedule must at least move its compulsory traffic over the bus: the input image in (the rows its
readers read), the network's output out (each at its coded size if the link codes maps), and every weight once per batch
(none that stays on chip in steady state).
Every compute unit must at least execute the ops assigned to it. The bus and the units can all
work at once, so the bound is the largest of these times (not their sum):

    bound = max(compulsory bytes / bandwidth, max over units u of ops(u) / throughput(u))

The bandwidth is what transfers attain (``achievable``); a unit with a systolic array takes at least
its layers' cycles at its clock (:mod:`hwsim.cost.cycles`), whatever the schedule, in the fastest of the
splits into sub-batches the policies may run (:mod:`hwsim.cost.subbatch`): a row-stationary mapping of a
whole batch can take more cycles per image than one of a smaller sub-batch. Fixed costs
(dispatch, transfer setup) depend on how a policy cuts the work and are left out: the bound holds.

Policies may fold batch norms into convs (which changes both weights and ops), so each term is
the smaller of the folded and unfolded network's: the bound holds for schedules of either.
"""

from __future__ import annotations

from dataclasses import dataclass

from hwsim.cost.coding import link_bytes
from hwsim.cost.cycles import layer_seconds
from hwsim.cost.fold import fold_batchnorm
from hwsim.cost.inference import LayerCost, recost
from hwsim.cost.subbatch import candidate_sizes
from hwsim.model.graph import INPUT
from hwsim.model.regions import rows_read
from hwsim.spec.hardware import HardwareSpec


@dataclass(frozen=True)
class LowerBound:
    traffic_bytes: int
    """Compulsory bytes: image in, output out, weights once."""
    transfer_s: float
    compute_s: dict[str, float]
    """Per compute unit: its ops / its throughput."""

    @property
    def total_s(self) -> float:
        return max(self.transfer_s, *self.compute_s.values())

    @property
    def limit(self) -> str:
        """What sets the bound: ``bus`` or the name of a compute unit."""
        return max([("bus", self.transfer_s), *self.compute_s.items()], key=lambda kv: kv[1])[0]


def image_bytes(costs: tuple[LayerCost, ...]) -> int:
    """The input image's bytes over the link, for the whole batch (coded if the link codes it): the rows of it
    that its readers read, the most any one reads (a window shorter than its stride skips rows, and a schedule in
    input passes loads only the rows under its bands: a 1x1 stride-2 conv reads half the image)."""
    readers = [(c, k) for c in costs for k, name in enumerate(c.layer.inputs) if name == INPUT]
    first, at = readers[0]
    size, height = first.input_bytes[at], first.layer.input_shapes[at][0]
    rows = max(rows_read(c.layer) if k == 0 else height for c, k in readers)
    return link_bytes(size // height * rows, first.input_link)


def compulsory_bytes(costs: tuple[LayerCost, ...], io: bool = True) -> int:
    """Every weight not kept on chip, and (``io``) the image in and the output out."""
    weights = sum(c.weight_bytes for c in costs if not c.weights_resident)
    output = link_bytes(costs[-1].output_bytes, costs[-1].output_link)
    return weights + (image_bytes(costs) + output if io else 0)


def unit_seconds(costs: tuple[LayerCost, ...], unit: str, hardware: HardwareSpec) -> float:
    """How long ``unit`` computes its layers of ``costs``: their ops at its throughput, or at the cycles of its
    array in the fastest split of the batch into sub-batches (:mod:`hwsim.cost.subbatch`)."""
    spec = hardware.compute[unit]
    mine = [c for c in costs if c.unit == unit]
    if spec.array is None:
        return sum(c.ops for c in mine) / spec.throughput
    if not mine:
        return 0.0
    return min(_split_seconds(mine, hardware, size) for size in candidate_sizes(mine[0].batch))


def _split_seconds(costs: list[LayerCost], hardware: HardwareSpec, size: int) -> float:
    """The array's cycles for ``costs`` (one unit's, one batch) run as sub-batches of ``size`` images and one of
    the rest, one after another."""
    spec = hardware.compute[costs[0].unit]
    whole, rest = divmod(costs[0].batch, size)

    def seconds(images: int) -> float:
        return sum(layer_seconds(c if images == c.batch else recost(c, hardware, batch=images), spec) for c in costs)

    return whole * seconds(size) + (seconds(rest) if rest else 0.0)


def lower_bound(costs: tuple[LayerCost, ...], hardware: HardwareSpec, io: bool = True) -> LowerBound:
    """The bound for ``costs`` (a whole network, in order) on ``hardware``. ``io=False`` leaves out the image
    and the output, for a schedule that assumes the one on chip and leaves the other there (``paper``)."""
    variants = (costs, fold_batchnorm(costs, hardware)[0])
    traffic = min(compulsory_bytes(v, io) for v in variants)
    units = sorted({c.unit for v in variants for c in v})
    compute = {u: min(unit_seconds(v, u, hardware) for v in variants) for u in units}
    return LowerBound(traffic, traffic / hardware.memory.external.effective_bandwidth, compute)
