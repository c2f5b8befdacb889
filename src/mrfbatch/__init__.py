"""mrfbatch: negotiated rates out of US health-plan price-transparency files.

The entry point is `mrfbatch.run_extraction.run_extraction` (one file) and its command line.
"""

__version__ = "0.1.0"
