"""Cache-sized sweeps over NHWC maps, for the memory-bound per-channel ops (batch norm, relu).

A map (N, H, W, C) is viewed as rows (M / r, r*C), M = N*H*W: r whole pixels per row, so a
per-channel vector tiled r times lines up with every row, and NumPy's inner loop runs over r*C
elements rather than C. The rows are swept in blocks small enough that the arrays of one block stay
in L2 between the primitives applied to it, instead of every primitive streaming the whole map
through memory.

Only the shape of each primitive's call changes, not the operations: an elementwise primitive does
one per element whatever the block, and a per-channel sum over the m = M values of a channel, taken
block by block, is still m - 1 adds per channel: b - 1 per block of b rows, k - 1 to combine k
blocks, r - 1 to fold the r pixels of a row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache

import numpy as np

from hwsim.reference import primitives as P

ROW_ELEMENTS = 4096
"""Widest row: r is the largest divisor of M with r*C at most this (one pixel when C is larger)."""
BLOCK_ELEMENTS = 1 << 16
"""Elements per block and array: 256 KB of float32, so the arrays of a block mostly stay in a 1 MB L2."""


@dataclass(frozen=True)
class Rows:
    """A map of ``pixels`` * ``channels`` elements as (pixels / repeat, repeat * channels) rows."""

    pixels: int
    channels: int
    repeat: int

    @property
    def width(self) -> int:
        return self.repeat * self.channels

    @property
    def rows(self) -> int:
        return self.pixels // self.repeat

    @property
    def block_rows(self) -> int:
        return max(1, BLOCK_ELEMENTS // self.width)

    def view(self, a: np.ndarray) -> np.ndarray:
        """(…, C) -> (rows, width); a copy only when ``a`` is not contiguous."""
        return a.reshape(self.rows, self.width)

    def tile(self, per_channel: np.ndarray) -> np.ndarray:
        """(C,) -> (block rows, width): the vector at every pixel of a block (data movement).

        Sliced to the rows of a block it lines up element for element, so the primitives run on
        NumPy's contiguous loops (twice as fast as broadcasting a row).
        """
        return np.tile(per_channel, (min(self.block_rows, self.rows), self.repeat))

    def blocks(self) -> Iterator[slice]:
        for start in range(0, self.rows, self.block_rows):
            yield slice(start, start + self.block_rows)

    def scratch(self, dtype: np.dtype) -> np.ndarray:
        """A (block_rows, width) buffer for values needed only within one block."""
        return np.empty((min(self.block_rows, self.rows), self.width), dtype)

    def channel_sum(self, values_of: Callable[[slice], np.ndarray]) -> np.ndarray:
        """(C,) sum over all pixels of ``values_of(block)`` (block rows, width), block by block."""
        total = None
        for block in self.blocks():
            part = P.sum(values_of(block), axis=0)
            total = part if total is None else P.add(total, part, out=total)
        assert total is not None
        return P.sum(total.reshape(self.repeat, self.channels), axis=0)


def rows_of(shape: tuple[int, ...]) -> Rows:
    """The row layout of a map of ``shape`` (…, C)."""
    channels = shape[-1]
    return _rows(int(np.prod(shape[:-1])), channels)


@cache
def _rows(pixels: int, channels: int) -> Rows:
    repeat = max(1, min(pixels, ROW_ELEMENTS // channels))
    while pixels % repeat:
        repeat -= 1
    return Rows(pixels, channels, repeat)
