"""Data shipped with Deskmind: icons, prompts and the default configuration."""
