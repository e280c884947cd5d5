"""Benchmarks: `python bench/ingest.py` (or `python -m bench.ingest`)."""
