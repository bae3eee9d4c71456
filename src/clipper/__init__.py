"""Clipper: clip jobs on demand, on a PostgreSQL-backed queue."""
