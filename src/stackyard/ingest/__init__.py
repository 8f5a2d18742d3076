"""Ingestion: sources in stackyard.yml loaded with dlt."""
