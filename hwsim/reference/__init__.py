"""The NumPy reference: executes a layer graph forward and backward, counting every operation.

Public API::

    model = Model(graph, seed=0)                   # hwsim.model.expand.load_network(...) gives the graph
    probs = model.forward(x)                       # x (N, H, W, C); inference
    loss, grads = model.loss_and_grads(x, labels)  # training forward + backward
    Adam().step(model.params, grads)
    with counting() as ledger: ...                 # ledger.ops[(layer, Pass.FORWARD)]
    folded = fold_batchnorm(model)                 # Algorithm 2: BN merged into the conv before it
"""

from hwsim.reference.counting import Ledger, Pass, attributed, counting
from hwsim.reference.folding import fold_batchnorm
from hwsim.reference.model import Model
from hwsim.reference.optim import SGD, Adam

__all__ = ["Adam", "Ledger", "Model", "Pass", "SGD", "attributed", "counting", "fold_batchnorm"]
