"""Code the tests and benchmarks share; not part of mrfbatch, never imported by it.

- httpserver: a local HTTP server serving in-memory files, with scripted misbehaviour
- tocs: small tables of contents and the plans they list
- workflows: running the real Snakemake workflow in a subprocess, and reading what it left

tests/conftest.py puts tests/ on the path, so tests import ``support.<module>``.
"""
