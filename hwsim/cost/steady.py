"""Steady state: repeated inference, where weights that fit stay on chip from one image to the next.

An accelerator that runs the same network over and over (a camera's frames, a server's requests)
loads the weights it can keep once, before the first image, and never again: the Coral Edge TPU's
compiler caches parameters in its SRAM this way. So in steady state a run pays no transfer for those
weights, and the rest of the schedule has the internal memory they leave.

Which weights stay: those of the layers in network order, each that still fits (first fit), in the
internal memory less the largest working set of any one layer (its input and output maps at the
run's batch): what a layer needs to run without tiling is kept free, so keeping weights never turns a
layer that ran whole into one that cannot. A schedule then sees ``capacity - kept bytes``.

``one_image`` keeps room for one image's maps instead: a batch then keeps what one image keeps, and its
sub-batches of one image run as one image alone (:func:`hwsim.estimate.estimate` has ``optimized`` try
both and keep the faster, so that a batch is never slower per image than one image).
"""

from __future__ import annotations

from dataclasses import replace

from hwsim.cost.fold import fold_batchnorm
from hwsim.cost.inference import LayerCost
from hwsim.spec.hardware import HardwareSpec


def working_set_bytes(costs: tuple[LayerCost, ...], one_image: bool = False) -> int:
    """The largest input-and-output maps any one layer holds at once: its whole batch, or ``one_image``."""
    largest = max(sum(c.input_bytes) + c.output_bytes for c in costs)
    return largest // costs[0].batch if one_image else largest


def keep_weights(costs: tuple[LayerCost, ...], capacity: float, one_image: bool = False) -> tuple[LayerCost, ...]:
    """``costs`` with ``weights_resident`` set on the layers whose weights stay on chip (module docstring)."""
    room = capacity - working_set_bytes(costs, one_image)
    kept, result = 0, []
    for c in costs:
        stays = 0 < c.weight_bytes <= room - kept
        kept += c.weight_bytes if stays else 0
        result.append(replace(c, weights_resident=stays))
    return tuple(result)


def resident_bytes(costs: tuple[LayerCost, ...]) -> int:
    return sum(c.weight_bytes for c in costs if c.weights_resident)


def reserved_bytes(costs: tuple[LayerCost, ...], hardware: HardwareSpec) -> int:
    """The internal memory the kept weights take, whether or not a policy folds batch norms into them
    (a folded conv carries its batch norm's bias)."""
    return max(resident_bytes(costs), resident_bytes(fold_batchnorm(costs, hardware)[0]))


def steady_state(
    costs: tuple[LayerCost, ...], hardware: HardwareSpec, one_image: bool = False
) -> tuple[tuple[LayerCost, ...], HardwareSpec]:
    """The costs with the weights that stay marked, and the profile a schedule of the rest sees: its internal
    memory less what they take."""
    kept = keep_weights(costs, hardware.memory.internal.capacity, one_image)
    reserved = reserved_bytes(kept, hardware)
    if not reserved:
        return kept, hardware
    internal = hardware.memory.internal.model_copy(update={"capacity": hardware.memory.internal.capacity - reserved})
    memory = hardware.memory.model_copy(update={"internal": internal})
    return kept, hardware.model_copy(update={"memory": memory})
