"""Shared fixtures: the repository's bundled files and a CLI runner."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
NETWORKS = ROOT / "networks"
HARDWARE = ROOT / "hardware"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the test inside its own empty folder, so relative output paths land there."""
    monkeypatch.chdir(tmp_path)
    return tmp_path
