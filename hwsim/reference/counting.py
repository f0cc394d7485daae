"""Who performed which operations: the ledger that counted primitives write to.

A :class:`Ledger` is installed with :func:`counting`; :func:`attributed` names the layer and
pass that the primitives called inside it work for. Without a ledger installed the primitives
only compute, so ordinary training and inference pay nothing for the bookkeeping.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from hwsim.model.execution import Pass

__all__ = ["Ledger", "Pass", "attributed", "counting", "record"]


@dataclass
class Ledger:
    """Scalar operations executed, keyed by (layer name, pass)."""

    ops: dict[tuple[str, Pass], int] = field(default_factory=lambda: defaultdict(int))

    def total(self, pass_: Pass | None = None) -> int:
        return sum(n for (_, p), n in self.ops.items() if pass_ is None or p is pass_)

    def of(self, layer: str, pass_: Pass) -> int:
        return self.ops.get((layer, pass_), 0)


_ledger: ContextVar[Ledger | None] = ContextVar("ledger", default=None)
_owner: ContextVar[tuple[str, Pass] | None] = ContextVar("owner", default=None)


@contextmanager
def counting() -> Iterator[Ledger]:
    """Record every primitive executed inside the block into a fresh ledger."""
    ledger = Ledger()
    token = _ledger.set(ledger)
    try:
        yield ledger
    finally:
        _ledger.reset(token)


@contextmanager
def attributed(layer: str, pass_: Pass) -> Iterator[None]:
    """Charge the primitives executed inside the block to ``layer`` during ``pass_``."""
    token = _owner.set((layer, pass_))
    try:
        yield
    finally:
        _owner.reset(token)


def record(ops: int) -> None:
    """Charge ``ops`` scalar operations to the current owner, if a ledger is installed."""
    ledger = _ledger.get()
    if ledger is None:
        return
    owner = _owner.get()
    if owner is None:
        raise RuntimeError("a counted primitive ran outside attributed(layer, pass)")
    ledger.ops[owner] += int(ops)
