"""Cross-entropy on softmax probabilities, and its gradient fused through the softmax.

loss = -sum_n log p[n, label_n] / N;  dLoss/dlogits = (p - onehot(labels)) / N.
"""

from __future__ import annotations

import numpy as np

from hwsim.reference import primitives as P


def _rows(p: np.ndarray) -> np.ndarray:
    """Softmax output (N, 1, 1, K) -> (N, K)."""
    n, h, w, k = p.shape
    if (h, w) != (1, 1):
        raise ValueError(f"cross-entropy needs one probability vector per image (N, 1, 1, K), got {p.shape}")
    return p.reshape(n, k)


def cross_entropy(p: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-probability of the labels; p (N, 1, 1, K), labels (N,) of ints in [0, K)."""
    rows = _rows(p)
    picked = rows[np.arange(len(labels)), labels]
    return float(P.mul(P.sum(P.log(picked), axis=0), -1.0 / len(labels)))


def cross_entropy_logit_grad(p: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """dLoss/dlogits (N, 1, 1, K): subtract 1 at each label, then divide by N."""
    rows = _rows(p).copy()
    index = (np.arange(len(labels)), labels)
    rows[index] = P.sub(rows[index], 1.0)
    return P.mul(rows, 1.0 / len(labels), out=rows).reshape(p.shape)
