"""The embedded default dataset: shapes and oriented stripes on random colours, made from a seed.

Every image holds one object (the class) at a random position, scale and rotation, drawn in a
random foreground colour on a random background with a brightness gradient, partly covered by
soft blobs of other colours, plus pixel noise. Colours are drawn independently of the class, so
the mean colour of an image says (almost) nothing about its label: only the object's *form*
(edges, corners, curvature, stripe orientation) does. See ``docs/data.md``.
"""

from __future__ import annotations

import numpy as np

from hwsim.training.data.dataset import Dataset

SYNTHETIC_CLASS_NAMES = (
    "disc",
    "ring",
    "square outline",
    "triangle",
    "cross",
    "checkerboard",
    "stripes 0deg",
    "stripes 45deg",
    "stripes 90deg",
    "stripes 135deg",
)
IMAGE_SIZE = 32
_STRIPE_CLASSES = {6: 0.0, 7: 45.0, 8: 90.0, 9: 135.0}  # class -> stripe direction (degrees)
_STRIPE_JITTER_DEG = 15.0  # < 22.5, so neighbouring stripe classes never overlap
_MIN_CONTRAST = 0.35  # Euclidean RGB distance between foreground and background
_NUM_BLOBS = 2
_NOISE_STD = (0.02, 0.08)


