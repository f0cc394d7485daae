"""A layer graph made executable: parameters, state, forward, backward and the training loss.

``Model.params`` and ``Model.state`` are flat dicts keyed ``<layer>.<name>`` (``stem.weight``,
``stem_bn.running_var``), so a checkpoint is ``np.savez(path, **model.params, **model.state)``.
Every layer runs under :func:`~hwsim.reference.counting.attributed`, so a ledger installed with
:func:`~hwsim.reference.counting.counting` sees the operations of each layer and pass.
"""

from __future__ import annotations

import numpy as np

from hwsim.model.graph import INPUT, Graph, Layer
from hwsim.ops import Op
from hwsim.reference import primitives as P
from hwsim.reference.base import Arrays, layer_of, param_key
from hwsim.reference.counting import Pass, attributed
from hwsim.reference.kernels import make_kernel
from hwsim.reference.loss import cross_entropy, cross_entropy_logit_grad


class Model:
    """Executes ``graph`` on NHWC batches (N, H, W, C).

    Parameters are drawn from ``seed`` (He-normal weights, zero biases, gamma 1, beta 0; running
    mean 0 and variance 1) unless ``params`` and ``state`` are given, as from a checkpoint. The
    same seed also drives dropout, so a seed fixes every result.
    """

    def __init__(
        self,
        graph: Graph,
        seed: int = 0,
        dtype: np.dtype | type = np.float32,
        params: Arrays | None = None,
        state: Arrays | None = None,
    ) -> None:
        self.graph = graph
        self.dtype = np.dtype(dtype)
        self.rng = np.random.default_rng(seed)
        """Draws the initial parameters, then dropout masks: a checkpoint saves its state to resume exactly."""
        self.kernels = {layer.name: make_kernel(layer, self.rng) for layer in graph.layers}
        fresh_params = self._collect(lambda kernel: kernel.init_params(self.dtype))
        fresh_state = self._collect(lambda kernel: kernel.init_state(self.dtype))
        self.params = _adopt("params", fresh_params, params, self.dtype)
        self.state = _adopt("state", fresh_state, state, self.dtype)
        self._keys: dict[str, list[str]] = {layer.name: [] for layer in graph.layers}
        for key in (*self.params, *self.state):
            self._keys[layer_of(key)].append(key)
        self._trained = False

    def _collect(self, arrays_of) -> Arrays:
        return {
            param_key(name, key): value
            for name, kernel in self.kernels.items()
            for key, value in arrays_of(kernel).items()
        }

    def _arrays(self, flat: Arrays, layer: Layer) -> Arrays:
        """The arrays of ``layer`` in ``flat``, under their short names (``weight``)."""
        start = len(layer.name) + 1
        return {key[start:]: flat[key] for key in self._keys[layer.name] if key in flat}

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """The network's output (N, *graph.output.output_shape) for input ``x`` (N, *graph.input_shape).

        Training uses batch statistics, updates the running ones and draws dropout masks; it also
        keeps what :meth:`backward` needs.
        """
        expected = tuple(self.graph.input_shape)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"{self.graph.name}: input of shape {x.shape}, expected (N, {', '.join(map(str, expected))})"
            )
        pass_ = Pass.FORWARD_TRAIN if training else Pass.FORWARD
        outputs = {INPUT: np.asarray(x, dtype=self.dtype)}
        for layer in self.graph.layers:
            kernel = self.kernels[layer.name]
            state = self._arrays(self.state, layer)
            with attributed(layer.name, pass_):
                outputs[layer.name] = kernel.forward(
                    [outputs[name] for name in layer.inputs], self._arrays(self.params, layer), state, training
                )
            self.state.update({param_key(layer.name, key): value for key, value in state.items()})
        self._trained = training
        self.last_output = outputs[self.graph.output.name]
        return self.last_output

    def backward(self, dy: np.ndarray) -> Arrays:
        """Parameter gradients (keyed like :attr:`params`) given dLoss/dOutput, after ``forward(x, training=True)``."""
        return self._backpropagate({self.graph.output.name: dy})

    def loss_and_grads(self, x: np.ndarray, labels: np.ndarray) -> tuple[float, Arrays]:
        """One training forward and backward under the mean cross-entropy of ``labels`` (N,).

        The graph must end in a softmax with one probability vector per image. The loss is charged
        to that softmax's ``forward_train`` pass, the fused gradient (p - onehot) / N to its backward.
        """
        output = self.graph.output
        if output.op is not Op.SOFTMAX:
            raise ValueError(
                f"{self.graph.name}: a cross-entropy loss needs the network to end in softmax, not {output.op.value}"
            )
        labels = np.asarray(labels)
        classes = output.output_shape[2]
        if labels.shape != (len(x),) or labels.min() < 0 or labels.max() >= classes:
            raise ValueError(f"labels must be {len(x)} integers in [0, {classes}), got shape {labels.shape}")
        p = self.forward(x, training=True)
        with attributed(output.name, Pass.FORWARD_TRAIN):
            loss = cross_entropy(p, labels)
        with attributed(output.name, Pass.BACKWARD):
            dlogits = cross_entropy_logit_grad(p, labels)
        (source,) = output.inputs
        return loss, self._backpropagate({source: dlogits} if source != INPUT else {})

    def _backpropagate(self, seeds: dict[str, np.ndarray]) -> Arrays:
        """Walk the layers backwards from the gradients in ``seeds`` (layer name -> dLoss/dOutput).

        A layer read by several consumers sums their gradients (charged to its own backward);
        a layer the gradient never reaches, and the network input, get none.
        """
        if not self._trained:
            raise RuntimeError("backward needs a preceding forward(x, training=True)")
        pending = dict(seeds)
        grads = {key: np.zeros_like(value) for key, value in self.params.items()}
        for layer in reversed(self.graph.layers):
            if layer.name not in pending:
                continue
            needs = tuple(name != INPUT for name in layer.inputs)
            with attributed(layer.name, Pass.BACKWARD):
                dxs, layer_grads = self.kernels[layer.name].backward(
                    pending.pop(layer.name), self._arrays(self.params, layer), needs
                )
            grads.update({param_key(layer.name, key): value for key, value in layer_grads.items()})
            for name, dx in zip(layer.inputs, dxs):
                if dx is None:
                    continue
                if name in pending:
                    with attributed(name, Pass.BACKWARD):
                        pending[name] = P.add(pending[name], dx)
                else:
                    pending[name] = dx
        return grads


def _adopt(what: str, fresh: Arrays, given: Arrays | None, dtype: np.dtype) -> Arrays:
    """``given`` arrays, checked against the keys and shapes of ``fresh``; ``fresh`` when none are given."""
    if given is None:
        return fresh
    if set(given) != set(fresh):
        missing, extra = sorted(set(fresh) - set(given)), sorted(set(given) - set(fresh))
        raise ValueError(f"{what} do not match the graph: missing {missing}, unexpected {extra}")
    for key, value in given.items():
        if np.shape(value) != fresh[key].shape:
            raise ValueError(f"{what}[{key!r}] has shape {np.shape(value)}, the graph needs {fresh[key].shape}")
    return {key: np.array(value, dtype=dtype) for key, value in given.items()}
