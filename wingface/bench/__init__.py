"""Benchmarks whose results are written to JSON files and quoted in the docs (never asserted in tests)."""
