"""Ingest listings into the search index (`core`: the rules; `__main__`: the CLI)."""

from retrieval.ingest.core import BadLine, IngestReport, ScreenResult, ingest, print_report, read_listings

__all__ = ["BadLine", "IngestReport", "ScreenResult", "ingest", "print_report", "read_listings"]
