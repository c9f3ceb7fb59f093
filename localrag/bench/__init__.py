"""Benchmarks: each reports figures measured side by side in one run."""
