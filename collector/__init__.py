"""giamsat collector: ingest, enrichment, storage, rollups and compliance."""

__version__ = "0.1.0"
