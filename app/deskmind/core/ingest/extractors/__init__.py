"""Built-in extractors, registered by file suffix on import."""

from deskmind.core.ingest.extractors import markdown, text  # noqa: F401
