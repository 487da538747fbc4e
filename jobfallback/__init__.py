"""jobfallback: move TrueFoundry job runs stuck in CREATED to a fallback cluster/workspace."""

__version__ = "0.1.0"
