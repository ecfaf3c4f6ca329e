"""Metrics for scorers and policies."""
