"""`python -m jobfallback_sandbox`: the `jobfallback-sandbox` command."""

from jobfallback_sandbox.cli import main

main()
