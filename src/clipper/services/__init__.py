"""Use cases: what the API and the worker do, each within one transaction."""
