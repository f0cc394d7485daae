"""What the reference executes and the cost model counts alike: the passes of a training step, and
the algorithm choices both must agree on.

They live below both so that the check (the NumPy reference) and the checked (the cost model) do
not import each other; ``hwsim verify`` then compares what each says independently.
"""

from __future__ import annotations

from enum import Enum

from hwsim.model.graph import Layer
from hwsim.ops import ConvAttrs


class Pass(str, Enum):
    """What a layer is doing: inference, or one of the three parts of a training step.

    ``forward`` is inference (stored batch-norm statistics, dropout off); ``forward_train`` is the
    forward half of a training step (batch statistics, running averages, dropout masks, the loss).
    """

    FORWARD = "forward"
    FORWARD_TRAIN = "forward_train"
    BACKWARD = "backward"
    OPTIMIZER = "optimizer"


def depthwise_transposed_gradient(layer: Layer) -> bool:
    """Whether a conv's input gradient is a correlation of the padded dy with the flipped kernel.

    Done for depthwise convs (one input channel per group) at stride 1 whose padding is below the
    kernel size: no Kh*Kw-fold column array and no col2im. Other convs multiply dy by the weights
    into columns and add them back with col2im.
    """
    a = layer.attrs
    assert isinstance(a, ConvAttrs)
    p = a.padding
    return (
        layer.input_shape[2] == a.groups
        and a.stride == (1, 1)
        and max(p.top, p.bottom) < a.kernel[0]
        and max(p.left, p.right) < a.kernel[1]
    )
