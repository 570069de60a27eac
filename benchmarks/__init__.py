"""Benchmark suite of runs_service: see BENCHMARKS.md and `python -m benchmarks.run --help`."""
