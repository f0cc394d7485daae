"""The sizes a batch may be split into: what the schedulers choose among and the lower bound must cover.

A batch of ``B`` images may run as ``B // b`` sub-batches of ``b`` and one of the remaining ``B mod b``
(:mod:`hwsim.schedule.batching` chooses ``b``). On an array a smaller sub-batch can take fewer cycles per
image (a row-stationary mapping of more images may move fewer DRAM values in more cycles), so a bound on
every schedule must take the fastest split, not the whole batch's cycles.
"""

from __future__ import annotations


def candidate_sizes(batch: int) -> list[int]:
    """``batch`` and the powers of two below it, largest first: ``[16, 8, 4, 2, 1]``, ``[12, 8, 4, 2, 1]``."""
    sizes, b = [batch], 1
    while b < batch:
        sizes.append(b)
        b *= 2
    return sorted(set(sizes), reverse=True)
