"""The memory browser: search, provenance, delete with receipt, export."""
