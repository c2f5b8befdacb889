"""Code the tests and benchmarks share; not part of mrfbatch, never imported by it.

- synth: deterministic synthetic in-network files (``python -m tests.support.synth`` from a
  checkout writes one; examples/README.md)
- oracle: the rows and counts an extraction of a synthetic file should produce; canonical()
- containers: a serialized document as plain JSON, with a BOM, gzipped or zipped (pack)
- rawjson: JSON text whose numbers keep their exact text (RawNumber, dumps)
- httpserver: a local HTTP server serving in-memory files, with scripted misbehaviour
- tocs: small tables of contents and the plans they list
- workflows: running the real Snakemake workflow in a subprocess, and reading what it left

Imports go one way: synth -> oracle -> rawjson, synth -> rawjson and containers,
workflows -> synth.
tests/conftest.py puts tests/ on the path, so tests import ``support.<module>``.
"""
