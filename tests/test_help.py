"""What a newcomer reads first: every command's --help shows how to run it, and --policy says what each does."""

from __future__ import annotations

import re

import pytest

from hwsim.cli import COMMANDS, main
from hwsim.schedule import POLICIES


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_s_help_has_an_example(runner, command: str) -> None:
    result = runner.invoke(main, [command, "--help"], terminal_width=80)
    assert result.exit_code == 0, result.output
    assert re.search(rf"^\s+hwsim {command}\b", result.output, re.MULTILINE), result.output


@pytest.mark.parametrize("command", ["estimate", "compare", "sweep", "roofline"])
def test_policy_help_says_in_a_line_each_what_every_policy_does(runner, command: str) -> None:
    result = runner.invoke(main, [command, "--help"], terminal_width=80)
    lines = [line.strip() for line in result.output.splitlines()]
    for policy in POLICIES:
        described = [line for line in lines if line.startswith(f"{policy}: ")]
        assert len(described) == 1 and len(described[0]) > len(policy) + 10, (policy, result.output)
