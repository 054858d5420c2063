"""The Qt-free core of Deskmind: memory, ingestion, embedding, speech, runtimes, routing."""
