"""The fuzzer of :mod:`tests.fuzzing` over the bundled files: exit 0 with a whole output, or exit 2 with one line
and nothing written; never a traceback, a hang or a runaway allocation. A few seconds by default, more under
``slow`` (``python -m pytest -m slow``); ``benchmarks/fuzz.py`` runs any number and prints the counts."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fuzzing import Outcome, bounded_memory, cases, run_case


def outcomes(seed: int, count: int, policies: tuple[str, ...], folder: Path) -> list[Outcome]:
    with bounded_memory():
        return [run_case(case, folder) for case in cases(seed, count, policies)]


def broken(seed: int, count: int, policies: tuple[str, ...], folder: Path) -> list[Outcome]:
    return [o for o in outcomes(seed, count, policies, folder) if o.problem]


def report(failures: list[Outcome], seed: int) -> str:
    lines = [f"case {o.case.index} ({o.case.mutation}, {o.case.policy}): {o.problem}" for o in failures[:5]]
    return "\n".join([*lines, f"rerun: python benchmarks/fuzz.py --seed {seed} --show {failures[0].case.index}"])


@pytest.mark.parametrize(("seed", "count", "policies"), [(11, 40, ("paper",)), (12, 8, ("strict", "optimized"))])
def test_fuzzed_inputs_answer_or_refuse_in_one_line(tmp_path: Path, seed: int, count: int, policies) -> None:
    failures = broken(seed, count, policies, tmp_path)
    assert not failures, report(failures, seed)


def test_the_mutations_give_both_answers_and_refusals(tmp_path: Path) -> None:
    """A fuzzer whose every case is refused (or answered) tests one path only: the default run must see both."""
    assert {o.exit_code for o in outcomes(11, 40, ("paper",), tmp_path)} == {0, 2}


@pytest.mark.slow
@pytest.mark.parametrize(("seed", "count", "policies"), [(21, 2000, ("paper",)), (22, 200, ("strict", "optimized"))])
def test_many_fuzzed_inputs_answer_or_refuse_in_one_line(tmp_path: Path, seed: int, count: int, policies) -> None:
    failures = broken(seed, count, policies, tmp_path)
    assert not failures, report(failures, seed)
