"""``python -m hwsim``: the same command as ``hwsim``."""

from hwsim.cli import main

main(prog_name="hwsim")
