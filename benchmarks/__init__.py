"""Benchmarks: each ``bench_*`` module prints its figures with parameters and the machine."""
