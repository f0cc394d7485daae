"""Adam against Algorithm 3 worked by hand for three steps; SGD with and without momentum."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hwsim.reference import SGD, Adam


def test_adam_three_steps_by_hand():
    params = {"w.weight": np.array([1.0, -2.0])}
    gradients = [np.array([0.1, -0.2]), np.array([0.3, 0.0]), np.array([-0.5, 0.4])]
    adam = Adam()
    for g in gradients:
        adam.step(params, {"w.weight": g})

    # Algorithm 3 for the first element, one line per quantity.
    a, b1, b2, eps = 0.001, 0.9, 0.999, 1e-8
    theta, m, v = 1.0, 0.0, 0.0
    for t, g in enumerate([0.1, 0.3, -0.5], start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        theta -= a * (m / (1 - b1**t)) / (math.sqrt(v / (1 - b2**t)) + eps)
    assert params["w.weight"][0] == pytest.approx(theta, rel=1e-12)
    # Second element, g = -0.2, 0, 0.4, with m̂ and v̂ of each step written out.
    m_hats = [-0.2, (0.9 * -0.02) / (1 - 0.81), (0.9 * 0.9 * -0.02 + 0.04) / (1 - 0.729)]
    v_raw = [0.001 * 0.04, 0.999 * 0.001 * 0.04, 0.999 * 0.999 * 0.001 * 0.04 + 0.001 * 0.16]
    v_hats = [v_raw[0] / 0.001, v_raw[1] / (1 - 0.999**2), v_raw[2] / (1 - 0.999**3)]
    expected = -2.0 - sum(0.001 * mh / (math.sqrt(vh) + 1e-8) for mh, vh in zip(m_hats, v_hats))
    assert params["w.weight"][1] == pytest.approx(expected, rel=1e-12)


def test_sgd_plain_and_momentum():
    params = {"w.weight": np.array([1.0])}
    SGD(lr=0.1).step(params, {"w.weight": np.array([2.0])})
    assert params["w.weight"][0] == pytest.approx(0.8)
    params = {"w.weight": np.array([1.0])}
    sgd = SGD(lr=0.1, momentum=0.5)
    sgd.step(params, {"w.weight": np.array([2.0])})  # b = 2
    sgd.step(params, {"w.weight": np.array([2.0])})  # b = 0.5 * 2 + 2 = 3
    assert params["w.weight"][0] == pytest.approx(1.0 - 0.2 - 0.3)
