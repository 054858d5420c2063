"""Where Deskmind keeps its state, and its settings."""
