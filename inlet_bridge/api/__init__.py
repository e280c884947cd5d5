"""The HTTP surface: ingest, operator endpoints, health and metrics."""
