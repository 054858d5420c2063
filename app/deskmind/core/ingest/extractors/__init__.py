"""Built-in extractors. Each module adds its file types with ``register_types(types)``;
adding a file type touches one new module and the list below."""

from __future__ import annotations

from deskmind.core.ingest.types import FileTypes


def builtin_file_types() -> FileTypes:
    """A registry with every built-in type (parsers load on first use of each module)."""
    from deskmind.core.ingest import transcribe
    from deskmind.core.ingest.extractors import code, gzipped, htmlpage, mail, markdown, office, pdf, text

    types = FileTypes()
    # Later registrations win for a suffix claimed twice: the order the modules always had.
    for module in (transcribe, text, code, htmlpage, mail, markdown, office, pdf, gzipped):
        module.register_types(types)
    return types
