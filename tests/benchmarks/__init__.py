"""The sweep benchmark (`make bench`): real sweeps against the sandbox, next to their lower bound.

Not tests: no file here is named test_*, so pytest never collects it.
"""
