"""Benchmarks for remediate: `python -m bench` (or `make bench`). See bench/README.md."""
