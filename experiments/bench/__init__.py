"""Benchmarks: each prints throughput and ratios against a baseline run in the same process."""
