"""The settings pages edit routing.toml through the core's editor (no Qt in it)."""

from deskmind.core.routing.editor import RoutingFile

__all__ = ["RoutingFile"]
