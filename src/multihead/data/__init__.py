"""Cohorts, labels, splits and batches."""
