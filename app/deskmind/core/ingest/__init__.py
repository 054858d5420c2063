"""Ingestion: turn files and captured material into sources, text and chunks in memory."""
