"""The passes of a training step: what the reference executes and the cost model counts alike.

They live below both so that the check (the NumPy reference) and the checked (the cost model) do
not import each other; ``hwsim verify`` then compares what each says independently. The algorithm
choices both must agree on are traits of their op (:func:`hwsim.ops.depthwise_transposed_gradient`).
"""

from __future__ import annotations

from enum import Enum


class Pass(str, Enum):
    """What a layer is doing: inference, or one of the three parts of a training step.

    ``forward`` is inference (stored batch-norm statistics, dropout off); ``forward_train`` is the
    forward half of a training step (batch statistics, running averages, dropout masks, the loss).
    """

    FORWARD = "forward"
    FORWARD_TRAIN = "forward_train"
    BACKWARD = "backward"
    OPTIMIZER = "optimizer"
