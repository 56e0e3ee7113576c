"""Exact per-task metrics (torchmetrics), safe on several processes."""
