"""multihead: compare fused and multi-head networks, and their losses, on genomic data."""

__version__ = "0.1.0"
