"""Built-in extractors, registered by file suffix on import."""

from deskmind.core.ingest import transcribe  # noqa: F401  (audio and video types)
from deskmind.core.ingest.extractors import (  # noqa: F401
    code, htmlpage, mail, markdown, office, pdf, text,
)
