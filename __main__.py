"""`python -m synack`: the `synack` command."""

from synack.cli import main

main()
