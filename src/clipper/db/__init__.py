"""Database access of the application: URLs, migrations (and, later, tables and repositories)."""
