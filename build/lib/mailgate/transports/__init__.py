"""Transports hand raw bytes to ``mailgate.ingest.ingest()``; they never touch the database."""