def generate_shapes(num_images: int = 6000, seed: int = 0) -> Dataset:
    """``num_images`` images float32 ``(N, 32, 32, 3)`` in [0, 1], classes balanced, fixed by ``seed``."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(num_images) % len(SYNTHETIC_CLASS_NAMES)).astype(np.int64)
    foreground, background = _contrasting_colours(num_images, rng)
    ramp = _brightness_ramp(num_images, rng)
    painted = [(foreground, _object_coverage(labels, rng))] + _blobs(num_images, rng)
    images = _composite(background, ramp, painted)
    # Uniform noise of the drawn standard deviation: much faster to draw than Gaussian noise.
    noise_std = rng.uniform(*_NOISE_STD, size=(num_images, 1, 1, 1)).astype(np.float32)
    noise = rng.random(images.shape, dtype=np.float32)
    noise -= 0.5
    noise *= noise_std * np.float32(np.sqrt(12.0))
    images += noise
    return Dataset(np.clip(images, 0.0, 1.0, out=images), labels, SYNTHETIC_CLASS_NAMES)


def _composite(background: np.ndarray, ramp: np.ndarray, painted: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Background colour ``(N, 3)`` plus grey ramp ``(N, 32, 32)``, then each ``(colour (N, 3),
    opacity (N, 32, 32))`` in ``painted`` over it, first to last; returns ``(N, 32, 32, 3)``.

    Painting ``image += opacity * (colour - image)`` is linear, so every colour ends up weighted by
    its opacity times the transparency of everything painted after it: the picture is one batched
    ``(1024, L) @ (L, 3)`` product per image rather than a full-size array pass per layer.
    """
    n, num_layers = len(background), len(painted) + 2
    weights = np.empty((n, num_layers, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    colours = np.empty((n, num_layers, 3), dtype=np.float32)
    visible = np.ones_like(ramp)  # how much of what is below still shows through
    for layer, (colour, opacity) in zip(range(num_layers - 1, 1, -1), reversed(painted)):
        np.multiply(opacity, visible, out=weights[:, layer])
        colours[:, layer] = colour
        visible *= 1.0 - opacity
    weights[:, 0] = visible
    colours[:, 0] = background
    np.multiply(visible, ramp, out=weights[:, 1])
    colours[:, 1] = 1.0
    weights_per_pixel = weights.reshape(n, num_layers, IMAGE_SIZE * IMAGE_SIZE).transpose(0, 2, 1)
    return np.matmul(weights_per_pixel, colours).reshape(n, IMAGE_SIZE, IMAGE_SIZE, 3)


def _pixel_centres() -> tuple[np.ndarray, np.ndarray]:
    """Row and column coordinates of the pixel centres, float32 ``(1, 32, 32)`` each."""
    coordinates = np.arange(IMAGE_SIZE, dtype=np.float32) + 0.5
    rows, cols = np.meshgrid(coordinates, coordinates, indexing="ij")
    return rows[None], cols[None]


def _inside(signed_distance: np.ndarray) -> np.ndarray:
    """Anti-aliased coverage from a signed distance in pixels (negative inside): a 1-pixel ramp."""
    return np.clip(0.5 - signed_distance, 0.0, 1.0)


def _object_coverage(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """How much of each pixel the object of class ``labels[n]`` covers, float32 ``(N, 32, 32)``."""
    n = len(labels)
    size = rng.uniform(5.0, 10.0, size=n).astype(np.float32)  # "radius" of the object, pixels
    margin = 0.6 * size
    centre_row = rng.uniform(margin, IMAGE_SIZE - margin).astype(np.float32)
    centre_col = rng.uniform(margin, IMAGE_SIZE - margin).astype(np.float32)
    angle = rng.uniform(0.0, 2 * np.pi, size=n)
    for label, direction_deg in _STRIPE_CLASSES.items():
        stripe = labels == label
        jitter = rng.uniform(-_STRIPE_JITTER_DEG, _STRIPE_JITTER_DEG, size=stripe.sum())
        angle[stripe] = np.deg2rad(direction_deg + jitter)
    period = rng.uniform(3.0, 6.0, size=n).astype(np.float32)  # stripes and checkerboard, pixels

    rows, cols = _pixel_centres()
    coverage = np.empty((n, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    for label in range(len(SYNTHETIC_CLASS_NAMES)):
        chosen = labels == label
        d_row = rows - centre_row[chosen, None, None]
        d_col = cols - centre_col[chosen, None, None]
        cos = np.cos(angle[chosen]).astype(np.float32)[:, None, None]
        sin = np.sin(angle[chosen]).astype(np.float32)[:, None, None]
        u = d_col * cos + d_row * sin  # object frame, pixels
        v = -d_col * sin + d_row * cos
        coverage[chosen] = _shape_coverage(label, u, v, size[chosen, None, None], period[chosen, None, None])
    return coverage


def _shape_coverage(label: int, u: np.ndarray, v: np.ndarray, size: np.ndarray, period: np.ndarray) -> np.ndarray:
    """Coverage ``(M, 32, 32)`` of one class's object, given pixel coordinates ``u, v`` in its frame."""
    radius = np.hypot(u, v)
    half_stroke = np.maximum(0.11 * size, 0.6)
    if label == 0:
        return _inside(radius - size)
    if label == 1:
        return _inside(np.abs(radius - 0.8 * size) - half_stroke)
    if label == 2:
        return _inside(np.abs(np.maximum(np.abs(u), np.abs(v)) - 0.75 * size) - half_stroke)
    if label == 3:
        return _inside(_triangle_distance(u, v, size))
    if label == 4:
        horizontal_bar = np.maximum(np.abs(v) - half_stroke, np.abs(u) - size)
        vertical_bar = np.maximum(np.abs(u) - half_stroke, np.abs(v) - size)
        return _inside(np.minimum(horizontal_bar, vertical_bar))
    window = _inside(radius - 1.2 * size)
    if label == 5:
        return window * _square_wave(np.sin(np.pi * u / period) * np.sin(np.pi * v / period), period)
    if label in _STRIPE_CLASSES:
        # Stripes run along u; the pattern varies across them, along v.
        return window * _square_wave(np.cos(2 * np.pi * v / period), period)
    raise ValueError(f"no shape for class {label}")


def _triangle_distance(u: np.ndarray, v: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Signed distance (approximate) to an equilateral triangle of in-radius ``s / 2``."""
    edges = [u * np.cos(a) + v * np.sin(a) for a in (np.pi / 2, np.pi / 2 + 2 * np.pi / 3, np.pi / 2 + 4 * np.pi / 3)]
    return np.maximum(np.maximum(edges[0], edges[1]), edges[2]) - 0.5 * s


def _square_wave(wave: np.ndarray, period: np.ndarray) -> np.ndarray:
    """A wave in [-1, 1] turned into soft-edged bands of coverage 0 and 1 (edges about a pixel wide)."""
    return np.clip(0.5 + wave * period / 4, 0.0, 1.0)


def _contrasting_colours(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Foreground and background RGB, float32 ``(N, 3)`` each, at least ``_MIN_CONTRAST`` apart."""
    foreground = rng.uniform(size=(n, 3)).astype(np.float32)
    background = rng.uniform(size=(n, 3)).astype(np.float32)
    too_close = np.linalg.norm(foreground - background, axis=1) < _MIN_CONTRAST
    while too_close.any():
        background[too_close] = rng.uniform(size=(too_close.sum(), 3))
        too_close = np.linalg.norm(foreground - background, axis=1) < _MIN_CONTRAST
    return foreground, background


def _brightness_ramp(n: int, rng: np.random.Generator) -> np.ndarray:
    """A linear brightness change across each image in a random direction, float32 ``(N, 32, 32)``."""
    direction = rng.uniform(0.0, 2 * np.pi, size=n).astype(np.float32)[:, None, None]
    strength = rng.uniform(0.0, 0.2, size=n).astype(np.float32)[:, None, None]
    rows, cols = _pixel_centres()
    half = IMAGE_SIZE / 2
    return (strength / half) * ((cols - half) * np.cos(direction) + (rows - half) * np.sin(direction))


def _blobs(n: int, rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    """``_NUM_BLOBS`` soft Gaussian spots anywhere, each ``(colour (N, 3), opacity (N, 32, 32))``."""
    rows, cols = _pixel_centres()
    blobs = []
    for _ in range(_NUM_BLOBS):
        centre = rng.uniform(0.0, IMAGE_SIZE, size=(2, n, 1, 1)).astype(np.float32)
        sigma = rng.uniform(1.0, 2.5, size=(n, 1, 1)).astype(np.float32)
        colour = rng.uniform(size=(n, 3)).astype(np.float32)
        opacity = 0.8 * np.exp(-((rows - centre[0]) ** 2 + (cols - centre[1]) ** 2) / (2 * sigma**2))
        blobs.append((colour, opacity))
    return blobs
