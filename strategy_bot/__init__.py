"""strategy-bot: shared settings and version for the core and the front ends."""
__version__ = "0.1.0"
