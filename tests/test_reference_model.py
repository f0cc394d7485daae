"""The Model end to end: parameters, checkpoints, seeds, whole-network gradients, training, BN folding."""

from __future__ import annotations

import numpy as np
import pytest
from reference_helpers import SMALL_NET, numeric_gradient

from hwsim.model.expand import load_network
from hwsim.ops import Op
from hwsim.reference import SGD, Adam, Model, fold_batchnorm


@pytest.fixture
def small_graph(tmp_path):
    path = tmp_path / "small.yaml"
    path.write_text(SMALL_NET)
    return load_network(path)


def batch(graph, n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, *graph.input_shape)), rng.integers(0, graph.output.output_shape[2], n)


def test_params_and_state_are_flat_and_named_after_layers(small_graph, tmp_path):
    model = Model(small_graph)
    assert {"c1.weight", "c1.bias", "bn1.gamma", "bn1.beta", "dw.weight", "fc.weight"} <= set(model.params)
    assert set(model.state) == {"bn1.running_mean", "bn1.running_var"}
    assert model.params["c1.weight"].shape == (3, 3, 2, 4)
    assert sum(v.size for v in model.params.values()) == small_graph.params
    np.savez(tmp_path / "ckpt.npz", **model.params)
    restored = Model(small_graph, seed=99, params=dict(np.load(tmp_path / "ckpt.npz")), state=model.state)
    x, _ = batch(small_graph, 2)
    np.testing.assert_array_equal(restored.forward(x), model.forward(x))


def test_checkpoint_mismatch_and_bad_input_are_explained(small_graph):
    model = Model(small_graph)
    with pytest.raises(ValueError, match="missing \\['fc.bias'\\]"):
        Model(small_graph, params={k: v for k, v in model.params.items() if k != "fc.bias"})
    with pytest.raises(ValueError, match=r"expected \(N, 6, 6, 2\)"):
        model.forward(np.zeros((1, 5, 6, 2)))
    with pytest.raises(RuntimeError, match="training=True"):
        model.backward(np.zeros((1, 1, 1, 3)))


def test_whole_network_gradients_match_central_differences(small_graph):
    model = Model(small_graph, seed=1, dtype=np.float64)
    x, labels = batch(small_graph, 3)
    model_seed_state = {k: v.copy() for k, v in model.state.items()}

    def loss() -> float:
        # the same dropout mask every time: a fresh model with the same seed and the current parameters
        return Model(small_graph, seed=1, dtype=np.float64, params=model.params, state=model_seed_state).loss_and_grads(
            x, labels
        )[0]

    _, grads = Model(small_graph, seed=1, dtype=np.float64, params=model.params, state=model_seed_state).loss_and_grads(
        x, labels
    )
    for key in ("c1.weight", "bn1.gamma", "dw.weight", "fc.bias"):
        np.testing.assert_allclose(
            grads[key], numeric_gradient(loss, model.params[key]), rtol=1e-5, atol=1e-8, err_msg=key
        )


def test_fixed_seed_gives_identical_training(small_graph):
    def train(seed):
        model, adam = Model(small_graph, seed=seed), Adam()
        x, labels = batch(small_graph, 4)
        losses = []
        for _ in range(3):
            loss, grads = model.loss_and_grads(x, labels)
            adam.step(model.params, grads)
            losses.append(loss)
        return losses, model.params

    (losses_a, params_a), (losses_b, params_b), (losses_c, _) = train(5), train(5), train(6)
    assert losses_a == losses_b
    assert all(np.array_equal(params_a[k], params_b[k]) for k in params_a)
    assert losses_a != losses_c


@pytest.mark.parametrize("optimizer", [Adam(alpha=0.03), SGD(lr=0.1, momentum=0.9)], ids=["adam", "sgd"])
def test_training_loss_falls(small_graph, optimizer):
    model = Model(small_graph, seed=0)
    x, labels = batch(small_graph, 16)

    def inference_loss() -> float:
        return float(-np.mean(np.log(model.forward(x)[np.arange(16), 0, 0, labels])))

    first = inference_loss()
    for _ in range(60):
        optimizer.step(model.params, model.loss_and_grads(x, labels)[1])
    assert inference_loss() < 0.5 * first


def test_loss_needs_a_softmax_output(tmp_path):
    path = tmp_path / "logits.yaml"
    path.write_text("name: logits\ninput: [1, 1, 4]\nlayers:\n  - {op: dense, units: 3}\n")
    with pytest.raises(ValueError, match="end in softmax, not dense"):
        Model(load_network(path)).loss_and_grads(np.zeros((2, 1, 1, 4)), np.array([0, 1]))


def test_folded_batchnorm_matches_unfolded():
    graph = load_network("networks/hairnet-cifar10-small.yaml")  # every stage's conv, dwconv and batch norm kinds
    model = Model(graph, seed=0)
    adam = Adam()
    x, labels = batch(graph, 8)
    for _ in range(2):  # move the running statistics and gammas away from their initial values
        adam.step(model.params, model.loss_and_grads(x, labels)[1])
    folded = fold_batchnorm(model)
    assert not any(layer.op is Op.BATCHNORM for layer in folded.graph.layers)
    assert len(folded.graph.layers) == len(graph.layers) - sum(layer.op is Op.BATCHNORM for layer in graph.layers)
    assert folded.graph.layer("stem").attrs.bias and folded.graph.layer("stem_relu").inputs == ("stem",)
    assert folded.graph.params == graph.params - sum(
        layer.params // 2 for layer in graph.layers if layer.op is Op.BATCHNORM
    )
    np.testing.assert_allclose(folded.forward(x), model.forward(x), atol=1e-5)


def test_batchnorm_folds_only_after_an_affine_layer_it_alone_reads(tmp_path):
    path = tmp_path / "unfoldable.yaml"
    path.write_text(
        "name: unfoldable\ninput: [4, 4, 2]\nlayers:\n"
        "  - {op: conv, kernel: 1, filters: 2, name: c}\n"
        "  - {op: batchnorm, name: after_conv}\n"
        "  - {op: relu, name: r}\n"
        "  - {op: batchnorm, name: after_relu}\n"
        "  - {op: conv, kernel: 1, filters: 2, name: shared}\n"
        "  - {op: batchnorm, name: after_shared}\n"
        "  - {op: add, inputs: [after_shared, shared], name: sum}\n"
    )
    folded = fold_batchnorm(Model(load_network(path)))
    assert [layer.name for layer in folded.graph.layers] == ["c", "r", "after_relu", "shared", "after_shared", "sum"]
    assert folded.graph.layer("r").inputs == ("c",)
