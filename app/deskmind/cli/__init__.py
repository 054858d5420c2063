"""The ``deskmind`` command line: every capability of the core, headless."""
