"""jobfallback: move TrueFoundry job runs stuck in CREATED to a fallback cluster/workspace."""

from importlib.metadata import version

# pyproject.toml is the one place the version is written; this reads what was installed.
__version__ = version("jobfallback")
