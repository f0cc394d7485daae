"""Shared fixtures: the repository's bundled files and a CLI runner; hypothesis's example budgets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parent.parent
NETWORKS = ROOT / "networks"
HARDWARE = ROOT / "hardware"

# Property tests draw few examples in the run a developer makes often; CI reruns them with many
# (HYPOTHESIS_PROFILE=ci). Scheduling one drawn network takes tens of milliseconds, so no deadline.
_PROFILE = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}
settings.register_profile("dev", max_examples=10, **_PROFILE)
settings.register_profile("ci", max_examples=200, **_PROFILE)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the test inside its own empty folder, so relative output paths land there."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="session")
def published_rows() -> tuple:
    """hwsim's predictions of every bundled published case, made once per session (VGG-16 on Eyeriss alone
    schedules for seconds)."""
    from hwsim.studies import validation

    return tuple(validation.published_rows(validation.load_cases()))


@pytest.fixture
def validated_once(monkeypatch: pytest.MonkeyPatch, published_rows: tuple) -> None:
    """``hwsim validate`` with the bundled cases' predictions taken from :func:`published_rows`: the tests that
    use it check what the command does with the rows, not the predictions again."""
    from hwsim.studies import validation

    bundled = validation.load_cases()

    def predicted(cases, *args, **kwargs):  # type: ignore[no-untyped-def]
        assert list(cases) == list(bundled) and not args and not kwargs, "only the bundled cases are cached"
        return list(published_rows)

    monkeypatch.setattr(validation, "published_rows", predicted)
